package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.GoDuration;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** One check of a {@link BootTest}: exactly one of its kinds is set. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value =
        "[has(self.healthy), has(self.returns), has(self.command), has(self.consoleMatches),"
            + " has(self.consoleNever)].filter(x, x).size() == 1",
    message =
        "a check sets exactly one of healthy, command, consoleMatches, consoleNever and returns")
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
        Returns returns,
    @JsonPropertyDescription(
            "A command run inside the target as root once it reported healthy: the agent enters"
                + " the target's namespaces, runs it with a timeout and keeps the first 4,096"
                + " bytes of stdout and of stderr. Passes on the expected exit code. The agent"
                + " runs a boot's commands in order once the target reports healthy: put a"
                + " healthy check before it.")
        Command command,
    @JsonPropertyDescription(
            "A regular expression (Java syntax) the machine's recorded console of this boot"
                + " must show within the timeout, such as 'login:'. Matched against the console"
                + " the operator received from the machine's agent.")
        ConsoleMatches consoleMatches,
    @JsonPropertyDescription(
            "A regular expression (Java syntax) the machine's recorded console must never show"
                + " while the machine is tested, such as 'Kernel panic|BUG:'. Watched from the"
                + " first boot of the image under test to the machine's last check, whatever"
                + " its place in the list; a match fails the machine at once.")
        ConsoleNever consoleNever) {

  /** A check of one of the original two kinds. */
  public BootTestCheck(String name, Healthy healthy, Returns returns) {
    this(name, healthy, returns, null, null, null);
  }

  /** A check's name: what JUnit shows as the testcase. */
  public static final String CHECK_NAME = "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$";

  /** The timeout of a check that names none. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(5);

  /** The timeout of a command that names none. */
  public static final Duration DEFAULT_COMMAND_TIMEOUT = Duration.ofMinutes(1);

  /** The longest timeout a command may have. */
  public static final Duration MAX_COMMAND_TIMEOUT = Duration.ofHours(1);

  /** The longest regular expression a console check may have. */
  public static final int MAX_PATTERN = 1024;

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

  /**
   * Which kind of check this is: {@code healthy}, {@code command}, {@code consoleMatches}, {@code
   * consoleNever} or {@code returns}; {@code invalid} for none or several.
   */
  public String kind() {
    List<String> kinds = new ArrayList<>();
    if (healthy != null) {
      kinds.add("healthy");
    }
    if (command != null) {
      kinds.add("command");
    }
    if (consoleMatches != null) {
      kinds.add("consoleMatches");
    }
    if (consoleNever != null) {
      kinds.add("consoleNever");
    }
    if (returns != null) {
      kinds.add("returns");
    }
    return kinds.size() == 1 ? kinds.get(0) : "invalid";
  }

  /** The check's timeout; the default when unset or malformed (the validator names that). */
  @JsonIgnore
  public Duration timeoutOrDefault() {
    if (command != null) {
      return GoDuration.tryParse(command.timeout()).orElse(DEFAULT_COMMAND_TIMEOUT);
    }
    String t =
        healthy != null
            ? healthy.timeout()
            : returns != null
                ? returns.timeout()
                : consoleMatches != null ? consoleMatches.timeout() : null;
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

  /** The {@code command} check. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Command(
      @Required
          @Size(min = 1, max = 256)
          @JsonPropertyDescription(
              "The program and its arguments, run without a shell (give [sh, -c, '...'] for"
                  + " one), with PATH and HOME=/root as its only environment. 1 to 256 items of"
                  + " at most 4,096 characters each.")
          List<String> run,
      @Min(0)
          @Max(255)
          @JsonPropertyDescription("The exit code that passes the check (0 to 255). Default: 0.")
          Integer exitCode,
      @Pattern(Patterns.DURATION)
          @JsonPropertyDescription(
              "How long the command may run, such as 30s (at most 1h); then it and the processes"
                  + " of its process group are killed, nothing else of the target, and the check"
                  + " fails. Default: 1m.")
          String timeout) {

    public Command {
      run = run == null ? null : List.copyOf(run);
    }

    /** The exit code that passes, the default applied. */
    public int exitCodeOrDefault() {
      return exitCode == null ? 0 : exitCode;
    }
  }

  /** The {@code consoleMatches} check. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record ConsoleMatches(
      @Required
          @Size(min = 1, max = MAX_PATTERN)
          @JsonPropertyDescription(
              "The regular expression (Java syntax, at most 1,024 characters), found anywhere in"
                  + " the console text of the boot; (?m) makes ^ and $ match at each line.")
          String pattern,
      @Pattern(Patterns.DURATION)
          @JsonPropertyDescription(
              "How long to wait for it from the check's start, such as 2m. Default: 5m.")
          String timeout) {}

  /** The {@code consoleNever} check. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record ConsoleNever(
      @Required
          @Size(min = 1, max = MAX_PATTERN)
          @JsonPropertyDescription(
              "The regular expression (Java syntax, at most 1,024 characters) that must not"
                  + " show in the console of any boot of the image under test during the"
                  + " machine's test.")
          String pattern) {}

  /** The return triggers a test can check. */
  public enum TestedTrigger {
    SpecChange,
    Hotkey,
    Serial,
    Helper
  }
}
