package io.chrootbooter.agent.confine;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.util.List;

/**
 * The seccomp filter of a {@link io.chrootbooter.protocol.Confinement#Confined} target, built and
 * loaded by libseccomp (Debian's {@code libseccomp2}, the library systemd and the container
 * runtimes use) on the one thread that starts the enter step. Every other system call is allowed;
 * the refused ones fail with {@code EPERM}, as they would for a process without the capability.
 *
 * <p>libseccomp writes the BPF program for every ABI the machine runs (on x86-64 also i386 and x32,
 * whose system call numbers differ: a filter that checked the native numbers only could be passed
 * by an {@code int 0x80}) and compares arguments as the kernel passes them.
 *
 * <p>The filter is loaded without {@code PR_SET_NO_NEW_PRIVS} (the agent holds {@code
 * CAP_SYS_ADMIN}, which the kernel asks for instead): with it, {@code sudo}, {@code su} and every
 * other setuid program of the image would stop working.
 */
public final class SeccompFilter {

  /** The system calls refused outright. */
  public static final List<String> REFUSED =
      List.of(
          "kexec_load",
          "kexec_file_load",
          "init_module",
          "finit_module",
          "delete_module",
          "open_by_handle_at",
          "perf_event_open",
          "bpf");

  /**
   * reboot(2) commands that act on the machine rather than end the target's PID namespace
   * (linux/reboot.h): kexec, suspend to disk, and what Ctrl+Alt+Del does. Inside a PID namespace
   * the kernel turns {@code RESTART}, {@code RESTART2}, {@code HALT} and {@code POWER_OFF} into the
   * end of the namespace; those stay allowed (the bounding set lacks {@code CAP_SYS_BOOT} anyway).
   */
  public static final List<Long> REFUSED_REBOOT_COMMANDS =
      List.of(0x45584543L, 0xD000FCE2L, 0x89ABCDEFL, 0x00000000L);

  /** The library's soname. */
  public static final String LIBRARY = "libseccomp.so.2";

  private static final int SCMP_ACT_ALLOW = 0x7fff0000;
  private static final int EPERM = 1;
  private static final int SCMP_ACT_ERRNO_EPERM = 0x00050000 | EPERM;
  private static final int SCMP_FLTATR_CTL_NNP = 3;
  private static final int SCMP_CMP_MASKED_EQ = 7;
  private static final int NR_SCMP_ERROR = -1;

  /** The compatibility ABIs of each native one, by libseccomp's names. */
  private static final List<String> COMPAT_ARCHES = List.of("x86", "x32", "arm");

  static final class Lib {
    private Lib() {}

    static native Pointer seccomp_init(int defAction);

    static native int seccomp_attr_set(Pointer ctx, int attr, int value);

    static native int seccomp_arch_resolve_name(String name);

    static native int seccomp_arch_native();

    static native int seccomp_arch_add(Pointer ctx, int arch);

    static native int seccomp_syscall_resolve_name(String name);

    static native int seccomp_rule_add_array(
        Pointer ctx, int action, int syscall, int argCount, Pointer args);

    static native int seccomp_load(Pointer ctx);

    static native void seccomp_release(Pointer ctx);
  }

  private static Throwable unavailable;
  private static boolean bound;

  private SeccompFilter() {}

  /** Binds {@link Lib} once; the reason it cannot be, named, on every later call. */
  private static synchronized void bind() throws IOException {
    if (!bound && unavailable == null) {
      try {
        Native.register(Lib.class, NativeLibrary.getInstance(LIBRARY));
        bound = true;
      } catch (Throwable e) {
        unavailable = e;
      }
    }
    if (!bound) {
      throw new IOException(
          "cannot confine the target: "
              + LIBRARY
              + " cannot be loaded ("
              + unavailable.getMessage()
              + "); a Confined image is not booted unconfined",
          unavailable);
    }
  }

  /**
   * Builds the filter and loads it onto the calling thread: from then on it and every process it
   * starts are filtered, for good.
   */
  static void loadOntoThisThread() throws IOException {
    bind();
    Pointer ctx = Lib.seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == null) {
      throw new IOException("seccomp_init failed");
    }
    try {
      check("seccomp_attr_set(NNP, 0)", Lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0));
      int nativeArch = Lib.seccomp_arch_native();
      for (String name : COMPAT_ARCHES) {
        int arch = Lib.seccomp_arch_resolve_name(name);
        if (arch != 0 && arch != nativeArch && compatible(nativeArch, name)) {
          int rc = Lib.seccomp_arch_add(ctx, arch);
          if (rc != 0 && rc != -17) { // EEXIST: already in the filter
            throw new IOException("seccomp_arch_add(" + name + "): error " + -rc);
          }
        }
      }
      for (String call : REFUSED) {
        int nr = Lib.seccomp_syscall_resolve_name(call);
        if (nr == NR_SCMP_ERROR) {
          throw new IOException("libseccomp does not know the system call " + call);
        }
        check(
            "seccomp_rule_add(" + call + ")",
            Lib.seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO_EPERM, nr, 0, null));
      }
      int reboot = Lib.seccomp_syscall_resolve_name("reboot");
      for (long command : REFUSED_REBOOT_COMMANDS) {
        // struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; u64 datum_a, datum_b; }:
        // the command is reboot's third argument, an int: only its low 32 bits count.
        Memory cmp = new Memory(24);
        cmp.setInt(0, 2);
        cmp.setInt(4, SCMP_CMP_MASKED_EQ);
        cmp.setLong(8, 0xffffffffL);
        cmp.setLong(16, command);
        check(
            "seccomp_rule_add(reboot " + Long.toHexString(command) + ")",
            Lib.seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO_EPERM, reboot, 1, cmp));
      }
      check("seccomp_load", Lib.seccomp_load(ctx));
    } finally {
      Lib.seccomp_release(ctx);
    }
  }

  /** Whether {@code compat} is an ABI the native one can call (x86-64: i386 and x32). */
  private static boolean compatible(int nativeArch, String compat) {
    boolean x86_64 = nativeArch == Lib.seccomp_arch_resolve_name("x86_64");
    boolean aarch64 = nativeArch == Lib.seccomp_arch_resolve_name("aarch64");
    return switch (compat) {
      case "x86", "x32" -> x86_64;
      case "arm" -> aarch64;
      default -> false;
    };
  }

  private static void check(String what, int rc) throws IOException {
    if (rc != 0) {
      throw new IOException(what + ": error " + -rc);
    }
  }
}
