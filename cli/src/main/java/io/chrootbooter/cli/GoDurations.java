package io.chrootbooter.cli;

import io.chrootbooter.protocol.GoDuration;
import java.time.Duration;

/** Durations as kubectl and the API write them: 90s, 10m, 1h30m, 500ms. */
final class GoDurations {

  private GoDurations() {}

  /** A duration the user gave: Go's notation ({@link GoDuration}), more than 0 and at most 168h. */
  static Duration parse(String text, String what) {
    Duration d =
        GoDuration.tryParse(text)
            .orElseThrow(
                () ->
                    new CliException(
                        Exit.USAGE,
                        what
                            + " \""
                            + Terminal.printable(String.valueOf(text))
                            + "\": give a duration such as 90s, 10m or 1h30m"));
    if (d.isZero() || d.compareTo(Duration.ofDays(7)) > 0) {
      throw new CliException(
          Exit.USAGE, what + " \"" + text + "\": give more than 0 and at most 168h");
    }
    return d;
  }

  static String format(Duration d) {
    return GoDuration.format(d);
  }
}
