package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.List;

/**
 * One machine of a {@link BootTest}: where its test is, each check's result, and what happened
 * when.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record MachineTestResult(
    @JsonPropertyDescription("The MachineBoot's name.") String name,
    @JsonPropertyDescription("Pending, Switching, Checking, Passed, Failed or Error.")
        MachineTestPhase phase,
    @JsonPropertyDescription("Why the machine is in this phase, in words.") String message,
    @JsonPropertyDescription("When the test took the machine (RFC 3339, UTC).") String startTime,
    @JsonPropertyDescription("When its test ended (RFC 3339, UTC).") String completionTime,
    @JsonPropertyDescription(
            "The image the machine ran when the test took it; none when it was in the bootstrap.")
        String previousImage,
    @JsonPropertyDescription("Each check's result, in the order of spec.checks.")
        List<CheckResult> checks,
    @JsonPropertyDescription("The switch timeline: what happened to the machine, and when.")
        List<TimelineEntry> timeline,
    @JsonPropertyDescription(
            "Where a switch is: Bootstrap (waiting for the machine to reach the bootstrap) or"
                + " Image (waiting for the image under test to run); none outside Switching.")
        String stage,
    @JsonPropertyDescription("When the current stage or check started (RFC 3339, UTC, ms).")
        String stageSince,
    @JsonPropertyDescription(
            "The machine's lastReturn.time when the current check started: a return check"
                + " passes on a later return.")
        String returnBaseline,
    @JsonPropertyDescription("Whether the test has released the machine (afterTest applied).")
        Boolean released,
    @JsonPropertyDescription(
            "The machine's recorded console boots when the test took it: the console checks"
                + " read only later ones, the boots of the image under test.")
        List<String> consoleBaseline) {

  /** A result without a console baseline. */
  public MachineTestResult(
      String name,
      MachineTestPhase phase,
      String message,
      String startTime,
      String completionTime,
      String previousImage,
      List<CheckResult> checks,
      List<TimelineEntry> timeline,
      String stage,
      String stageSince,
      String returnBaseline,
      Boolean released) {
    this(
        name,
        phase,
        message,
        startTime,
        completionTime,
        previousImage,
        checks,
        timeline,
        stage,
        stageSince,
        returnBaseline,
        released,
        null);
  }

  public MachineTestResult {
    checks = checks == null ? List.of() : List.copyOf(checks);
    timeline = timeline == null ? List.of() : List.copyOf(timeline);
  }

  /** Where one machine's test is. */
  public enum MachineTestPhase {
    /** Waiting for its turn (parallelism), or for another test to release it. */
    Pending,
    /** Being switched to the image under test. */
    Switching,
    /** Running the image; its checks are evaluated. */
    Checking,
    /** Every check passed. */
    Passed,
    /** A check failed. */
    Failed,
    /** The machine could not be tested: it failed to boot the image, or time ran out. */
    Error;

    /** Whether the machine's test has ended. */
    public boolean done() {
      return this == Passed || this == Failed || this == Error;
    }
  }

  /** One check on one machine. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record CheckResult(
      @JsonPropertyDescription("The check's name.") String name,
      @JsonPropertyDescription(
              "Its kind: healthy, command, consoleMatches, consoleNever or returns.")
          String kind,
      @JsonPropertyDescription("Pending, Running, Passed, Failed, Error or Skipped.")
          CheckOutcome result,
      @JsonPropertyDescription("When it started (RFC 3339, UTC).") String startTime,
      @JsonPropertyDescription("How long it took, in milliseconds.") Long durationMillis,
      @JsonPropertyDescription("What was seen, in words (at most 1,000 characters).")
          String message,
      @JsonPropertyDescription("A command check's exit code, as the agent reported it.")
          Integer exitCode,
      @JsonPropertyDescription(
              "What a command wrote (its stdout, then its stderr) or the console around a"
                  + " console check's match, or its last lines when it failed (at most 8,192"
                  + " characters).")
          String output) {

    /** A result without exit code or output. */
    public CheckResult(
        String name,
        String kind,
        CheckOutcome result,
        String startTime,
        Long durationMillis,
        String message) {
      this(name, kind, result, startTime, durationMillis, message, null, null);
    }
  }

  /** The result of one check on one machine. */
  public enum CheckOutcome {
    Pending,
    Running,
    Passed,
    Failed,
    Error,
    Skipped
  }

  /** One step of a machine's test. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record TimelineEntry(
      @JsonPropertyDescription("When (RFC 3339, UTC, ms).") String time,
      @JsonPropertyDescription("What happened.") String event) {}
}
