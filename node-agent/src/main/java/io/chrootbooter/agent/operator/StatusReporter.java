package io.chrootbooter.agent.operator;

import io.chrootbooter.protocol.StatusReport;
import java.time.Duration;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * Sends the agent's status to the operator: {@link #poke()} says "something changed"; a thread
 * sends the latest {@link StatusReport} at most once per {@code interval}, so a burst of progress
 * updates costs one request, and the last state is always sent (it is read when sending, not when
 * poked). Failed sends are retried with the then-current state.
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

  public StatusReporter(Sender sender, Supplier<StatusReport> snapshot, Duration interval) {
    this.sender = sender;
    this.snapshot = snapshot;
    this.interval = interval;
    this.thread = new Thread(this::loop, "cb-status-reporter");
    this.thread.setDaemon(true);
    this.thread.start();
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
            wait();
          }
          if (closed && !dirty) {
            return;
          }
          dirty = false;
        }
        StatusReport report = snapshot.get();
        if (sender.send(report)) {
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
