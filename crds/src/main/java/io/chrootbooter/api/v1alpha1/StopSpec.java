package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.GoDuration;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.ValidationRule;
import java.time.Duration;
import java.util.Optional;

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

  /**
   * The grace period as a duration; empty when unset or when it does not match {@link
   * Patterns#DURATION} (a violation the validators name).
   */
  public Optional<Duration> gracePeriodDuration() {
    return GoDuration.tryParse(gracePeriod);
  }
}
