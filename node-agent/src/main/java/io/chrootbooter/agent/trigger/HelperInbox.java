package io.chrootbooter.agent.trigger;

import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * Coalesces the in-target helper's messages before they reach the boot controller: a return request
 * is a return request however many arrive, and so is a healthy report. The target is untrusted and
 * can write lines to its FIFO as fast as it likes, while the controller may be busy for seconds (a
 * return's grace period holds its lock); instead of one queued task per line, the inbox holds two
 * flags (the first return's reason, and "healthy") and at most one pending hand-over to {@code
 * executor}. A flood costs the FIFO's reader some parsing and nothing else.
 */
public final class HelperInbox {
  private final Executor executor;
  private final Consumer<HelperMessage> handler;
  private final AtomicReference<String> returnReason = new AtomicReference<>();
  private final AtomicBoolean healthy = new AtomicBoolean();
  private final AtomicBoolean scheduled = new AtomicBoolean();

  /**
   * @param executor where {@code handler} runs (never on the FIFO's reader thread)
   * @param handler called with a {@link HelperMessage.Healthy} and then a {@link
   *     HelperMessage.Return} (the first reason since the last hand-over), each only when one
   *     arrived
   */
  public HelperInbox(Executor executor, Consumer<HelperMessage> handler) {
    this.executor = executor;
    this.handler = handler;
  }

  /** Takes one message; returns at once. */
  public void offer(HelperMessage message) {
    if (message instanceof HelperMessage.Healthy) {
      healthy.set(true);
    } else if (message instanceof HelperMessage.Return r) {
      returnReason.compareAndSet(null, r.reason());
    }
    if (scheduled.compareAndSet(false, true)) {
      executor.execute(this::drain);
    }
  }

  private void drain() {
    // Cleared first: a message that arrives while the handler runs schedules one more drain.
    scheduled.set(false);
    if (healthy.getAndSet(false)) {
      handler.accept(new HelperMessage.Healthy());
    }
    String reason = returnReason.getAndSet(null);
    if (reason != null) {
      handler.accept(new HelperMessage.Return(reason));
    }
  }
}
