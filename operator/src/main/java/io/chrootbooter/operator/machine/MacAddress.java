package io.chrootbooter.operator.machine;

import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/** MAC addresses in the notations firmware, iPXE and people write them in. */
public final class MacAddress {
  private static final Pattern SEPARATED =
      Pattern.compile("^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\\1[0-9A-Fa-f]{2}){4}$");
  private static final Pattern DOTTED = Pattern.compile("^([0-9A-Fa-f]{4}\\.){2}[0-9A-Fa-f]{4}$");
  private static final Pattern BARE = Pattern.compile("^[0-9A-Fa-f]{12}$");

  private MacAddress() {}

  /**
   * The canonical form, lower case with colons ({@code 52:54:00:12:34:56}), of a MAC written with
   * colons, dashes ({@code 52-54-00-12-34-56}), Cisco dots ({@code 5254.0012.3456}) or no
   * separator, in any case; empty when {@code text} is none of these.
   */
  public static Optional<String> normalize(String text) {
    if (text == null) {
      return Optional.empty();
    }
    String hex;
    if (SEPARATED.matcher(text).matches()) {
      hex = text.replaceAll("[:-]", "");
    } else if (DOTTED.matcher(text).matches()) {
      hex = text.replace(".", "");
    } else if (BARE.matcher(text).matches()) {
      hex = text;
    } else {
      return Optional.empty();
    }
    hex = hex.toLowerCase(Locale.ROOT);
    StringBuilder out = new StringBuilder(17);
    for (int i = 0; i < 12; i += 2) {
      if (i > 0) {
        out.append(':');
      }
      out.append(hex, i, i + 2);
    }
    return Optional.of(out.toString());
  }
}
