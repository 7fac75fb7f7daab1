package io.chrootbooter.cli;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as kubectl and the API write them: 90s, 10m, 1h30m, 500ms. */
final class GoDurations {

  private static final Pattern PART = Pattern.compile("(\\d+)(ms|s|m|h)");

  private GoDurations() {}

  static Duration parse(String text, String what) {
    if (text == null || !text.matches("(\\d+(ms|s|m|h))+")) {
      throw new CliException(
          Exit.USAGE,
          what
              + " \""
              + Terminal.printable(String.valueOf(text))
              + "\": give a duration such as 90s, 10m or 1h30m");
    }
    Duration d = Duration.ZERO;
    Matcher m = PART.matcher(text);
    while (m.find()) {
      long n;
      try {
        n = Long.parseLong(m.group(1));
      } catch (NumberFormatException e) {
        throw new CliException(Exit.USAGE, what + " \"" + text + "\" is too long");
      }
      d =
          switch (m.group(2)) {
            case "ms" -> d.plusMillis(n);
            case "s" -> d.plusSeconds(n);
            case "m" -> d.plusMinutes(n);
            default -> d.plusHours(n);
          };
    }
    if (d.isZero() || d.compareTo(Duration.ofDays(7)) > 0) {
      throw new CliException(
          Exit.USAGE, what + " \"" + text + "\": give more than 0 and at most 168h");
    }
    return d;
  }

  static String format(Duration d) {
    long s = d.toSeconds();
    if (s < 60) {
      return d.toMillis() % 1000 == 0 ? s + "s" : d.toMillis() + "ms";
    }
    if (s % 3600 == 0) {
      return s / 3600 + "h";
    }
    if (s % 60 == 0) {
      return s / 60 + "m";
    }
    return s / 60 + "m" + s % 60 + "s";
  }
}
