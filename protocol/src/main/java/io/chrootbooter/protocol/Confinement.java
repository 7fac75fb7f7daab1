package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonCreator;

/**
 * How much of the machine a target may touch. A target always shares the machine's kernel with the
 * bootstrap; the confinement decides what of it the target's root may use.
 */
public enum Confinement {
  /**
   * The target is root of the machine, as an installed system would be: every capability, the
   * bootstrap's device nodes, writable {@code /proc/sys} and {@code /sys}, module loading. The
   * bootstrap protects itself against accidents only: its files are out of the target's mount
   * namespace, and the agent keeps its own cgroup and memory. The default.
   */
  Machine,
  /**
   * For images that are not trusted: no module loading, raw I/O, kexec, reboot of the machine,
   * clock setting, device node creation or ptrace of what is not the target's (bounding set and
   * seccomp filter), read-only {@code /proc/sys}, {@code /proc/sysrq-trigger} and {@code /sys}, and
   * a private {@code /dev} with the basic nodes and the devices the MachineBoot lists.
   */
  Confined;

  /** The confinement of an image whose BootImage and MachineBoot name none. */
  public static final Confinement DEFAULT = Machine;

  /**
   * Reads a name off the wire. A name this reader does not know (a newer operator's level) is read
   * as {@link #Confined}, the strictest it knows: an image is never run with less confinement than
   * asked for.
   */
  @JsonCreator
  public static Confinement of(String name) {
    if (name == null) {
      return null;
    }
    for (Confinement c : values()) {
      if (c.name().equals(name)) {
        return c;
      }
    }
    return Confined;
  }
}
