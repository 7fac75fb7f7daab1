package io.chrootbooter.operator.boottest;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.BootTestSpec;
import io.chrootbooter.api.v1alpha1.MachineSelection;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The validator on command and console checks: each refusal names field, value and rule. */
class BootTestCheckValidatorTest {

  private static List<String> violations(BootTestCheck... checks) {
    return BootTestValidator.violations(
        new BootTestSpec(
            "busybox",
            new MachineSelection(null, List.of("m1")),
            null,
            Arrays.asList(checks),
            null,
            null));
  }

  private static BootTestCheck command(List<String> run, Integer exitCode, String timeout) {
    return new BootTestCheck(
        null, null, null, new BootTestCheck.Command(run, exitCode, timeout), null, null);
  }

  @Test
  void sensibleCommandAndConsoleChecksPass() {
    assertThat(
            violations(
                new BootTestCheck(null, new BootTestCheck.Healthy("2m"), null),
                command(List.of("uname", "-r"), null, null),
                new BootTestCheck(
                    "boot-ok",
                    null,
                    null,
                    null,
                    new BootTestCheck.ConsoleMatches("(?m)^\\S+ login: $", "1m"),
                    null),
                new BootTestCheck(
                    null,
                    null,
                    null,
                    null,
                    null,
                    new BootTestCheck.ConsoleNever("Kernel panic|BUG:"))))
        .isEmpty();
    assertThat(command(List.of("true"), null, null).kind()).isEqualTo("command");
    assertThat(command(List.of("true"), null, null).nameOrDefault()).isEqualTo("command");
  }

  @Test
  void emptyOversizedAndAbsurdCommandsAreRefused() {
    List<String> many = new ArrayList<>();
    for (int i = 0; i < 257; i++) {
      many.add("x");
    }
    assertThat(
            violations(
                command(List.of(), null, null),
                new BootTestCheck(
                    "big", null, null, new BootTestCheck.Command(many, null, null), null, null),
                new BootTestCheck(
                    "odd",
                    null,
                    null,
                    new BootTestCheck.Command(List.of("sh", "a\0b"), 256, "2h"),
                    null,
                    null),
                new BootTestCheck(
                    "zero",
                    null,
                    null,
                    new BootTestCheck.Command(List.of(" ", "y".repeat(4097)), -1, "soon"),
                    null,
                    null)))
        .containsExactly(
            "spec.checks[0].command.run: give the program and its arguments, such as [uname, -r]",
            "spec.checks[1].command.run: 257 items; at most 256",
            "spec.checks[2].command.run[1]: holds a NUL character",
            "spec.checks[2].command.exitCode: 256 is not between 0 and 255",
            "spec.checks[2].command.timeout: \"2h\" is not between 1ms and 1h",
            "spec.checks[3].command.run[0]: the program is empty",
            "spec.checks[3].command.run[1]: 4097 characters; at most 4096",
            "spec.checks[3].command.exitCode: -1 is not between 0 and 255",
            "spec.checks[3].command.timeout: \"soon\" is not a duration such as 90s, 5m or 1h30m");
  }

  @Test
  void aPatternThatDoesNotCompileOrIsTooLongIsRefused() {
    assertThat(
            violations(
                new BootTestCheck(
                    null,
                    null,
                    null,
                    null,
                    new BootTestCheck.ConsoleMatches("(unclosed", null),
                    null),
                new BootTestCheck(
                    null, null, null, null, null, new BootTestCheck.ConsoleNever("x".repeat(1025))),
                new BootTestCheck(
                    "both",
                    new BootTestCheck.Healthy(null),
                    null,
                    null,
                    null,
                    new BootTestCheck.ConsoleNever("x"))))
        .containsExactly(
            "spec.checks[0].consoleMatches.pattern: \"(unclosed\" is not a regular expression:"
                + " Unclosed group near index 9",
            "spec.checks[1].consoleNever.pattern: 1025 characters; at most 1024",
            "spec.checks[2]: set exactly one of healthy, command, consoleMatches, consoleNever and"
                + " returns");
  }
}
