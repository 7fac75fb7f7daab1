package io.chrootbooter.agent.relay;

import com.sun.jna.Memory;
import io.chrootbooter.agent.sys.SyscallException;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.function.BiConsumer;
import org.jboss.logging.Logger;

/**
 * Reads the kernel's log ({@code /dev/kmsg}) while a target runs, from the moment it starts: each
 * record goes into the {@link BootLog} as dmesg(1) prints it, and each kernel warning ({@link
 * KernelWarnings}) is recorded and handed to a listener. One read of {@code /dev/kmsg} returns one
 * record; records overwritten before they were read (EPIPE) are skipped. A FIFO or a regular file
 * in its place is read line by line.
 */
final class KmsgReader implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(KmsgReader.class);
  private static final int RECORD = 8192;
  private static final int FILE_RETRY_MILLIS = 50;

  private final Path path;
  private final int fd;
  private final int[] stop;
  private final BootLog log;
  private final BiConsumer<BootLog, String> onWarning;
  private final Thread thread;

  private KmsgReader(
      Path path, int fd, int[] stop, BootLog log, BiConsumer<BootLog, String> onWarning) {
    this.path = path;
    this.fd = fd;
    this.stop = stop;
    this.log = log;
    this.onWarning = onWarning;
    this.thread = new Thread(this::run, "cb-kmsg");
    thread.setDaemon(true);
  }

  static KmsgReader start(Path path, BootLog log, BiConsumer<BootLog, String> onWarning)
      throws SyscallException {
    int fd = Tty.open(path, Tty.O_RDONLY);
    int[] stop;
    try {
      Tty.seekEnd(fd);
      stop = Tty.pipe();
    } catch (SyscallException e) {
      Tty.closeQuietly(fd);
      throw e;
    }
    KmsgReader reader = new KmsgReader(path, fd, stop, log, onWarning);
    reader.thread.start();
    return reader;
  }

  private void run() {
    byte[] buf = new byte[RECORD];
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    boolean endOfFile = false;
    try {
      while (true) {
        short[] got =
            Tty.poll(
                new int[] {stop[0], endOfFile ? -1 : fd},
                new short[] {Tty.POLLIN, Tty.POLLIN},
                endOfFile ? FILE_RETRY_MILLIS : -1);
        if (got[0] != 0) {
          return;
        }
        long n = Tty.read(fd, buf);
        if (n == -1) {
          endOfFile = true; // a regular file: look again later, as tail -f does
          continue;
        }
        endOfFile = false;
        if (n == -Tty.EPIPE) {
          continue; // overwritten before it was read
        }
        if (n < 0) {
          LOG.warnf("%s: read error %d; the kernel's log is no longer recorded", path, -n);
          return;
        }
        for (int i = 0; i < n; i++) {
          if (buf[i] == '\n') {
            record(line.toString(StandardCharsets.UTF_8));
            line.reset();
          } else if (line.size() < RECORD) {
            line.write(buf[i]);
          }
        }
      }
    } catch (SyscallException | RuntimeException e) {
      LOG.errorf("%s: %s; the kernel's log is no longer recorded", path, e.getMessage());
    }
  }

  private void record(String text) {
    KernelWarnings.parse(text)
        .ifPresent(
            r -> {
              log.append(r.line() + "\r\n");
              if (KernelWarnings.isWarning(r.message()) && log.warning(r.message())) {
                onWarning.accept(log, r.message());
              }
            });
  }

  @Override
  public void close() {
    try {
      Tty.LibC.write(stop[1], new Memory(1), 1);
    } catch (com.sun.jna.LastErrorException e) {
      // already being woken
    }
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    Tty.closeQuietly(fd);
    Tty.closeQuietly(stop[0]);
    Tty.closeQuietly(stop[1]);
  }
}
