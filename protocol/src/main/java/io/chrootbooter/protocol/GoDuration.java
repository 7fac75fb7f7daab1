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
}
