package io.chrootbooter.operator.boottest;

import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckOutcome;
import io.chrootbooter.operator.console.ConsoleLogs;
import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.TestCommand;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * How the checks that read more than the MachineBoot's phase are decided: {@code command} (the
 * result the agent reported in the MachineBoot's {@code status.testCommands}), {@code
 * consoleMatches} and {@code consoleNever} (the recorded console, {@link ConsoleCheck}). Pure
 * functions of what was observed, like {@link BootTestRules}.
 */
final class CheckOutcomes {
  /**
   * How long after its timeout a command's result may take to reach the status: the agent's report
   * and the status write.
   */
  static final Duration COMMAND_MARGIN = Duration.ofSeconds(30);

  /** The most characters of output a check's result holds. */
  static final int MAX_OUTPUT = 8192;

  private CheckOutcomes() {}

  /**
   * A check's outcome.
   *
   * @param exitCode a command's exit code; null otherwise
   * @param output what the command wrote, or the console's excerpt; null for none
   */
  record Decided(CheckOutcome result, String message, Integer exitCode, String output) {}

  /** The commands the agent runs in a boot: those of the command checks from {@code from} on. */
  static List<TestCommand> commandsFrom(List<BootTestCheck> checks, int from) {
    List<TestCommand> out = new java.util.ArrayList<>();
    for (int i = Math.max(0, from); i < checks.size(); i++) {
      BootTestCheck c = checks.get(i);
      if (c.returns() != null) {
        break; // the image is booted again after it, with the commands after it
      }
      if (c.command() != null) {
        out.add(
            new TestCommand(
                c.nameOrDefault(), c.command().run(), GoDuration.format(c.timeoutOrDefault())));
      }
    }
    return out;
  }

  /** A command check: decided once the agent reported its result; empty while it waits. */
  static Optional<Decided> command(
      BootTestCheck check,
      String name,
      MachineBoot mb,
      String image,
      Instant started,
      Optional<LastReturn> returned,
      Instant now) {
    if (returned.isPresent()) {
      return Optional.of(
          new Decided(
              CheckOutcome.Failed,
              "the target returned before the command's result: "
                  + returned.get().trigger()
                  + (returned.get().reason() == null ? "" : ": " + returned.get().reason()),
              null,
              null));
    }
    var status = mb.getStatus();
    boolean running =
        status != null
            && status.phase() == MachinePhase.Running
            && image.equals(status.currentImage());
    List<TestCommand.Result> results =
        running && status.testCommands() != null ? status.testCommands() : List.of();
    Duration timeout = check.timeoutOrDefault();
    for (TestCommand.Result r : results) {
      if (!name.equals(r.name())) {
        continue;
      }
      String output = output(r);
      if (r.error() != null) {
        return Optional.of(
            new Decided(CheckOutcome.Error, "the agent did not run it: " + r.error(), null, null));
      }
      if (Boolean.TRUE.equals(r.timedOut())) {
        return Optional.of(
            new Decided(
                CheckOutcome.Failed,
                "killed at its timeout of " + GoDuration.format(timeout),
                null,
                output));
      }
      int expected = check.command().exitCodeOrDefault();
      boolean pass = r.exitCode() != null && r.exitCode() == expected;
      String took = r.durationMillis() == null ? "" : " after " + r.durationMillis() + " ms";
      String first = firstLine(r);
      return Optional.of(
          new Decided(
              pass ? CheckOutcome.Passed : CheckOutcome.Failed,
              (pass
                      ? "exit code " + r.exitCode() + took
                      : "exit code " + r.exitCode() + ", expected " + expected + took)
                  + (first.isEmpty() ? "" : ": " + first),
              r.exitCode(),
              output));
    }
    if (!now.isBefore(started.plus(timeout).plus(COMMAND_MARGIN))) {
      boolean healthy = running && Boolean.TRUE.equals(status.healthy());
      return Optional.of(
          new Decided(
              CheckOutcome.Failed,
              "no result within "
                  + GoDuration.format(timeout.plus(COMMAND_MARGIN))
                  + (healthy
                      ? ""
                      : ": the target has not reported healthy, and its commands run once it"
                          + " has"),
              null,
              null));
    }
    return Optional.empty();
  }

  /** The first line the command wrote, stdout before stderr, at most 200 characters. */
  private static String firstLine(TestCommand.Result r) {
    for (String s : new String[] {r.stdout(), r.stderr()}) {
      if (s != null && !s.isBlank()) {
        String line = s.strip().lines().findFirst().orElse("");
        return line.length() <= 200 ? line : line.substring(0, 199) + "…";
      }
    }
    return "";
  }

  /** What a command wrote, as a check's output: stdout, then stderr, each labelled. */
  static String output(TestCommand.Result r) {
    StringBuilder out = new StringBuilder();
    if (r.stdout() != null && !r.stdout().isEmpty()) {
      out.append("stdout:\n").append(r.stdout());
      if (!r.stdout().endsWith("\n")) {
        out.append('\n');
      }
    }
    if (r.stderr() != null && !r.stderr().isEmpty()) {
      out.append("stderr:\n").append(r.stderr());
      if (!r.stderr().endsWith("\n")) {
        out.append('\n');
      }
    }
    if (Boolean.TRUE.equals(r.truncated())) {
      out.append("[output cut at " + TestCommand.MAX_OUTPUT_BYTES + " bytes per stream]\n");
    }
    return out.isEmpty() ? null : clip(out.toString());
  }

  /** A consoleMatches check: decided once the pattern shows, or at the timeout. */
  static Optional<Decided> consoleMatches(
      BootTestCheck check, ConsoleCheck.Boots boots, Instant started, Instant now) {
    Pattern pattern;
    try {
      pattern = Pattern.compile(check.consoleMatches().pattern());
    } catch (RuntimeException e) {
      return Optional.of(
          new Decided(CheckOutcome.Error, "the pattern does not compile", null, null));
    }
    Optional<ConsoleLogs.View> boot = boots.newest();
    String text = boot.map(ConsoleCheck::text).orElse("");
    if (boot.isPresent()) {
      try {
        Optional<int[]> at = ConsoleCheck.find(pattern, text);
        if (at.isPresent()) {
          return Optional.of(
              new Decided(
                  CheckOutcome.Passed,
                  "the console showed "
                      + quoted(text.substring(at.get()[0], at.get()[1]))
                      + " "
                      + since(started, now),
                  null,
                  clip(ConsoleCheck.excerpt(text, at.get()[0], at.get()[1]))));
        }
      } catch (ConsoleCheck.TooSlowException e) {
        return Optional.of(tooSlow(text));
      } catch (StackOverflowError e) {
        return Optional.of(tooDeep(text));
      }
    }
    Duration timeout = check.timeoutOrDefault();
    if (!now.isBefore(started.plus(timeout))) {
      return Optional.of(
          new Decided(
              CheckOutcome.Failed,
              boot.isEmpty()
                  ? "no console of the boot recorded by this operator replica within "
                      + GoDuration.format(timeout)
                  : "the console did not show /"
                      + check.consoleMatches().pattern()
                      + "/ within "
                      + GoDuration.format(timeout),
              null,
              boot.isEmpty() ? null : clip(ConsoleCheck.tail(text))));
    }
    return Optional.empty();
  }

  /**
   * A consoleNever check: Failed (with the console around the match) when any of the test's boots
   * shows the pattern; empty while none does.
   */
  static Optional<Decided> consoleNever(BootTestCheck check, ConsoleCheck.Boots boots) {
    Pattern pattern;
    try {
      pattern = Pattern.compile(check.consoleNever().pattern());
    } catch (RuntimeException e) {
      return Optional.of(
          new Decided(CheckOutcome.Error, "the pattern does not compile", null, null));
    }
    for (ConsoleLogs.View boot : boots.views()) {
      String text = ConsoleCheck.text(boot);
      try {
        Optional<int[]> at = ConsoleCheck.find(pattern, text);
        if (at.isPresent()) {
          return Optional.of(
              new Decided(
                  CheckOutcome.Failed,
                  "the console showed " + quoted(text.substring(at.get()[0], at.get()[1])),
                  null,
                  clip(ConsoleCheck.excerpt(text, at.get()[0], at.get()[1]))));
        }
      } catch (ConsoleCheck.TooSlowException e) {
        return Optional.of(tooSlow(text));
      } catch (StackOverflowError e) {
        return Optional.of(tooDeep(text));
      }
    }
    return Optional.empty();
  }

  /** The console's last lines, for the output of a check that failed otherwise; null for none. */
  static String consoleTail(ConsoleCheck.Boots boots) {
    return boots
        .newest()
        .map(ConsoleCheck::text)
        .map(ConsoleCheck::tail)
        .map(CheckOutcomes::clip)
        .filter(s -> !s.isBlank())
        .orElse(null);
  }

  private static Decided tooDeep(String text) {
    return new Decided(
        CheckOutcome.Error,
        "the pattern ran out of stack on "
            + text.length()
            + " characters of console; make it simpler (no repeated alternation such as (a|b)*)",
        null,
        null);
  }

  private static Decided tooSlow(String text) {
    return new Decided(
        CheckOutcome.Error,
        "the pattern took longer than "
            + ConsoleCheck.MATCH_BUDGET.toMillis()
            + " ms on "
            + text.length()
            + " characters of console; make it simpler (no nested repetition)",
        null,
        null);
  }

  private static String quoted(String s) {
    String one = s.replaceAll("\\p{Cntrl}", " ");
    return "\"" + (one.length() <= 120 ? one : one.substring(0, 119) + "…") + "\"";
  }

  private static String since(Instant started, Instant now) {
    long ms = Duration.between(started, now).toMillis();
    return ms <= 0 ? "(already when the check started)" : ms + " ms after the check started";
  }

  /**
   * {@code s} as a result's output: control characters but newline and tab shown as U+FFFD (a
   * target's output may hold anything), at most {@link #MAX_OUTPUT} characters.
   */
  static String clip(String s) {
    if (s == null) {
      return null;
    }
    String shown = CONTROL.matcher(s).replaceAll("\uFFFD");
    if (shown.length() <= MAX_OUTPUT) {
      return shown;
    }
    return shown.substring(0, MAX_OUTPUT - 1) + "…";
  }

  private static final Pattern CONTROL = Pattern.compile("[\\x00-\\x08\\x0B-\\x1F\\x7F]");
}
