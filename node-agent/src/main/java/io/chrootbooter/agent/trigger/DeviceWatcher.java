package io.chrootbooter.agent.trigger;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * The thin reading loop under every device trigger: one daemon thread reads {@code path} and hands
 * each chunk to a pure decoder. A FIFO is opened read-write so that it never reports end of file
 * when a writer goes away (fifo(7)); {@link #close()} closes the channel, which wakes the blocked
 * read.
 */
public final class DeviceWatcher implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(DeviceWatcher.class);

  private final Path path;
  private final FileChannel channel;
  private final Thread thread;
  private volatile boolean closing;

  private DeviceWatcher(
      Path path, FileChannel channel, int chunk, Consumer<ByteBuffer> sink, Runnable onEnd) {
    this.path = path;
    this.channel = channel;
    this.thread =
        new Thread(
            () -> {
              loop(chunk, sink);
              if (!closing) {
                onEnd.run();
              }
            },
            "cb-watch-" + path.getFileName());
    thread.setDaemon(true);
  }

  /**
   * Starts reading {@code path}.
   *
   * @param chunk read size; the sink gets whole multiples of it when the device delivers records of
   *     that size (evdev returns only whole {@code input_event}s)
   * @param sink called on the watcher thread with each chunk read
   */
  public static DeviceWatcher start(Path path, int chunk, Consumer<ByteBuffer> sink)
      throws IOException {
    return start(path, chunk, sink, () -> {});
  }

  /**
   * Starts reading {@code path}; {@code onEnd} runs on the watcher thread when the device ends (end
   * of file, ENODEV when it is unplugged, any read error), not when it is closed.
   */
  public static DeviceWatcher start(Path path, int chunk, Consumer<ByteBuffer> sink, Runnable onEnd)
      throws IOException {
    boolean fifo = !Files.isRegularFile(path) && Files.isWritable(path) && isFifo(path);
    FileChannel channel =
        fifo
            ? FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)
            : FileChannel.open(path, StandardOpenOption.READ);
    DeviceWatcher watcher = new DeviceWatcher(path, channel, chunk, sink, onEnd);
    watcher.thread.start();
    return watcher;
  }

  private static boolean isFifo(Path path) throws IOException {
    Object mode = Files.getAttribute(path, "unix:mode");
    return (((Integer) mode) & 0170000) == 0010000;
  }

  private void loop(int chunk, Consumer<ByteBuffer> sink) {
    ByteBuffer buffer = ByteBuffer.allocate(chunk * 64);
    try {
      while (true) {
        int n = channel.read(buffer);
        if (n < 0) {
          LOG.debugf("%s: end of file", path);
          return;
        }
        if (buffer.position() >= chunk) {
          buffer.flip();
          int whole = buffer.remaining() / chunk * chunk;
          ByteBuffer slice = buffer.slice(0, whole);
          sink.accept(slice);
          buffer.position(whole);
          buffer.compact();
        }
      }
    } catch (ClosedChannelException e) {
      if (!closing) {
        LOG.warnf("%s: closed under the watcher", path);
      }
    } catch (IOException e) {
      LOG.warnf("%s: %s; no more triggers from it", path, e.getMessage());
    }
  }

  /** The watched path. */
  public Path path() {
    return path;
  }

  @Override
  public void close() throws IOException {
    closing = true;
    channel.close();
    if (Thread.currentThread() == thread) {
      return;
    }
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
