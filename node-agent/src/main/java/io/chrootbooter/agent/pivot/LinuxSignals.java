package io.chrootbooter.agent.pivot;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import io.chrootbooter.agent.sys.SyscallException;

/** {@link Signals} through the C library's kill(2), via JNA. */
public final class LinuxSignals implements Signals {
  /** errno.h: no such process. */
  private static final int ESRCH = 3;

  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    static native int kill(int pid, int signal) throws LastErrorException;
  }

  @Override
  public void kill(long pid, int signal) throws SyscallException {
    if (pid <= 1) {
      throw new IllegalStateException("refusing kill(" + pid + ", " + signal + ")");
    }
    try {
      LibC.kill((int) pid, signal);
    } catch (LastErrorException e) {
      if (e.getErrorCode() != ESRCH) {
        throw new SyscallException("kill", pid + ", " + signal, e.getErrorCode());
      }
    }
  }
}
