package io.chrootbooter.agent.daemon;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Parses the durations of the MachineBoot API ({@code 90s}, {@code 5m}, {@code 1h30m}). */
final class GoDuration {
  private static final Pattern WHOLE = Pattern.compile("(?:[0-9]+(?:ms|h|m|s))+");
  private static final Pattern PART = Pattern.compile("([0-9]+)(ms|h|m|s)");

  private GoDuration() {}

  /**
   * @return the duration; zero for null or empty (no limit)
   * @throws IllegalArgumentException naming the accepted form
   */
  static Duration parse(String value) {
    if (value == null || value.isEmpty()) {
      return Duration.ZERO;
    }
    if (!WHOLE.matcher(value).matches()) {
      throw new IllegalArgumentException("duration \"" + value + "\" is not like 90s, 5m or 1h30m");
    }
    Duration total = Duration.ZERO;
    Matcher m = PART.matcher(value);
    while (m.find()) {
      long n = Long.parseLong(m.group(1));
      total =
          total.plus(
              switch (m.group(2)) {
                case "h" -> Duration.ofHours(n);
                case "m" -> Duration.ofMinutes(n);
                case "s" -> Duration.ofSeconds(n);
                default -> Duration.ofMillis(n);
              });
    }
    return total;
  }
}
