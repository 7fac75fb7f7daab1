package io.chrootbooter.agent.confine;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import io.chrootbooter.agent.sys.Errno;
import java.io.IOException;
import java.util.Map;

/**
 * The capabilities a {@link io.chrootbooter.protocol.Confinement#Confined} target never gets: they
 * are dropped from the bounding set ({@code prctl(PR_CAPBSET_DROP)}) of the one thread that starts
 * the enter step, so that every process of the target, its init included, lacks them from its first
 * {@code execve} on, and no setuid program or file capability gives them back.
 *
 * <p>Dropped, as the requirement names them: {@code CAP_SYS_MODULE} (loading kernel code), {@code
 * CAP_SYS_RAWIO} (I/O ports, {@code /dev/mem}, raw SCSI commands, {@code /proc/kcore}), {@code
 * CAP_SYS_BOOT} (reboot and kexec of the machine; inside its PID namespace a reboot(2) then fails,
 * and systemd exits as a container's init does, which ends the target as a power-off would), {@code
 * CAP_SYS_TIME} (the machine's clock), {@code CAP_MKNOD} (device nodes for the machine's disks),
 * {@code CAP_SYS_PTRACE} (other processes' memory, the agent's above all). And three more: {@code
 * CAP_SYSLOG} (clearing the kernel log the bootstrap's messages are in, its console level, kernel
 * addresses in {@code /proc/kallsyms}), {@code CAP_BPF} and {@code CAP_PERFMON} (the capability
 * halves of bpf(2) and perf_event_open(2), which the seccomp filter refuses anyway).
 *
 * <p>Considered and kept: {@code CAP_SYS_ADMIN} (systemd mounts its API filesystems, namespaces and
 * cgroups with it; without it a systemd image does not boot), {@code CAP_NET_ADMIN} (the target
 * configures the machine's network as an installed system would; a return restores the
 * bootstrap's), {@code CAP_SYS_RESOURCE}, {@code CAP_SYS_NICE}, {@code CAP_IPC_LOCK}, {@code
 * CAP_SYS_TTY_CONFIG}, {@code CAP_DAC_READ_SEARCH} (its dangerous use, open_by_handle_at(2), is
 * refused by the filter), {@code CAP_LINUX_IMMUTABLE}, {@code CAP_AUDIT_*}, {@code CAP_WAKE_ALARM}
 * and {@code CAP_BLOCK_SUSPEND}: they act on the target's own processes and files, or on the
 * network it shares with the machine, which a return restores.
 */
public final class BoundingSet {
  /** The capabilities dropped, by name, with their numbers (linux/capability.h). */
  public static final Map<String, Integer> DROPPED =
      Map.of(
          "CAP_SYS_MODULE", 16,
          "CAP_SYS_RAWIO", 17,
          "CAP_SYS_PTRACE", 19,
          "CAP_SYS_BOOT", 22,
          "CAP_SYS_TIME", 25,
          "CAP_MKNOD", 27,
          "CAP_SYSLOG", 34,
          "CAP_PERFMON", 38,
          "CAP_BPF", 39);

  private static final int PR_CAPBSET_DROP = 24;
  private static final int EINVAL = 22;

  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    static native int prctl(int option, long arg2, long arg3, long arg4, long arg5)
        throws LastErrorException;
  }

  private BoundingSet() {}

  /**
   * Drops {@link #DROPPED} from the calling thread's bounding set. A capability the running kernel
   * does not know ({@code CAP_BPF} before Linux 5.8) is skipped: it cannot be granted either.
   *
   * @throws IOException when a drop is refused (the agent lacks {@code CAP_SETPCAP})
   */
  static void dropFromThisThread() throws IOException {
    for (Map.Entry<String, Integer> cap : DROPPED.entrySet()) {
      try {
        LibC.prctl(PR_CAPBSET_DROP, cap.getValue(), 0, 0, 0);
      } catch (LastErrorException e) {
        if (e.getErrorCode() == EINVAL) {
          continue;
        }
        throw new IOException(
            "prctl(PR_CAPBSET_DROP, " + cap.getKey() + "): " + Errno.name(e.getErrorCode()), e);
      }
    }
  }

  /** The mask of {@link #DROPPED}, as {@code CapBnd} in /proc/PID/status shows capabilities. */
  public static long mask() {
    long mask = 0;
    for (int bit : DROPPED.values()) {
      mask |= 1L << bit;
    }
    return mask;
  }
}
