package io.chrootbooter.agent.relay;

import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Reads {@code /dev/kmsg} records (Documentation/ABI/testing/dev-kmsg: {@code
 * prio,seq,usec,flags[,...];message}, continuation lines indented by a space) and tells which are
 * kernel warnings worth an Event: a {@code BUG:}, a {@code WARNING:}, an {@code Oops}, or the hung
 * task detector's {@code INFO: task ... blocked for more than N seconds}. Pure.
 */
public final class KernelWarnings {
  private static final Pattern WARNING =
      Pattern.compile(
          "(^|\\s)(BUG:|WARNING:|Oops\\b|Kernel panic\\b)|INFO: task .* blocked for more than");

  /** Longest message taken into a warning: an Event message is short. */
  static final int MAX_MESSAGE = 1000;

  /** One record: the time since boot and the message's first line. */
  public record Record(long micros, int level, String message) {
    /** As dmesg(1) prints it: {@code [ 1.234567] message}. */
    public String line() {
      return String.format("[%5d.%06d] %s", micros / 1_000_000, micros % 1_000_000, message);
    }
  }

  private KernelWarnings() {}

  /** Parses one record; empty for a continuation line or anything malformed. */
  public static Optional<Record> parse(String record) {
    if (record.isEmpty() || record.charAt(0) == ' ') {
      return Optional.empty();
    }
    int semi = record.indexOf(';');
    if (semi < 0) {
      return Optional.empty();
    }
    String[] fields = record.substring(0, semi).split(",");
    if (fields.length < 3) {
      return Optional.empty();
    }
    try {
      int prio = Integer.parseInt(fields[0]);
      long micros = Long.parseLong(fields[2]);
      String message = record.substring(semi + 1);
      int nl = message.indexOf('\n');
      if (nl >= 0) {
        message = message.substring(0, nl);
      }
      return Optional.of(new Record(micros, prio & 7, printable(message)));
    } catch (NumberFormatException e) {
      return Optional.empty();
    }
  }

  /** Whether {@code message} is a warning that becomes a {@code KernelWarning} Event. */
  public static boolean isWarning(String message) {
    return WARNING.matcher(message).find();
  }

  /**
   * kmsg escapes unprintable bytes as {@code \xNN}; anything else unprintable is replaced here, and
   * the message is cut to {@link #MAX_MESSAGE} characters.
   */
  static String printable(String message) {
    String clean = message.replaceAll("[\\p{Cntrl}&&[^\t]]", "?");
    byte[] utf8 = clean.getBytes(StandardCharsets.UTF_8);
    return clean.length() > MAX_MESSAGE || utf8.length > 4 * MAX_MESSAGE
        ? clean.substring(0, Math.min(clean.length(), MAX_MESSAGE))
        : clean;
  }
}
