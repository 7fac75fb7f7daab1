package io.chrootbooter.agent.console;

import java.util.Locale;

/**
 * A download progress line for the console: {@code [#########...........] 45% 12.3/27.0 MiB 8.1
 * MiB/s}. Pure; ASCII only, redrawn with a carriage return, so it works on a serial line.
 */
public final class ProgressBar {
  private ProgressBar() {}

  /**
   * @param total the size, or a value {@code <= 0} when unknown (then no bar, only bytes)
   * @param bytesPerSecond current rate
   * @param width characters between the brackets
   */
  public static String render(long bytes, long total, double bytesPerSecond, int width) {
    String rate = String.format(Locale.ROOT, "%.1f MiB/s", bytesPerSecond / 1048576.0);
    if (total <= 0) {
      return String.format(Locale.ROOT, "%.1f MiB  %s", bytes / 1048576.0, rate);
    }
    long done = Math.min(bytes, total);
    int filled = (int) (done * width / total);
    int percent = (int) (done * 100 / total);
    return "["
        + "#".repeat(filled)
        + ".".repeat(width - filled)
        + "] "
        + String.format(
            Locale.ROOT,
            "%3d%%  %.1f/%.1f MiB  %s",
            percent,
            done / 1048576.0,
            total / 1048576.0,
            rate);
  }
}
