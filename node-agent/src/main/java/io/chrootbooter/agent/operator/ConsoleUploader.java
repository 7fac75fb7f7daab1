package io.chrootbooter.agent.operator;

import io.chrootbooter.agent.relay.BootLog;
import io.chrootbooter.protocol.ConsoleChunk;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * Sends the recorded console to the operator over the agent's own outbound connection (no port
 * listens on the machine): one thread posts what each boot's {@link BootLog} gained since the last
 * accepted chunk, at most {@link #MAX_CHUNK} bytes at a time, every {@link #INTERVAL} or at once
 * when {@link #poke}d (a kernel warning, a new boot). A log the ring overwrote before it was sent
 * is sent from its oldest byte kept; the chunk's offset says so. When a new boot's log starts, the
 * rest of the old one is sent first.
 */
public final class ConsoleUploader implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(ConsoleUploader.class);
  static final Duration INTERVAL = Duration.ofSeconds(1);
  static final int MAX_CHUNK = 256 * 1024;

  /** Posts a chunk; true when accepted or refused for good, false to send it again later. */
  @FunctionalInterface
  public interface Sink {
    boolean send(ConsoleChunk chunk) throws InterruptedException;
  }

  private final Sink sink;
  private final Supplier<Optional<BootLog>> current;
  private final Thread thread;
  private volatile boolean closed;
  private BootLog sending;
  private long offset;
  private int warningsSent;
  private boolean endSent;

  public ConsoleUploader(Sink sink, Supplier<Optional<BootLog>> current) {
    this.sink = sink;
    this.current = current;
    this.thread = new Thread(this::run, "cb-console-upload");
    thread.setDaemon(true);
    thread.start();
  }

  /** Sends what is new now rather than at the next interval. */
  public void poke() {
    LockSupport.unpark(thread);
  }

  private void run() {
    while (!closed) {
      try {
        while (!closed && sendOnce()) {
          // more to send: go on at once
        }
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        LOG.warnf("console upload: %s", e.getMessage());
      }
      LockSupport.parkNanos(INTERVAL.toNanos());
    }
  }

  /** Sends one chunk when there is something to send; true when it was accepted. */
  boolean sendOnce() throws InterruptedException {
    Optional<BootLog> now = current.get();
    if (sending == null || (now.isPresent() && now.get() != sending && done(sending))) {
      if (now.isEmpty() || now.get() == sending) {
        return false;
      }
      sending = now.get();
      offset = 0;
      warningsSent = 0;
      endSent = false;
    }
    BootLog log = sending;
    boolean ended = log.ended();
    BootLog.Chunk chunk = log.read(offset, MAX_CHUNK);
    List<String> warnings = log.warnings();
    boolean endNow = ended && chunk.end() >= log.total() && !endSent;
    if (chunk.data().length == 0 && warnings.size() <= warningsSent && !endNow) {
      return false;
    }
    ConsoleChunk message =
        new ConsoleChunk(
            log.id(),
            log.image(),
            log.started().toString(),
            chunk.start(),
            Base64.getEncoder().encodeToString(chunk.data()),
            warningsSent,
            warnings.subList(warningsSent, warnings.size()),
            endNow);
    if (!sink.send(message)) {
      return false;
    }
    offset = chunk.end();
    warningsSent = warnings.size();
    endSent |= endNow;
    return true;
  }

  private boolean done(BootLog log) {
    return log.ended() && endSent && offset >= log.total() && warningsSent >= log.warnings().size();
  }

  @Override
  public void close() {
    closed = true;
    LockSupport.unpark(thread);
    try {
      thread.join(2_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
