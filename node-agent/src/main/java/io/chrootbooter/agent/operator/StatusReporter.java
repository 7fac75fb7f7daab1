package io.chrootbooter.agent.operator;

import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.StatusReport;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * Sends the agent's status to the operator: {@link #poke()} says "something changed"; a thread
 * sends the latest {@link StatusReport} at most once per {@code interval}, so a burst of progress
 * updates costs one request, and the last state is always sent (it is read when sending, not when
 * poked). Failed sends are retried with the then-current state.
 *
 * <p>The full report is also sent every {@link #heartbeat(Duration) heartbeat} when nothing
 * changed: it is how the operator knows the machine is alive (a powered-off machine closes no
 * connection), and it heals a status that shows something else within one heartbeat.
 */
public final class StatusReporter implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(StatusReporter.class);

  /** How a report reaches the operator. */
  public interface Sender {
    /** True when done with (sent, or refused for good); false to retry. */
    boolean send(StatusReport report) throws InterruptedException;
  }

  private final Sender sender;
  private final Supplier<StatusReport> snapshot;
  private final Duration interval;
  private final Thread thread;
  private boolean dirty = true;
  private boolean closed;
  private Duration heartbeat;
  private long lastSentNanos = System.nanoTime();

  public StatusReporter(Sender sender, Supplier<StatusReport> snapshot, Duration interval) {
    this(sender, snapshot, interval, null);
  }

  /**
   * @param heartbeat how often the report is sent when nothing changed; null: only on change
   */
  public StatusReporter(
      Sender sender, Supplier<StatusReport> snapshot, Duration interval, Duration heartbeat) {
    this.heartbeat = heartbeat;
    this.sender = sender;
    this.snapshot = snapshot;
    this.interval = interval;
    this.thread = new Thread(this::loop, "cb-status-reporter");
    this.thread.setDaemon(true);
    this.thread.start();
  }

  /** The shortest heartbeat the agent accepts from its operator. */
  static final Duration MIN_HEARTBEAT = Duration.ofSeconds(1);

  /** The longest heartbeat the agent accepts from its operator. */
  static final Duration MAX_HEARTBEAT = Duration.ofHours(1);

  /**
   * The heartbeat a desired state's {@code heartbeat} asks for: {@link
   * DesiredState#DEFAULT_HEARTBEAT} when absent or not a duration, held within {@link
   * #MIN_HEARTBEAT} and {@link #MAX_HEARTBEAT} (the stream is not trusted: a hostile value must not
   * make the agent flood the operator or fall silent).
   */
  public static Duration heartbeatOf(String text) {
    Duration d =
        GoDuration.tryParse(text)
            .orElseGet(() -> GoDuration.parse("heartbeat", DesiredState.DEFAULT_HEARTBEAT));
    if (d.compareTo(MIN_HEARTBEAT) < 0) {
      return MIN_HEARTBEAT;
    }
    return d.compareTo(MAX_HEARTBEAT) > 0 ? MAX_HEARTBEAT : d;
  }

  /** Sends the report at least this often from now on; null: only on change. */
  public synchronized void heartbeat(Duration every) {
    if (!java.util.Objects.equals(every, heartbeat)) {
      heartbeat = every;
      notifyAll();
    }
  }

  /** The heartbeat in force; null when the report is sent only on change. */
  public synchronized Duration heartbeat() {
    return heartbeat;
  }

  /** The status changed: send it soon. */
  public synchronized void poke() {
    dirty = true;
    notifyAll();
  }

  private void loop() {
    Duration retry = Duration.ofSeconds(1);
    try {
      while (true) {
        synchronized (this) {
          while (!dirty && !closed) {
            if (heartbeat == null) {
              wait();
              continue;
            }
            long left = lastSentNanos + heartbeat.toNanos() - System.nanoTime();
            if (left <= 0) {
              dirty = true; // nothing changed, but the operator hears from us
            } else {
              TimeUnit.NANOSECONDS.timedWait(this, left);
            }
          }
          if (closed && !dirty) {
            return;
          }
          dirty = false;
        }
        StatusReport report = snapshot.get();
        if (sender.send(report)) {
          synchronized (this) {
            lastSentNanos = System.nanoTime();
          }
          retry = Duration.ofSeconds(1);
          Thread.sleep(interval.toMillis());
        } else {
          synchronized (this) {
            dirty = true;
            if (closed) {
              return;
            }
          }
          Thread.sleep(retry.toMillis());
          retry =
              retry.multipliedBy(2).compareTo(Duration.ofSeconds(30)) > 0
                  ? Duration.ofSeconds(30)
                  : retry.multipliedBy(2);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (RuntimeException e) {
      LOG.errorf(e, "the status reporter stopped");
    }
  }

  /** Sends what is pending (waiting up to {@code timeout}), then stops. */
  public void close(Duration timeout) {
    synchronized (this) {
      closed = true;
      notifyAll();
    }
    try {
      thread.join(timeout.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    thread.interrupt();
  }

  @Override
  public void close() {
    close(Duration.ofSeconds(2));
  }
}
