package io.chrootbooter.operator.boottest;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckOutcome;
import io.chrootbooter.operator.console.ConsoleLogs;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The console checks on console text a hostile target wrote. */
class ConsoleCheckTest {
  private static final Instant T0 = Instant.parse("2026-01-01T10:00:00Z");

  private static ConsoleLogs.View boot(String id, String text) {
    return new ConsoleLogs.View(
        id,
        "http://op/images/x",
        "2026-01-01T10:00:00Z",
        false,
        text.getBytes(StandardCharsets.UTF_8));
  }

  private static BootTestCheck never(String pattern) {
    return new BootTestCheck(null, null, null, null, null, new BootTestCheck.ConsoleNever(pattern));
  }

  private static BootTestCheck matches(String pattern, String timeout) {
    return new BootTestCheck(
        null, null, null, null, new BootTestCheck.ConsoleMatches(pattern, timeout), null);
  }

  @Test
  void aPatternThatBacktracksWithoutEndIsStoppedAndSaysSo() {
    // Backtracks over every way to cut the line into 25 pieces: longer than anyone waits.
    String hostile = "a".repeat(40) + "b";
    var boots = new ConsoleCheck.Boots(List.of(boot("b1", hostile)));
    long start = System.nanoTime();
    var decided = CheckOutcomes.consoleNever(never("(.*a){25}"), boots).orElseThrow();
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
    assertThat(decided.result()).isEqualTo(CheckOutcome.Error);
    assertThat(decided.message())
        .isEqualTo(
            "the pattern took longer than 250 ms on 41 characters of console; make it"
                + " simpler (no nested repetition)");
  }

  @Test
  void consoleNeverShowsTheLinesAroundWhatItFoundInTheTestsBootsOnly() {
    String before = "[    0.000000] Linux version 6.1.0\r\n";
    String panic = "[   42.000000] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n";
    Consoles consoles =
        (ns, m) ->
            List.of(boot("old", "Kernel panic in the boot before\n"), boot("new", before + panic));
    // The boot the machine ran when the test took it is not the test's.
    var boots = ConsoleCheck.boots(consoles, "lab", "m1", List.of("old"));
    assertThat(boots.views()).extracting(ConsoleLogs.View::boot).containsExactly("new");
    var decided = CheckOutcomes.consoleNever(never("Kernel panic|BUG:"), boots).orElseThrow();
    assertThat(decided.result()).isEqualTo(CheckOutcome.Failed);
    assertThat(decided.message()).isEqualTo("the console showed \"Kernel panic\"");
    assertThat(decided.output())
        .isEqualTo(
            "[    0.000000] Linux version 6.1.0\n"
                + "[   42.000000] Kernel panic - not syncing: VFS: Unable to mount root fs\n");
    assertThat(CheckOutcomes.consoleNever(never("BUG:"), boots)).isEmpty();
  }

  @Test
  void consoleMatchesWaitsUntilItsTimeoutThenFailsWithTheConsolesLastLines() {
    var none = new ConsoleCheck.Boots(List.of());
    var check = matches("login:", "30s");
    assertThat(CheckOutcomes.consoleMatches(check, none, T0, T0.plusSeconds(29))).isEmpty();
    var noConsole = CheckOutcomes.consoleMatches(check, none, T0, T0.plusSeconds(30)).orElseThrow();
    assertThat(noConsole.result()).isEqualTo(CheckOutcome.Failed);
    assertThat(noConsole.message())
        .isEqualTo("no console of the boot recorded by this operator replica within 30s");

    var booting = new ConsoleCheck.Boots(List.of(boot("b1", "\u001b[1mstarting\u001b[0m\r\n")));
    var failed = CheckOutcomes.consoleMatches(check, booting, T0, T0.plusSeconds(31)).orElseThrow();
    assertThat(failed.message()).isEqualTo("the console did not show /login:/ within 30s");
    assertThat(failed.output()).isEqualTo("starting\n");

    var up = new ConsoleCheck.Boots(List.of(boot("b1", "starting\r\nm1 login: ")));
    var passed = CheckOutcomes.consoleMatches(check, up, T0, T0.plusSeconds(3)).orElseThrow();
    assertThat(passed.result()).isEqualTo(CheckOutcome.Passed);
    assertThat(passed.message())
        .isEqualTo("the console showed \"login:\" 3000 ms after the check started");
    assertThat(passed.output()).isEqualTo("starting\nm1 login: ");
  }

  @Test
  void anExcerptIsBoundedWhateverTheLinesLength() {
    String line = "x".repeat(100_000);
    String text = line + "Oops: BUG: here" + line;
    int at = text.indexOf("BUG:");
    String excerpt = ConsoleCheck.excerpt(text, at, at + 4);
    assertThat(excerpt).hasSizeLessThanOrEqualTo(ConsoleCheck.MAX_EXCERPT).contains("BUG: here");
  }
}
