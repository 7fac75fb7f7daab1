package io.chrootbooter.protocol;

import java.time.Duration;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The durations of the API and the protocol, in Go's notation as Kubernetes writes them: {@code
 * 500ms}, {@code 90s}, {@code 5m}, {@code 1h30m}. At most six digits a part, so no value a hostile
 * sender picks overflows.
 */
public final class GoDuration {
  /** The accepted form, valid in both Go's RE2 (the CRD schema) and {@link java.util.regex}. */
  public static final String PATTERN = "^([0-9]{1,6}(ms|s|m|h))+$";

  private static final Pattern WHOLE = Pattern.compile(PATTERN);
  private static final Pattern PART = Pattern.compile("([0-9]{1,6})(ms|s|m|h)");

  private GoDuration() {}

  /** The duration {@code text} names; empty when it is null or not of {@link #PATTERN}. */
  public static Optional<Duration> tryParse(String text) {
    if (text == null || !WHOLE.matcher(text).matches()) {
      return Optional.empty();
    }
    Duration total = Duration.ZERO;
    Matcher m = PART.matcher(text);
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
    return Optional.of(total);
  }

  /**
   * The duration {@code text} names.
   *
   * @param field what the value is, for the message, such as {@code --grace}
   * @throws IllegalArgumentException naming the field, the value and the accepted form
   */
  public static Duration parse(String field, String text) {
    return tryParse(text)
        .orElseThrow(
            () ->
                new IllegalArgumentException(
                    field
                        + ": "
                        + (text == null
                            ? "null"
                            : "\"" + text.replaceAll("[^\\x20-\\x7e]", "?") + "\"")
                        + " is not a duration such as 500ms, 90s, 5m or 1h30m"));
  }

  /**
   * A duration as Go writes it, to the second or, below a minute, to the millisecond: {@code 15s},
   * {@code 2500ms}, {@code 1h2m3s}; {@code 0s} for zero or less.
   */
  public static String format(Duration d) {
    if (d.isNegative() || d.isZero()) {
      return "0s";
    }
    if (d.toMillisPart() != 0 && d.toSeconds() < 60) {
      return d.toMillis() + "ms";
    }
    long s = d.toSeconds();
    StringBuilder out = new StringBuilder();
    if (s >= 3600) {
      out.append(s / 3600).append('h');
    }
    if (s % 3600 >= 60) {
      out.append(s % 3600 / 60).append('m');
    }
    if (s % 60 != 0 || out.length() == 0) {
      out.append(s % 60).append('s');
    }
    return out.toString();
  }
}
