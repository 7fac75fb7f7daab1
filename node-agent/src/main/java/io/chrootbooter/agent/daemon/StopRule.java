package io.chrootbooter.agent.daemon;

import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.GoDuration;
import java.time.Duration;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A BootImage's {@code spec.stop} as the agent applies it, checked again: the agent never trusts
 * what the stream sends. Empty parts fall back to the image's init ({@link
 * InitSignals#gracefulSignal}) and the agent's {@code --grace}.
 *
 * @param signal the power-off signal's number
 * @param grace how long the init may take before the target is killed
 */
record StopRule(OptionalInt signal, Optional<Duration> grace) {
  /** The longest grace period a BootImage may ask for (the CRD's bound). */
  static final Duration MAX_GRACE = Duration.ofMinutes(10);

  static final StopRule DEFAULTS = new StopRule(OptionalInt.empty(), Optional.empty());

  /**
   * Checks {@code stop} from a desired state.
   *
   * @throws IllegalArgumentException naming the field, the value and what is accepted
   */
  static StopRule of(DesiredState.Stop stop) {
    if (stop == null) {
      return DEFAULTS;
    }
    OptionalInt signal = OptionalInt.empty();
    if (stop.signal() != null) {
      int number =
          InitSignals.powerOffSignal(stop.signal())
              .orElseThrow(
                  () ->
                      new IllegalArgumentException(
                          "image.stop.signal: "
                              + quote(stop.signal())
                              + " is not a power-off signal: SIGHUP, SIGINT, SIGQUIT, SIGTERM,"
                              + " SIGUSR1, SIGUSR2, SIGPWR or SIGRTMIN+n with n from 0 to 30;"
                              + " the image is not booted"));
      signal = OptionalInt.of(number);
    }
    Optional<Duration> grace = Optional.empty();
    if (stop.gracePeriod() != null) {
      // The protocol's duration form bounds every part, so no number in a hostile value overflows.
      Duration parsed =
          GoDuration.tryParse(stop.gracePeriod())
              .orElseThrow(
                  () ->
                      new IllegalArgumentException(
                          "image.stop.gracePeriod: "
                              + quote(stop.gracePeriod())
                              + " is not a duration such as 500ms, 30s or 2m; the image is not"
                              + " booted"));
      if (parsed.compareTo(MAX_GRACE) > 0) {
        throw new IllegalArgumentException(
            "image.stop.gracePeriod: "
                + quote(stop.gracePeriod())
                + " is longer than the longest grace period, 10m; the image is not booted");
      }
      grace = Optional.of(parsed);
    }
    return new StopRule(signal, grace);
  }

  /** The value in quotes, without control characters, at most 80 characters of it. */
  private static String quote(String value) {
    String shown = value.length() > 80 ? value.substring(0, 80) + "..." : value;
    return "\"" + shown.replaceAll("[^\\x20-\\x7e]", "?").replace("\"", "\\\"") + "\"";
  }
}
