package io.chrootbooter.agent.fetch;

import io.chrootbooter.protocol.Backoff;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import javax.net.ssl.SSLSocketFactory;

/**
 * How to fetch one image.
 *
 * @param retry attempts in a row without a received byte, and the waits between them ({@link
 *     Retries#policy})
 * @param stallTimeout how long a connection may deliver nothing before it counts as dropped
 * @param cancel the signal that stops the download
 * @param progress receives a {@link DownloadProgress} at most every {@code progressInterval}
 *     milliseconds and once at the end
 * @param progressIntervalMillis the minimum time between two progress events
 * @param tls the sockets of an {@code https} download (the CA pin of {@code cb.ca}); empty for the
 *     JDK's default trust store
 */
public record FetchOptions(
    Backoff retry,
    Duration stallTimeout,
    CancelSignal cancel,
    Consumer<DownloadProgress> progress,
    long progressIntervalMillis,
    Optional<SSLSocketFactory> tls) {

  public FetchOptions {
    Objects.requireNonNull(retry, "retry");
    Objects.requireNonNull(stallTimeout, "stallTimeout");
    Objects.requireNonNull(cancel, "cancel");
    Objects.requireNonNull(progress, "progress");
    Objects.requireNonNull(tls, "tls");
    if (stallTimeout.isNegative() || stallTimeout.isZero()) {
      throw new IllegalArgumentException("stallTimeout " + stallTimeout + " must be positive");
    }
    if (progressIntervalMillis < 0) {
      throw new IllegalArgumentException(
          "progressIntervalMillis " + progressIntervalMillis + " is negative");
    }
  }

  /** Options with the JDK's default trust store for {@code https}. */
  public FetchOptions(
      Backoff retry,
      Duration stallTimeout,
      CancelSignal cancel,
      Consumer<DownloadProgress> progress,
      long progressIntervalMillis) {
    this(retry, stallTimeout, cancel, progress, progressIntervalMillis, Optional.empty());
  }

  /** These options with {@code tls} for {@code https} downloads. */
  public FetchOptions withTls(Optional<SSLSocketFactory> tls) {
    return new FetchOptions(retry, stallTimeout, cancel, progress, progressIntervalMillis, tls);
  }

  /** Default retries and stall timeout, a fresh cancel signal, no progress listener. */
  public static FetchOptions defaults() {
    return new FetchOptions(
        Retries.DOWNLOAD, Retries.STALL_TIMEOUT, new CancelSignal(), p -> {}, 1000);
  }
}
