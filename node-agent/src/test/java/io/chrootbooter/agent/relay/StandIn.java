package io.chrootbooter.agent.relay;

import com.sun.jna.Memory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A pty pair standing in for a real console device (a serial line, a VGA console): the relay opens
 * its slave as the "real device"; the test reads what reaches the device from the master, as the
 * person at the machine would see it, and types into the master. The first {@link #KEPT} bytes are
 * kept as text, all of them counted.
 */
final class StandIn implements AutoCloseable {
  static final int KEPT = 1 << 20;

  private final Tty.Pty pty;
  private final int slaveHold;
  private final int[] stop;
  private final ByteArrayOutputStream kept = new ByteArrayOutputStream();
  private final Thread reader;
  private volatile long count;

  private StandIn(Tty.Pty pty, int slaveHold, int[] stop) {
    this.pty = pty;
    this.slaveHold = slaveHold;
    this.stop = stop;
    this.reader = new Thread(this::pump, "stand-in " + pty.slave());
    reader.setDaemon(true);
    reader.start();
  }

  static StandIn open() throws IOException {
    Tty.Pty pty = Tty.openPty();
    return new StandIn(pty, Tty.open(pty.slave(), Tty.O_RDWR), Tty.pipe());
  }

  /** The device the relay is given. */
  Path device() {
    return pty.slave();
  }

  private void pump() {
    byte[] buf = new byte[65536];
    try {
      while (true) {
        short[] got =
            Tty.poll(new int[] {stop[0], pty.master()}, new short[] {Tty.POLLIN, Tty.POLLIN}, 100);
        if (got[0] != 0) {
          return;
        }
        long n = Tty.read(pty.master(), buf);
        if (n > 0) {
          synchronized (kept) {
            kept.write(buf, 0, (int) Math.min(n, Math.max(0, KEPT - kept.size())));
          }
          count += n;
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** What reached the device so far (its first {@link #KEPT} bytes). */
  String text() {
    synchronized (kept) {
      return kept.toString(StandardCharsets.UTF_8);
    }
  }

  /** How many bytes reached the device. */
  long count() {
    return count;
  }

  /** Types {@code text} on the device's keyboard. */
  void type(String text) throws IOException {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    Memory m = new Memory(bytes.length);
    m.write(0, bytes, 0, bytes.length);
    long n = Tty.write(pty.master(), m, 0, bytes.length);
    if (n != bytes.length) {
      throw new IOException("typed " + n + " of " + bytes.length + " bytes");
    }
  }

  @Override
  public void close() throws InterruptedException {
    Tty.LibC.write(stop[1], new Memory(1), 1);
    reader.join(5_000);
    Tty.closeQuietly(slaveHold);
    Tty.closeQuietly(pty.master());
    Tty.closeQuietly(stop[0]);
    Tty.closeQuietly(stop[1]);
  }
}
