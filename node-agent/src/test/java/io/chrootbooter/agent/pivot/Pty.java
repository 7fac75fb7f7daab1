package io.chrootbooter.agent.pivot;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;

/**
 * A pseudo-terminal (pty(7)) as a target's console: the slave's path goes into the spec, a thread
 * keeps reading the master so that the target never blocks on a full console, and the test types
 * into the master as a human at the console would. The test keeps one slave descriptor open for the
 * pty's whole life, so the master never sees a hang-up between two users of the slave.
 */
public final class Pty implements AutoCloseable {
  private static final int O_RDWR = 02;
  private static final int O_NOCTTY = 0400;
  private static final int O_NONBLOCK = 04000;
  private static final int EAGAIN = 11;
  private static final int EIO = 5;

  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    static native int posix_openpt(int flags) throws LastErrorException;

    static native int grantpt(int fd) throws LastErrorException;

    static native int unlockpt(int fd) throws LastErrorException;

    static native int ptsname_r(int fd, byte[] buf, long size) throws LastErrorException;

    // open(2) is variadic; without O_CREAT it never reads a third argument.
    static native int open(String path, int flags) throws LastErrorException;

    static native long read(int fd, byte[] buf, long count) throws LastErrorException;

    static native long write(int fd, byte[] buf, long count) throws LastErrorException;

    static native int close(int fd) throws LastErrorException;
  }

  private final int master;
  private final int slaveFd;
  private final Path slave;
  private final ByteArrayOutputStream output = new ByteArrayOutputStream();
  private final Thread reader;
  private volatile boolean closing;

  private Pty(int master, int slaveFd, Path slave) {
    this.master = master;
    this.slaveFd = slaveFd;
    this.slave = slave;
    this.reader = new Thread(this::pump, "pty " + slave);
    reader.setDaemon(true);
    reader.start();
  }

  public static Pty open() throws IOException {
    int fd;
    try {
      fd = LibC.posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    } catch (LastErrorException e) {
      throw new IOException("posix_openpt: errno " + e.getErrorCode(), e);
    }
    try {
      LibC.grantpt(fd);
      LibC.unlockpt(fd);
      byte[] name = new byte[128];
      LibC.ptsname_r(fd, name, name.length);
      int len = 0;
      while (name[len] != 0) {
        len++;
      }
      Path slave = Path.of(new String(name, 0, len, StandardCharsets.US_ASCII));
      int slaveFd = LibC.open(slave.toString(), O_RDWR | O_NOCTTY | O_NONBLOCK);
      return new Pty(fd, slaveFd, slave);
    } catch (LastErrorException e) {
      LibC.close(fd);
      throw new IOException("setting up the pty: errno " + e.getErrorCode(), e);
    }
  }

  /** Reads until closed; EIO only means that no one has the slave open right now. */
  private void pump() {
    byte[] buf = new byte[8192];
    while (!closing) {
      long n;
      try {
        n = LibC.read(master, buf, buf.length);
      } catch (LastErrorException e) {
        if (e.getErrorCode() != EAGAIN && e.getErrorCode() != EIO) {
          return;
        }
        n = 0;
      }
      if (n > 0) {
        synchronized (output) {
          output.write(buf, 0, (int) n);
        }
      } else {
        LockSupport.parkNanos(Duration.ofMillis(10).toNanos());
      }
    }
  }

  public Path slave() {
    return slave;
  }

  byte[] output() {
    synchronized (output) {
      return output.toByteArray();
    }
  }

  String text() {
    return new String(output(), StandardCharsets.UTF_8);
  }

  /** Types {@code text} at the console: the bytes arrive as input of the slave side. */
  public void type(String text) throws IOException {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    try {
      long n = LibC.write(master, bytes, bytes.length);
      if (n != bytes.length) {
        throw new IOException("typed " + n + " of " + bytes.length + " bytes");
      }
    } catch (LastErrorException e) {
      throw new IOException("write to the pty master: errno " + e.getErrorCode(), e);
    }
  }

  /**
   * Writes {@code text} to the slave side without blocking, as the bootstrap prints to its console.
   *
   * @return the errno when the terminal refused it (EAGAIN: its output is stopped)
   */
  Optional<Integer> print(String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    try {
      LibC.write(slaveFd, bytes, bytes.length);
      return Optional.empty();
    } catch (LastErrorException e) {
      return Optional.of(e.getErrorCode());
    }
  }

  /**
   * Reads what is waiting as input on the slave side without blocking (what a shell reading the
   * console would get now); empty when nothing is.
   */
  public String pendingInput() {
    byte[] buf = new byte[4096];
    try {
      long n = LibC.read(slaveFd, buf, buf.length);
      return new String(buf, 0, (int) Math.max(n, 0), StandardCharsets.UTF_8);
    } catch (LastErrorException e) {
      if (e.getErrorCode() == EAGAIN) {
        return "";
      }
      throw e;
    }
  }

  @Override
  public void close() throws InterruptedException {
    closing = true;
    reader.join(Duration.ofSeconds(5).toMillis());
    LibC.close(slaveFd);
    LibC.close(master);
  }
}
