package io.chrootbooter.operator;

import java.util.List;
import java.util.regex.Pattern;

/**
 * Builds the violation messages of spec validation: field, value and rule, in the style {@code
 * spec.sha256: "abc1" is not 64 lower-case hex digits}. Values are quoted with every control or
 * non-ASCII character escaped, so a hostile value cannot forge lines in a log, an event or a status
 * message.
 */
public final class SpecRules {
  private static final int MAX_SHOWN = 80;

  private SpecRules() {}

  /** Adds a violation when {@code value} is present and does not match {@code pattern}. */
  public static void match(
      List<String> violations, String field, String value, Pattern pattern, String rule) {
    if (value != null && !pattern.matcher(value).matches()) {
      violations.add(field + ": " + quote(value) + " " + rule);
    }
  }

  /** Adds a violation when {@code value} is absent. */
  public static void require(List<String> violations, String field, Object value) {
    if (value == null) {
      violations.add(field + ": required");
    }
  }

  /** The value in double quotes, escaped and shortened for a one-line message. */
  public static String quote(String value) {
    StringBuilder out = new StringBuilder("\"");
    int shown = 0;
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (shown++ == MAX_SHOWN) {
        out.append("…(").append(value.length()).append(" characters)");
        break;
      }
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20 || c > 0x7e) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append('"').toString();
  }
}
