package io.chrootbooter.agent.relay;

import com.sun.jna.Memory;
import io.chrootbooter.agent.sys.Errno;
import io.chrootbooter.agent.sys.SyscallException;
import java.nio.file.Path;
import org.jboss.logging.Logger;

/**
 * One console device relayed through a pty while a target runs: the target gets the pty's slave,
 * one thread copies what the target writes to the real device and into the {@link BootLog}, and
 * what is typed on the real device into the pty. The real device is put in raw mode for the relay's
 * life (the pty's line discipline is the one the target talks to: echo, line editing, signals, ^S)
 * and its settings are put back when the relay ends; the pty starts with the real device's settings
 * and window size.
 *
 * <p>Back-pressure is the real device's: the thread writes to it before it reads more from the pty,
 * so a target blocks on a full pty exactly when it would have blocked on a slow serial line. Input
 * the target does not read is dropped once the pty's input buffer is full, as a terminal's own line
 * discipline drops it. When the slave is hung up (a getty's vhangup), the master reads EIO until it
 * is opened again: the thread opens it again itself and looks again {@link #HANGUP_RETRY_MILLIS}
 * later.
 */
final class ConsoleRelay implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(ConsoleRelay.class);
  private static final int HANGUP_RETRY_MILLIS = 20;
  private static final int BUFFER = 8192;

  private final Path real;
  private final int realFd;
  private final byte[] savedMode;
  private final Tty.Pty pty;
  private int slaveHold; // written by the relay thread only, closed after it ended
  private final int[] stop;
  private final BootLog.Source log;
  private final Thread thread;
  private boolean realIn;
  private boolean realOut;
  private final java.util.List<Viewer> viewers = new java.util.concurrent.CopyOnWriteArrayList<>();
  private final Object input = new Object();
  private boolean closed; // guarded by input: no typing into a descriptor number closed and reused
  private final Memory typed = new Memory(BUFFER);

  /**
   * Someone attached from afar: gets a copy of everything the target writes to this console, on the
   * relay's thread, and must not block (it queues, or drops).
   */
  interface Viewer {
    void output(byte[] bytes, int off, int len);
  }

  private ConsoleRelay(
      Path real,
      int realFd,
      byte[] savedMode,
      Tty.Pty pty,
      int slaveHold,
      int[] stop,
      BootLog log) {
    this.real = real;
    this.realFd = realFd;
    this.savedMode = savedMode;
    this.pty = pty;
    this.slaveHold = slaveHold;
    this.stop = stop;
    this.log = log.source();
    this.realIn = true;
    this.realOut = true;
    this.thread = new Thread(this::run, "cb-relay-" + real.getFileName());
    thread.setDaemon(true);
  }

  /** Opens {@code real}, makes a pty for it and starts relaying into {@code log}. */
  static ConsoleRelay start(Path real, BootLog log) throws SyscallException {
    int realFd = Tty.open(real, Tty.O_RDWR);
    byte[] saved = null;
    Tty.Pty pty = null;
    int hold = -1;
    int[] stop = null;
    try {
      saved = Tty.getattr(realFd);
      if (saved == null) {
        throw new SyscallException("tcgetattr", real + " (no terminal)", Errno.ENOTTY);
      }
      pty = Tty.openPty();
      // The relay keeps the slave open: until the target opens it, and between two of its users,
      // the master does not read EIO.
      hold = Tty.open(pty.slave(), Tty.O_RDWR);
      Tty.setattr(hold, saved);
      Tty.setattr(realFd, Tty.raw(saved));
      Tty.copyWindowSize(realFd, pty.master());
      stop = Tty.pipe();
      ConsoleRelay relay = new ConsoleRelay(real, realFd, saved, pty, hold, stop, log);
      relay.thread.start();
      return relay;
    } catch (SyscallException | RuntimeException e) {
      if (saved != null) {
        restoreQuietly(realFd, saved, real);
      }
      Tty.closeQuietly(hold);
      if (pty != null) {
        Tty.closeQuietly(pty.master());
      }
      if (stop != null) {
        Tty.closeQuietly(stop[0]);
        Tty.closeQuietly(stop[1]);
      }
      Tty.closeQuietly(realFd);
      throw e;
    }
  }

  /** Adds a viewer: it sees what the target writes from now on. */
  void watch(Viewer viewer) {
    viewers.add(viewer);
  }

  /** Removes a viewer. */
  void unwatch(Viewer viewer) {
    viewers.remove(viewer);
  }

  /**
   * Types {@code bytes} into the target's console as if typed on the real device: what the pty's
   * input buffer does not take now is dropped, as a terminal's line discipline drops it. Returns
   * the bytes taken.
   */
  int type(byte[] bytes) {
    int taken = 0;
    synchronized (input) {
      if (closed) {
        return 0;
      }
      try {
        for (int off = 0; off < bytes.length; ) {
          int n = Math.min(BUFFER, bytes.length - off);
          typed.write(0, bytes, off, n);
          long k = Tty.write(pty.master(), typed, 0, n);
          taken += (int) k;
          if (k < n) {
            break;
          }
          off += n;
        }
      } catch (SyscallException e) {
        LOG.debugf("console relay: typing into %s: %s", real, e.getMessage());
      }
    }
    return taken;
  }

  private void show(byte[] buf, int n) {
    for (Viewer v : viewers) {
      try {
        v.output(buf, 0, n);
      } catch (RuntimeException e) {
        LOG.debugf("console viewer: %s", e.getMessage());
      }
    }
  }

  /** The real device. */
  Path real() {
    return real;
  }

  /** The pty slave that stands in for the real device inside the target. */
  Path slave() {
    return pty.slave();
  }

  private static final class Stopping extends Exception {
    Stopping() {
      super(null, null, false, false);
    }
  }

  private void run() {
    byte[] buf = new byte[BUFFER];
    Memory out = new Memory(BUFFER);
    boolean hungUp = false;
    try {
      while (true) {
        int[] fds = {stop[0], hungUp ? -1 : pty.master(), realIn ? realFd : -1};
        short[] events = {Tty.POLLIN, Tty.POLLIN, Tty.POLLIN};
        short[] got = Tty.poll(fds, events, hungUp ? HANGUP_RETRY_MILLIS : -1);
        if (got[0] != 0) {
          drain(buf, out);
          return;
        }
        if (hungUp || got[1] != 0) {
          long n = Tty.read(pty.master(), buf);
          if (n > 0) {
            hungUp = false;
            log.write(buf, 0, (int) n);
            show(buf, (int) n);
            if (realOut) {
              writeAll(realFd, out, buf, n, true);
            }
          } else if (n == 0) {
            hungUp = false; // nothing to read: the slave is open again
          } else {
            // EIO: no descriptor of the slave is open any more (a vhangup took the relay's own
            // too). The relay opens it again, so the master reads what the target writes next,
            // and looks again in HANGUP_RETRY_MILLIS.
            reopenSlave();
            hungUp = true;
          }
        }
        if (realIn && got[2] != 0) {
          long n = Tty.read(realFd, buf);
          if (n > 0) {
            // Input the target does not read is dropped once the pty holds 4 KiB of it.
            synchronized (input) {
              writeAll(pty.master(), out, buf, n, false);
            }
          } else if (n < 0) {
            LOG.warnf("console relay: %s ended (%d); its input is no longer read", real, n);
            realIn = false;
          }
        }
      }
    } catch (Stopping e) {
      // closing
    } catch (SyscallException | RuntimeException e) {
      LOG.errorf("console relay for %s: %s; the relay stops", real, e.getMessage());
    }
  }

  private boolean reopenSlave() {
    try {
      int fresh = Tty.open(pty.slave(), Tty.O_RDWR);
      Tty.closeQuietly(slaveHold);
      slaveHold = fresh;
      return true;
    } catch (SyscallException e) {
      return false;
    }
  }

  /**
   * What the target wrote last (its power-off messages) before the relay stops: into the log, and
   * to the real device as far as it takes it without waiting.
   */
  private void drain(byte[] buf, Memory out) throws Stopping, SyscallException {
    for (int i = 0; i < 256; i++) {
      long n = Tty.read(pty.master(), buf);
      if (n <= 0) {
        return;
      }
      log.write(buf, 0, (int) n);
      show(buf, (int) n);
      if (realOut) {
        writeAll(realFd, out, buf, n, false);
      }
    }
  }

  /**
   * Writes {@code n} bytes; when {@code wait}, waits for the descriptor to take them (or the relay
   * to close), else drops what it does not take now. A failing real device is given up on for
   * output: the target's output still reaches the log.
   */
  private void writeAll(int fd, Memory out, byte[] buf, long n, boolean wait)
      throws Stopping, SyscallException {
    out.write(0, buf, 0, (int) n);
    long off = 0;
    while (off < n) {
      long k;
      try {
        k = Tty.write(fd, out, off, n - off);
      } catch (SyscallException e) {
        if (fd == realFd) {
          LOG.warnf("console relay: writing %s: %s; its output is no longer written", real, e);
          realOut = false;
          return;
        }
        throw e;
      }
      off += k;
      if (k == 0) {
        if (!wait) {
          return;
        }
        short[] got = Tty.poll(new int[] {stop[0], fd}, new short[] {Tty.POLLIN, Tty.POLLOUT}, -1);
        if (got[0] != 0) {
          throw new Stopping();
        }
      }
    }
  }

  /** Stops the thread, puts the real device's settings back and closes every descriptor. */
  @Override
  public void close() {
    try {
      Tty.LibC.write(stop[1], new Memory(1), 1);
    } catch (com.sun.jna.LastErrorException e) {
      // the pipe is full: the thread is being woken anyway
    }
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (thread.isAlive()) {
      LOG.warnf("console relay for %s did not stop within 5 s", real);
    }
    if (savedMode != null) {
      restoreQuietly(realFd, savedMode, real);
    }
    viewers.clear();
    synchronized (input) {
      closed = true;
    }
    Tty.closeQuietly(slaveHold);
    Tty.closeQuietly(pty.master());
    Tty.closeQuietly(realFd);
    Tty.closeQuietly(stop[0]);
    Tty.closeQuietly(stop[1]);
  }

  private static void restoreQuietly(int fd, byte[] mode, Path real) {
    try {
      Tty.setattr(fd, mode);
    } catch (SyscallException e) {
      LOG.warnf("console relay: restoring the settings of %s: %s", real, e.getMessage());
    }
  }
}
