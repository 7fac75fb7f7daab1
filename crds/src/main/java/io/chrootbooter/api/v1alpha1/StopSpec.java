package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.ValidationRule;
import java.time.Duration;
import java.util.Optional;
import java.util.regex.Matcher;

/**
 * How the agent ends the image's target on a return: the signal that asks its init to power off,
 * and how long it may take before the agent kills what is left.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "!has(self.gracePeriod) || duration(self.gracePeriod) <= duration('10m')",
    message = "gracePeriod must be at most 10m")
public record StopSpec(
    @Pattern(Patterns.STOP_SIGNAL)
        @JsonPropertyDescription(
            "The signal that asks the image's init to power off: SIGHUP, SIGINT, SIGQUIT, SIGTERM,"
                + " SIGUSR1, SIGUSR2, SIGPWR or SIGRTMIN+n (n 0 to 30). Unset: chosen from the"
                + " init, SIGRTMIN+4 for systemd, SIGUSR2 for busybox init, SIGTERM otherwise.")
        String signal,
    @Pattern(Patterns.DURATION)
        @JsonPropertyDescription(
            "How long the init may take to power off before the agent kills the whole target,"
                + " such as 30s; 0s kills at once. At most 10m. Unset: the agent's --grace"
                + " (10s by default).")
        String gracePeriod) {

  /** The longest grace period a BootImage may ask for. */
  public static final Duration MAX_GRACE_PERIOD = Duration.ofMinutes(10);

  private static final java.util.regex.Pattern DURATION =
      java.util.regex.Pattern.compile(Patterns.DURATION);
  private static final java.util.regex.Pattern DURATION_PART =
      java.util.regex.Pattern.compile("([0-9]+)(ms|s|m|h)");

  /**
   * The grace period as a duration; empty when unset or when it does not match {@link
   * Patterns#DURATION} (a violation the validators name).
   */
  public Optional<Duration> gracePeriodDuration() {
    if (gracePeriod == null || !DURATION.matcher(gracePeriod).matches()) {
      return Optional.empty();
    }
    Duration total = Duration.ZERO;
    Matcher m = DURATION_PART.matcher(gracePeriod);
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
}
