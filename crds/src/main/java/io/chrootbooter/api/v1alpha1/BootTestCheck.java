package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.GoDuration;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** One check of a {@link BootTest}: exactly one of its kinds is set. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "[has(self.healthy), has(self.returns)].filter(x, x).size() == 1",
    message = "a check sets exactly one of healthy and returns")
public record BootTestCheck(
    @Pattern(CHECK_NAME)
        @JsonPropertyDescription(
            "The check's name in results and reports (letters, digits, . _ -). Default: its kind,"
                + " and the trigger for returns (returns-Hotkey).")
        String name,
    @JsonPropertyDescription(
            "The target reports healthy in time: it runs /.bootstrap-return --healthy (the image's"
                + " boot scripts or a systemd unit do), and the agent then does not return it"
                + " with trigger BootTimeout. Applies to the boot, whatever its place in the list.")
        Healthy healthy,
    @JsonPropertyDescription(
            "A return to the bootstrap by this trigger, as the agent reports it. SpecChange is"
                + " made by the test itself; Hotkey, Serial and Helper must happen within the"
                + " timeout (a person or a lab script presses the key, sends the string, runs the"
                + " helper). The image is booted again for the checks that follow.")
        Returns returns) {

  /** A check's name: what JUnit shows as the testcase. */
  public static final String CHECK_NAME = "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$";

  /** The timeout of a check that names none. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(5);

  /** The check's name, the default applied. */
  public String nameOrDefault() {
    if (name != null) {
      return name;
    }
    if (returns != null) {
      return "returns-" + (returns.trigger() == null ? "unknown" : returns.trigger().name());
    }
    return kind();
  }

  /** Which kind of check this is: {@code healthy} or {@code returns}; {@code invalid} for none. */
  public String kind() {
    List<String> kinds = new ArrayList<>();
    if (healthy != null) {
      kinds.add("healthy");
    }
    if (returns != null) {
      kinds.add("returns");
    }
    return kinds.size() == 1 ? kinds.get(0) : "invalid";
  }

  /** The check's timeout; the default when unset or malformed (the validator names that). */
  @JsonIgnore
  public Duration timeoutOrDefault() {
    String t = healthy != null ? healthy.timeout() : returns != null ? returns.timeout() : null;
    return GoDuration.tryParse(t).orElse(DEFAULT_TIMEOUT);
  }

  /** The {@code healthy} check. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Healthy(
      @Pattern(Patterns.DURATION)
          @JsonPropertyDescription(
              "How long the target may take to report healthy after it starts, such as 2m. The"
                  + " machine's bootTimeout for this boot. Default: 5m.")
          String timeout) {}

  /** The {@code returns} check. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Returns(
      @Required @JsonPropertyDescription("SpecChange, Hotkey, Serial or Helper.")
          TestedTrigger trigger,
      @Pattern(Patterns.DURATION)
          @JsonPropertyDescription("How long to wait for the return, such as 2m. Default: 5m.")
          String timeout) {}

  /** The return triggers a test can check. */
  public enum TestedTrigger {
    SpecChange,
    Hotkey,
    Serial,
    Helper
  }
}
