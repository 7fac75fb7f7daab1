package io.chrootbooter.agent.relay;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import io.chrootbooter.agent.sys.SyscallException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The few libc calls the relay needs on raw descriptors, bound with JNA: pseudo-terminals ({@code
 * posix_openpt}, {@code grantpt}, {@code unlockpt}, {@code ptsname_r}), {@code open}, {@code read},
 * {@code write}, {@code poll}, {@code pipe2}, {@code lseek}, and the terminal settings ({@code
 * tcgetattr}, {@code cfmakeraw}, {@code tcsetattr}, the window size). Every descriptor is opened
 * non-blocking and close-on-exec: a relay thread waits in poll(2), never in a read or write, so
 * that closing it is prompt whatever the devices do.
 */
final class Tty {
  static final int O_RDONLY = 0;
  static final int O_RDWR = 02;
  static final int O_NOCTTY = 0400;
  static final int O_NONBLOCK = 04000;
  static final int O_CLOEXEC = 02000000;

  static final short POLLIN = 0x1;
  static final short POLLOUT = 0x4;
  static final short POLLERR = 0x8;
  static final short POLLHUP = 0x10;
  static final short POLLNVAL = 0x20;

  static final int EINTR = 4;
  static final int EIO = 5;
  static final int EAGAIN = 11;
  static final int EPIPE = 32;
  static final int EINVAL = 22;

  private static final int SEEK_END = 2;
  private static final int TCSANOW = 0;
  private static final long TIOCGWINSZ = 0x5413;
  private static final long TIOCSWINSZ = 0x5414;

  /** glibc's {@code struct termios} (60 bytes on x86_64 and aarch64), kept opaque. */
  static final int TERMIOS_BYTES = 64;

  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    static native int posix_openpt(int flags) throws LastErrorException;

    static native int grantpt(int fd) throws LastErrorException;

    static native int unlockpt(int fd) throws LastErrorException;

    static native int ptsname_r(int fd, byte[] buf, long size) throws LastErrorException;

    // open(2) is variadic; without O_CREAT or O_TMPFILE it never reads a third argument.
    static native int open(String path, int flags) throws LastErrorException;

    static native int close(int fd) throws LastErrorException;

    static native long read(int fd, byte[] buf, long count) throws LastErrorException;

    static native long write(int fd, Pointer buf, long count) throws LastErrorException;

    static native int poll(Pointer fds, long nfds, int timeout) throws LastErrorException;

    static native int pipe2(int[] fds, int flags) throws LastErrorException;

    static native long lseek(int fd, long offset, int whence) throws LastErrorException;

    static native int tcgetattr(int fd, byte[] termios) throws LastErrorException;

    static native int tcsetattr(int fd, int when, byte[] termios) throws LastErrorException;

    static native void cfmakeraw(byte[] termios);

    // ioctl(2) is variadic; TIOCGWINSZ and TIOCSWINSZ take one pointer.
    static native int ioctl(int fd, long request, byte[] arg) throws LastErrorException;
  }

  /** A pty: its master descriptor and the path of its slave (in the agent's devpts). */
  record Pty(int master, Path slave) {}

  private Tty() {}

  /** A new pty, its slave unlocked; the master non-blocking. */
  static Pty openPty() throws SyscallException {
    int fd =
        call(
            "posix_openpt",
            "O_RDWR|O_NOCTTY|O_NONBLOCK|O_CLOEXEC",
            () -> LibC.posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
    try {
      call("grantpt", Integer.toString(fd), () -> LibC.grantpt(fd));
      call("unlockpt", Integer.toString(fd), () -> LibC.unlockpt(fd));
      byte[] name = new byte[128];
      call("ptsname_r", Integer.toString(fd), () -> LibC.ptsname_r(fd, name, name.length));
      int len = 0;
      while (len < name.length && name[len] != 0) {
        len++;
      }
      return new Pty(fd, Path.of(new String(name, 0, len, StandardCharsets.US_ASCII)));
    } catch (SyscallException e) {
      closeQuietly(fd);
      throw e;
    }
  }

  /** Opens {@code path} non-blocking, without making it the agent's controlling terminal. */
  static int open(Path path, int access) throws SyscallException {
    return call(
        "open",
        "\"" + path + "\", O_NOCTTY|O_NONBLOCK|O_CLOEXEC",
        () -> LibC.open(path.toString(), access | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  }

  /** A pipe whose write end wakes a poll(2); both ends non-blocking. */
  static int[] pipe() throws SyscallException {
    int[] fds = new int[2];
    call("pipe2", "O_NONBLOCK|O_CLOEXEC", () -> LibC.pipe2(fds, O_NONBLOCK | O_CLOEXEC));
    return fds;
  }

  /** Moves {@code fd} to its end (for {@code /dev/kmsg}: only records from now on). */
  static void seekEnd(int fd) throws SyscallException {
    try {
      LibC.lseek(fd, 0, SEEK_END);
    } catch (LastErrorException e) {
      throw new SyscallException("lseek", fd + ", 0, SEEK_END", e.getErrorCode());
    }
  }

  /**
   * Reads what is there: the byte count, 0 when nothing is (EAGAIN), -1 at end of file, or {@code
   * -errno} for EIO and EPIPE (a pty master without a slave, an overwritten kmsg record).
   */
  static long read(int fd, byte[] buf) throws SyscallException {
    try {
      long n = LibC.read(fd, buf, buf.length);
      return n == 0 ? -1 : n;
    } catch (LastErrorException e) {
      int errno = e.getErrorCode();
      if (errno == EAGAIN || errno == EINTR) {
        return 0;
      }
      if (errno == EIO || errno == EPIPE || errno == EINVAL) {
        return -errno;
      }
      throw new SyscallException("read", Integer.toString(fd), errno);
    }
  }

  /** Writes what the descriptor takes now: the byte count, 0 when it takes nothing (EAGAIN). */
  static long write(int fd, Memory buf, long offset, long count) throws SyscallException {
    try {
      return LibC.write(fd, buf.share(offset), count);
    } catch (LastErrorException e) {
      int errno = e.getErrorCode();
      if (errno == EAGAIN || errno == EINTR) {
        return 0;
      }
      throw new SyscallException("write", Integer.toString(fd), errno);
    }
  }

  /**
   * Waits until one of {@code fds} has one of its {@code events}, or {@code timeoutMillis} (-1:
   * forever); returns the events that happened, per descriptor.
   */
  static short[] poll(int[] fds, short[] events, int timeoutMillis) throws SyscallException {
    Memory m = new Memory(8L * fds.length);
    for (int i = 0; i < fds.length; i++) {
      m.setInt(8L * i, fds[i]);
      m.setShort(8L * i + 4, events[i]);
      m.setShort(8L * i + 6, (short) 0);
    }
    try {
      LibC.poll(m, fds.length, timeoutMillis);
    } catch (LastErrorException e) {
      if (e.getErrorCode() != EINTR) {
        throw new SyscallException("poll", fds.length + " descriptors", e.getErrorCode());
      }
    }
    short[] revents = new short[fds.length];
    for (int i = 0; i < fds.length; i++) {
      revents[i] = m.getShort(8L * i + 6);
    }
    return revents;
  }

  /** The terminal settings of {@code fd}; null when it is no terminal. */
  static byte[] getattr(int fd) {
    byte[] termios = new byte[TERMIOS_BYTES];
    try {
      LibC.tcgetattr(fd, termios);
      return termios;
    } catch (LastErrorException e) {
      return null;
    }
  }

  static void setattr(int fd, byte[] termios) throws SyscallException {
    try {
      LibC.tcsetattr(fd, TCSANOW, termios);
    } catch (LastErrorException e) {
      throw new SyscallException("tcsetattr", fd + ", TCSANOW", e.getErrorCode());
    }
  }

  /**
   * {@code termios} made raw for input (cfmakeraw(3): no echo, no line editing, no signals) with
   * its output processing kept ({@code c_oflag}, the second field): the agent's own lines, written
   * to the device while a target runs, still get their carriage returns; the pty's output, already
   * processed, then shows a redundant {@code \r} before each line end, which no terminal shows.
   */
  static byte[] raw(byte[] termios) {
    byte[] copy = termios.clone();
    LibC.cfmakeraw(copy);
    System.arraycopy(termios, 4, copy, 4, 4);
    return copy;
  }

  /** Copies the window size of {@code from} to {@code to}, when {@code from} has one. */
  static void copyWindowSize(int from, int to) {
    byte[] winsize = new byte[8];
    try {
      LibC.ioctl(from, TIOCGWINSZ, winsize);
      if (winsize[0] != 0 || winsize[1] != 0) {
        LibC.ioctl(to, TIOCSWINSZ, winsize);
      }
    } catch (LastErrorException e) {
      // not a terminal, or no size: the pty keeps 0x0, as a serial line has
    }
  }

  static void closeQuietly(int fd) {
    if (fd < 0) {
      return;
    }
    try {
      LibC.close(fd);
    } catch (LastErrorException e) {
      // already gone: nothing to release
    }
  }

  private interface Call {
    int run() throws LastErrorException;
  }

  private static int call(String name, String args, Call call) throws SyscallException {
    try {
      return call.run();
    } catch (LastErrorException e) {
      throw new SyscallException(name, args, e.getErrorCode());
    }
  }
}
