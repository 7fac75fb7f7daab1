package io.chrootbooter.agent.confine;

import java.util.List;
import java.util.regex.Pattern;

/**
 * The mounts of a {@link io.chrootbooter.protocol.Confinement#Confined} target, as shell functions
 * the enter step ({@code io.chrootbooter.agent.pivot.EnterScript}) calls in the target's mount
 * namespace, before the pivot: they use its {@code $bb}, {@code onto} and {@code fail}.
 *
 * <p>{@code cb_private_dev DEVICE...} mounts a tmpfs of its own on {@code /dev}, never the
 * bootstrap's devtmpfs: {@code null zero full random urandom tty} bound from the bootstrap's nodes
 * (each checked to be that very device, by major and minor, and no symbolic link: a {@code Machine}
 * target before may have written the bootstrap's devtmpfs), {@code console} (the target's terminal
 * is bound over it by the enter step; {@code /dev/null} when it has none), {@code ptmx} as a link
 * to the devpts instance the enter step mounts on {@code /dev/pts}, the {@code fd}, {@code stdin},
 * {@code stdout} and {@code stderr} links and an empty {@code shm}, then each device the
 * MachineBoot lists, under its own name, when it is a device node of the bootstrap reached through
 * no symbolic link. The nodes are bind mounts: the enter step runs without {@code CAP_MKNOD}.
 *
 * <p>{@code cb_confined_proc} makes {@code /proc/sys}, {@code /proc/sysrq-trigger}, {@code
 * /proc/bus}, {@code /proc/fs} and {@code /proc/irq} read-only (bound onto themselves, remounted
 * read-only); {@code /sys} is mounted read-only by the enter step itself.
 */
public final class ConfinedMounts {

  /** A device the MachineBoot may list: as the API's pattern, checked again here. */
  private static final Pattern DEVICE =
      Pattern.compile("^/dev(/[A-Za-z0-9_:+@-][A-Za-z0-9._:+@-]{0,127}){1,4}$");

  /** At most this many listed devices. */
  public static final int MAX_DEVICES = 32;

  /** The nodes every Confined target has, with their major:minor in hex as stat(1) prints them. */
  static final List<String> BASIC_NODES =
      List.of("null:1:3", "zero:1:5", "full:1:7", "random:1:8", "urandom:1:9", "tty:5:0");

  /** The shell functions, prepended to the enter step's script. */
  public static final String FUNCTIONS =
      """
      cb_private_dev() {
        onto dev "$bb" mount -t tmpfs -o mode=0755,nosuid,size=4m,nr_inodes=16384 cb-dev \\
          /proc/self/fd/5 || fail "mount -t tmpfs /dev"
        for spec in %s; do
          n=${spec%%%%:*} want=${spec#*:}
          { [ -c "/dev/$n" ] && [ ! -L "/dev/$n" ] \\
            && [ "$($bb stat -c %%t:%%T "/dev/$n")" = "$want" ]; } \\
            || fail "/dev/$n of the bootstrap is not the character device $want; refused"
          { : > "dev/$n" && $bb mount --bind "/dev/$n" "dev/$n"; } || fail "mount --bind /dev/$n"
        done
        { : > dev/console && $bb mount --bind /dev/null dev/console; } || fail "mount /dev/console"
        { $bb ln -s pts/ptmx dev/ptmx && $bb ln -s /proc/self/fd dev/fd \\
          && $bb ln -s /proc/self/fd/0 dev/stdin && $bb ln -s /proc/self/fd/1 dev/stdout \\
          && $bb ln -s /proc/self/fd/2 dev/stderr && $bb mkdir -m 1777 dev/shm \\
          && $bb mkdir dev/pts; } || fail "populate /dev"
        for d in "$@"; do
          { { [ -b "$d" ] || [ -c "$d" ]; } && [ "$($bb realpath "$d")" = "$d" ]; } \\
            || fail "device $d is not a device node of the bootstrap (or is reached through a" \\
              "symbolic link); refused"
          rel=${d#/dev/}
          case $rel in */*) $bb mkdir -p "dev/${rel%%/*}" || fail "mkdir /dev/${rel%%/*}" ;; esac
          { : > "dev/$rel" && $bb mount --bind "$d" "dev/$rel"; } || fail "mount --bind $d"
        done
      }
      cb_confined_proc() {
        for p in sys sysrq-trigger bus fs irq; do
          [ -e "proc/$p" ] || continue
          { $bb mount --bind "proc/$p" "proc/$p" && $bb mount -o remount,bind,ro "proc/$p"; } \\
            || fail "read-only /proc/$p"
        done
      }
      """
          .formatted(String.join(" ", BASIC_NODES.stream().map(ConfinedMounts::hex).toList()));

  private ConfinedMounts() {}

  private static String hex(String spec) {
    String[] p = spec.split(":");
    return p[0]
        + ":"
        + Integer.toHexString(Integer.parseInt(p[1]))
        + ":"
        + Integer.toHexString(Integer.parseInt(p[2]));
  }

  /**
   * The devices a MachineBoot lists, checked: at most {@link #MAX_DEVICES}, each below {@code /dev}
   * without {@code .} or {@code ..} components, no two the same.
   *
   * @throws IllegalArgumentException naming the first that is not
   */
  public static List<String> checkDevices(List<String> devices) {
    if (devices == null) {
      return List.of();
    }
    if (devices.size() > MAX_DEVICES) {
      throw new IllegalArgumentException(
          "image.devices: " + devices.size() + " devices; at most " + MAX_DEVICES);
    }
    for (String d : devices) {
      if (d == null || !DEVICE.matcher(d).matches()) {
        throw new IllegalArgumentException(
            "image.devices: "
                + (d == null ? "null" : "\"" + d.replaceAll("[^\\x20-\\x7e]", "?") + "\"")
                + " is not a device path below /dev/ (no . or .. components, at most 4 levels)");
      }
    }
    if (devices.stream().distinct().count() != devices.size()) {
      throw new IllegalArgumentException("image.devices: a device is listed twice");
    }
    return List.copyOf(devices);
  }
}
