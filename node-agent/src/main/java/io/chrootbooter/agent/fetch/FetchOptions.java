package io.chrootbooter.agent.fetch;

import java.util.Objects;
import java.util.function.Consumer;

/**
 * How to fetch one image.
 *
 * @param retry retries, backoff and stall timeout
 * @param cancel the signal that stops the download
 * @param progress receives a {@link DownloadProgress} at most every {@code progressInterval}
 *     milliseconds and once at the end
 * @param progressIntervalMillis the minimum time between two progress events
 */
public record FetchOptions(
    RetryPolicy retry,
    CancelSignal cancel,
    Consumer<DownloadProgress> progress,
    long progressIntervalMillis) {

  public FetchOptions {
    Objects.requireNonNull(retry, "retry");
    Objects.requireNonNull(cancel, "cancel");
    Objects.requireNonNull(progress, "progress");
    if (progressIntervalMillis < 0) {
      throw new IllegalArgumentException(
          "progressIntervalMillis " + progressIntervalMillis + " is negative");
    }
  }

  /** Default retries, a fresh cancel signal, no progress listener. */
  public static FetchOptions defaults() {
    return new FetchOptions(RetryPolicy.DEFAULT, new CancelSignal(), p -> {}, 1000);
  }
}
