package io.chrootbooter.operator.machine;

import java.util.Optional;

/**
 * MAC addresses in the notations firmware, iPXE and people write them in.
 *
 * <p>A character loop rather than regular expressions: every iPXE request goes through {@link
 * #normalize}, and the canonical form, the one iPXE's {@code ${net0/mac}} expands to, comes back as
 * the same string without a copy.
 */
public final class MacAddress {
  private static final int CANONICAL_LENGTH = 17;

  private MacAddress() {}

  /**
   * The canonical form, lower case with colons ({@code 52:54:00:12:34:56}), of a MAC written with
   * colons, dashes ({@code 52-54-00-12-34-56}), Cisco dots ({@code 5254.0012.3456}) or no
   * separator, in any case; empty when {@code text} is none of these. Only ASCII hex digits count:
   * look-alikes such as full-width digits are refused.
   */
  public static Optional<String> normalize(String text) {
    if (text == null) {
      return Optional.empty();
    }
    int length = text.length();
    // Separator positions: every third character (xx:xx:…), every fifth (xxxx.xxxx.xxxx), none.
    int stride;
    char separator;
    if (length == CANONICAL_LENGTH) {
      stride = 3;
      separator = text.charAt(2);
      if (separator != ':' && separator != '-') {
        return Optional.empty();
      }
    } else if (length == 14) {
      stride = 5;
      separator = '.';
    } else if (length == 12) {
      stride = 0;
      separator = 0;
    } else {
      return Optional.empty();
    }
    char[] out = new char[CANONICAL_LENGTH];
    boolean canonical = separator == ':';
    int digits = 0;
    for (int i = 0; i < length; i++) {
      char c = text.charAt(i);
      if (stride != 0 && i % stride == stride - 1) {
        if (c != separator) {
          return Optional.empty();
        }
        continue;
      }
      char lower = lowerHex(c);
      if (lower == 0) {
        return Optional.empty();
      }
      canonical &= lower == c;
      if (digits > 0 && digits % 2 == 0) {
        out[digits / 2 * 3 - 1] = ':';
      }
      out[digits / 2 * 3 + digits % 2] = lower;
      digits++;
    }
    return Optional.of(canonical ? text : new String(out));
  }

  /** The lower-case form of an ASCII hex digit; 0 for any other character. */
  private static char lowerHex(char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
      return c;
    }
    if (c >= 'A' && c <= 'F') {
      return (char) (c + ('a' - 'A'));
    }
    return 0;
  }
}
