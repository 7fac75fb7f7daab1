package io.chrootbooter.agent.trigger;

import java.util.Optional;

/**
 * One line the in-target helper {@code /.bootstrap-return} writes to its FIFO: {@code return
 * <reason>} or {@code healthy}. The target is untrusted: anything else is ignored, and a reason is
 * cut to 200 printable ASCII characters.
 */
public sealed interface HelperMessage {
  /** Maximum length of a reason kept in {@code lastReturn}. */
  int MAX_REASON = 200;

  /** The target asks to return. */
  record Return(String reason) implements HelperMessage {}

  /** The target reports that it booted (ends the boot timeout). */
  record Healthy() implements HelperMessage {}

  /** Parses one line; empty for anything that is not a helper message. */
  static Optional<HelperMessage> parse(String line) {
    String l = line.strip();
    if (l.equals("healthy")) {
      return Optional.of(new Healthy());
    }
    if (l.equals("return") || l.startsWith("return ")) {
      String reason = l.substring(6).strip().replaceAll("[^\\x20-\\x7e]", "?");
      if (reason.length() > MAX_REASON) {
        reason = reason.substring(0, MAX_REASON);
      }
      return Optional.of(new Return(reason));
    }
    return Optional.empty();
  }
}
