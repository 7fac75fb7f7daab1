package io.chrootbooter.operator.console;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.protocol.ConsoleChunk;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class ConsoleLogsTest {
  private final ConsoleLogs logs = new ConsoleLogs(16);

  private ConsoleLogs.Accepted append(
      String boot, long offset, String text, int first, String... w) {
    return logs.append(
        "ns",
        "m1",
        new ConsoleChunk(boot, "img", null, offset, null, first, List.of(w), false),
        text.getBytes(StandardCharsets.UTF_8));
  }

  private String current() {
    return logs.current("ns", "m1").orElseThrow().text();
  }

  @Test
  void keepsTheNewestBytesWithinTheBoundAndTakesAResendOnce() {
    append("b1", 0, "0123456789", 0);
    append("b1", 5, "56789abcdef", 0); // overlaps what was sent
    assertThat(current()).isEqualTo("0123456789abcdef");
    append("b1", 16, "ghij", 0);
    assertThat(current()).as("16 bytes at most").isEqualTo("456789abcdefghij");
  }

  @Test
  void aNewBootMovesTheLastToPreviousAndALatePieceStillLandsThere() {
    append("b1", 0, "first ", 0);
    append("b2", 0, "second", 0);
    append("b1", 6, "late", 0);
    assertThat(current()).isEqualTo("second");
    assertThat(logs.previous("ns", "m1").orElseThrow().text()).isEqualTo("first late");
    append("b3", 0, "third", 0);
    assertThat(logs.previous("ns", "m1").orElseThrow().boot()).isEqualTo("b2");
    logs.forget("ns", "m1");
    assertThat(logs.current("ns", "m1")).isEmpty();
  }

  private void appendOf(String boot, String image, String text) {
    logs.append(
        "ns",
        "m1",
        new ConsoleChunk(boot, image, null, 0, null, 0, List.of(), false),
        text.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void theBootstrapsShellBetweenTwoTargetsLeavesTheTargetThatReturnedAsThePrevious() {
    appendOf("k-1", null, "chrootbooter> "); // the bootstrap's first turn
    appendOf("k-2", "debian-12", "Powering off.");
    assertThat(logs.previous("ns", "m1").orElseThrow().boot())
        .as("before the first target: the bootstrap's own start")
        .isEqualTo("k-1");
    appendOf("k-3", null, "chrootbooter> "); // a return: the shell has the console
    assertThat(current()).isEqualTo("chrootbooter> ");
    assertThat(logs.previous("ns", "m1").orElseThrow().text()).isEqualTo("Powering off.");
    appendOf("k-4", "busybox", "busybox up");
    assertThat(current()).isEqualTo("busybox up");
    assertThat(logs.previous("ns", "m1").orElseThrow().text())
        .as("the target before busybox, not the shell between them")
        .isEqualTo("Powering off.");
  }

  @Test
  void eachWarningIsNewOnceAndAtMostThirtyTwoPerBoot() {
    assertThat(append("b1", 0, "", 0, "BUG: a", "WARNING: b").warnings())
        .extracting(ConsoleLogs.Warning::number)
        .containsExactly(0, 1);
    assertThat(append("b1", 0, "", 0, "BUG: a", "WARNING: b").warnings()).isEmpty();
    assertThat(append("b1", 0, "", 1, "WARNING: b", "Oops: c").warnings())
        .singleElement()
        .satisfies(w -> assertThat(w.line()).isEqualTo("Oops: c"));
    assertThat(append("b1", 0, "", 31, "BUG: 31", "BUG: 32").warnings())
        .extracting(ConsoleLogs.Warning::line)
        .containsExactly("BUG: 31");
    assertThat(append("b2", 0, "", 0, "BUG: new boot").warnings()).hasSize(1);
  }

  @Test
  void aFollowerGetsWhatIsAddedInOrderUntilTheBootEndsOrANewOneStarts() {
    List<String> got = new java.util.ArrayList<>();
    append("b1", 0, "abc", 0);
    ConsoleLogs.Following f =
        logs.follow(
                "ns",
                "m1",
                (boot, data, ended) ->
                    got.add(boot + ":" + new String(data, StandardCharsets.UTF_8) + ":" + ended))
            .orElseThrow();
    assertThat(f.view().text()).isEqualTo("abc");
    append("b1", 3, "def", 0);
    append("b1", 3, "def", 0); // a resend adds nothing
    append("b1", 10, "x", 0); // a gap: the note of lost bytes comes with it
    append("b2", 0, "new boot", 0);
    append("b2", 8, " more", 0);
    assertThat(got)
        .containsExactly(
            "b1:def:false",
            "b1::false",
            "b1:\r\n[chrootbooter: 4 bytes of this console were lost]\r\nx:false",
            "b1::true");
    f.close();
    assertThat(logs.follow("nobody", "m9", (b, d, e) -> {})).isEmpty();
  }

  @Test
  void theTailIsTheLastLinesWithoutCarriageReturnsOrTrailingBlankLines() {
    ConsoleLogs big = new ConsoleLogs(1 << 16);
    big.append(
        "ns",
        "m1",
        new ConsoleChunk("b1", "img", null, 0, null, 0, List.of(), false),
        "one\r\ntwo\r\nthr".getBytes(StandardCharsets.UTF_8));
    big.append(
        "ns",
        "m1",
        new ConsoleChunk("b1", "img", null, 13, null, 0, List.of(), false),
        "ee\r\nfour\r\n\r\n".getBytes(StandardCharsets.UTF_8));
    assertThat(big.tail("ns", "m1", 2)).hasValue("three\nfour");
    assertThat(big.tail("ns", "m1", 10)).hasValue("one\ntwo\nthree\nfour");
    assertThat(big.tail("ns", "m1", 0)).isEmpty();
    assertThat(big.tail("ns", "m2", 3)).isEmpty();
    // Only the last 4 KiB are looked at, however long the log.
    big.append(
        "ns",
        "m1",
        new ConsoleChunk("b1", "img", null, 25, null, 0, List.of(), false),
        ("x".repeat(5000) + "\r\nlast\r\n").getBytes(StandardCharsets.UTF_8));
    assertThat(big.tail("ns", "m1", 3)).hasValue("x".repeat(4096 - 8) + "\nlast");
  }
}
