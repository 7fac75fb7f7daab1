package io.chrootbooter.agent.pivot;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import io.chrootbooter.agent.sys.Errno;
import io.chrootbooter.agent.sys.SyscallException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The terminal settings of a target's console, saved before the target starts and put back once it
 * is gone (a hostile target that changes the console's tty mode). While it runs the console is the
 * target's, and it may leave it in any state: raw mode without echo ({@code stty raw -echo}, a
 * crashed editor), other control characters, output stopped by ^S, typed-ahead input it never read.
 * {@link #restore} sets exactly the termios(3) saved before the boot, restarts output, and discards
 * unread input, so the bootstrap's console shell neither hangs on a write nor runs a line that was
 * typed to the target.
 *
 * <p>Not {@code stty sane}: that resets what the bootstrap had set (a serial console's erase
 * character, its flow control) to built-in defaults, and leaves stopped output stopped.
 */
public final class ConsoleMode {
  /**
   * glibc's {@code struct termios} on Linux: four {@code tcflag_t}, {@code c_line}, {@code
   * c_cc[32]}, two {@code speed_t} (60 bytes on x86_64 and aarch64). Kept opaque: what {@code
   * tcgetattr} wrote is what {@code tcsetattr} reads back; a few spare bytes for safety.
   */
  private static final int TERMIOS_BYTES = 64;

  // fcntl.h / termios.h values for Linux on x86_64 and aarch64.
  private static final int O_RDONLY = 0;
  private static final int O_NOCTTY = 0400;
  private static final int O_NONBLOCK = 04000;
  private static final int O_CLOEXEC = 02000000;
  private static final int TCSANOW = 0;
  private static final int TCOOFF = 0;
  private static final int TCOON = 1;
  private static final int TCIFLUSH = 0;

  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    // open(2) is variadic; without O_CREAT or O_TMPFILE it never reads a third argument.
    static native int open(String path, int flags) throws LastErrorException;

    static native int close(int fd) throws LastErrorException;

    static native int tcgetattr(int fd, byte[] termios) throws LastErrorException;

    static native int tcsetattr(int fd, int when, byte[] termios) throws LastErrorException;

    static native int tcflow(int fd, int action) throws LastErrorException;

    static native int tcflush(int fd, int queue) throws LastErrorException;
  }

  private final Path console;
  private final byte[] termios;

  private ConsoleMode(Path console, byte[] termios) {
    this.console = console;
    this.termios = termios;
  }

  /**
   * The console's settings now; empty when it is no terminal (a log file, {@code /dev/null}).
   *
   * @throws SyscallException when the console cannot be opened or read
   */
  public static Optional<ConsoleMode> save(Path console) throws SyscallException {
    int fd = open(console);
    try {
      byte[] termios = new byte[TERMIOS_BYTES];
      try {
        LibC.tcgetattr(fd, termios);
      } catch (LastErrorException e) {
        if (e.getErrorCode() == Errno.ENOTTY) {
          return Optional.empty();
        }
        throw new SyscallException("tcgetattr", fd + " (" + console + ")", e.getErrorCode());
      }
      return Optional.of(new ConsoleMode(console, termios));
    } finally {
      close(fd);
    }
  }

  /**
   * Puts the saved settings back (TCSANOW: waiting for output to drain could block forever on a
   * console whose output is stopped), restarts output (TCOOFF then TCOON: TCOON alone only undoes a
   * TCOOFF, not a ^S), and discards input the target left unread.
   */
  public void restore() throws SyscallException {
    int fd = open(console);
    try {
      try {
        LibC.tcsetattr(fd, TCSANOW, termios);
      } catch (LastErrorException e) {
        throw new SyscallException(
            "tcsetattr", fd + " (" + console + "), TCSANOW, <saved>", e.getErrorCode());
      }
      flow(fd, TCOOFF, "TCOOFF");
      flow(fd, TCOON, "TCOON");
      try {
        LibC.tcflush(fd, TCIFLUSH);
      } catch (LastErrorException e) {
        throw new SyscallException(
            "tcflush", fd + " (" + console + "), TCIFLUSH", e.getErrorCode());
      }
    } finally {
      close(fd);
    }
  }

  /** The console these settings belong to. */
  public Path console() {
    return console;
  }

  private void flow(int fd, int action, String name) throws SyscallException {
    try {
      LibC.tcflow(fd, action);
    } catch (LastErrorException e) {
      throw new SyscallException("tcflow", fd + " (" + console + "), " + name, e.getErrorCode());
    }
  }

  /**
   * O_NOCTTY: the agent must not make the console its controlling terminal; O_NONBLOCK: a serial
   * line without carrier must not block the open.
   */
  private static int open(Path console) throws SyscallException {
    try {
      return LibC.open(console.toString(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    } catch (LastErrorException e) {
      throw new SyscallException(
          "open", "\"" + console + "\", O_RDONLY|O_NOCTTY|O_NONBLOCK|O_CLOEXEC", e.getErrorCode());
    }
  }

  private static void close(int fd) throws SyscallException {
    try {
      LibC.close(fd);
    } catch (LastErrorException e) {
      throw new SyscallException("close", Integer.toString(fd), e.getErrorCode());
    }
  }
}
