package io.chrootbooter.agent.fetch;

import java.time.Duration;
import java.util.Optional;

/**
 * A progress event for the console progress bar and status reports.
 *
 * @param bytes bytes received so far (after a resume: counted from the start of the image)
 * @param total the image size, or -1 when the server did not say
 * @param bytesPerSecond mean rate since the download started
 * @param eta time left at that rate, empty when the total or the rate is unknown
 */
public record DownloadProgress(
    long bytes, long total, double bytesPerSecond, Optional<Duration> eta) {

  public DownloadProgress {
    if (bytes < 0) {
      throw new IllegalArgumentException("bytes " + bytes + " is negative");
    }
  }

  /** Computes rate and ETA from the byte counts and the elapsed time. */
  public static DownloadProgress of(long bytes, long total, Duration elapsed) {
    double seconds = Math.max(elapsed.toNanos(), 1) / 1e9;
    double rate = bytes / seconds;
    Optional<Duration> eta =
        total >= 0 && rate > 0
            ? Optional.of(Duration.ofMillis((long) (Math.max(total - bytes, 0) / rate * 1000)))
            : Optional.empty();
    return new DownloadProgress(bytes, total, rate, eta);
  }
}
