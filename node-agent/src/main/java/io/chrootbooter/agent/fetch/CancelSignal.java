package io.chrootbooter.agent.fetch;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Cancels a download at any moment (a new spec arrives): blocked reads return at once with {@link
 * DownloadCancelledException}, and retry waits end.
 */
public final class CancelSignal {
  private final CountDownLatch cancelled = new CountDownLatch(1);
  private final List<Runnable> listeners = new CopyOnWriteArrayList<>();

  /** Cancels; idempotent. */
  public void cancel() {
    if (cancelled.getCount() == 0) {
      return;
    }
    cancelled.countDown();
    listeners.forEach(Runnable::run);
  }

  public boolean isCancelled() {
    return cancelled.getCount() == 0;
  }

  /** Runs {@code listener} on cancel (at once when already cancelled). */
  public void onCancel(Runnable listener) {
    listeners.add(listener);
    if (isCancelled()) {
      listener.run();
    }
  }

  /** Waits up to {@code timeout}; true when cancelled meanwhile. */
  public boolean await(Duration timeout) throws InterruptedException {
    return cancelled.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }
}
