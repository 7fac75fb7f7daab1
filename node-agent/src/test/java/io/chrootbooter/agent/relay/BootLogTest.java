package io.chrootbooter.agent.relay;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class BootLogTest {
  private static BootLog log(int capacity) {
    return new BootLog("boot-1", "http://i/x", Instant.EPOCH, capacity);
  }

  @Test
  void keepsTheLastCapacityBytesAndCountsEveryByte() {
    BootLog log = log(10);
    log.append("0123456");
    log.append("789abcd");
    assertThat(log.total()).isEqualTo(14);
    assertThat(log.text()).isEqualTo("456789abcd");
    BootLog.Chunk lost = log.read(2, 100);
    assertThat(lost.start()).as("bytes 2 and 3 are gone").isEqualTo(4);
    assertThat(new String(lost.data(), StandardCharsets.US_ASCII)).isEqualTo("456789abcd");
    BootLog.Chunk part = log.read(8, 3);
    assertThat(new String(part.data(), StandardCharsets.US_ASCII)).isEqualTo("89a");
    assertThat(log.read(14, 10).data()).isEmpty();
  }

  @Test
  void aWriteLargerThanTheRingKeepsItsEnd() {
    BootLog log = log(4);
    log.append("abcdefghij");
    assertThat(log.total()).isEqualTo(10);
    assertThat(log.text()).isEqualTo("ghij");
  }

  private static void write(BootLog.Source source, String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    source.write(bytes, 0, bytes.length);
  }

  @Test
  void twoConsolesWritingAtOnceDoNotCutEachOthersLines() {
    BootLog log = log(1024);
    BootLog.Source ttyS0 = log.source();
    BootLog.Source console = log.source();
    write(ttyS0, "hello on ttyS0");
    write(console, "hello on the console\r\nand a second ");
    log.append("[    1.0] a kernel line\r\n");
    write(ttyS0, "\r\n");
    write(console, "line\r\n");
    assertThat(log.text())
        .isEqualTo(
            "hello on the console\r\n"
                + "[    1.0] a kernel line\r\n"
                + "hello on ttyS0\r\n"
                + "and a second line\r\n");
  }

  @Test
  void aLineNotEndedShowsAfterTheWaitAndAtTheEnd() throws InterruptedException {
    BootLog log = log(1024);
    BootLog.Source console = log.source();
    write(console, "debian login: ");
    assertThat(log.text()).as("held back for a moment").isEmpty();
    Thread.sleep(BootLog.LINE_WAIT_NANOS / 1_000_000 + 50);
    assertThat(log.text()).isEqualTo("debian login: ");
    write(console, "root");
    log.end();
    assertThat(log.text()).isEqualTo("debian login: root");
    assertThat(log.total()).isEqualTo(18);
  }

  @Test
  void aLineLongerThanTheHoldGoesInWhole() {
    BootLog log = log(3 * BootLog.MAX_LINE);
    BootLog.Source console = log.source();
    String longLine = "x".repeat(BootLog.MAX_LINE + 10);
    write(console, "ab");
    write(console, longLine);
    assertThat(log.text()).isEqualTo("ab" + longLine);
  }

  @Test
  void warningsAreBounded() {
    BootLog log = log(16);
    for (int i = 0; i < BootLog.MAX_WARNINGS + 5; i++) {
      log.warning("WARNING: " + i);
    }
    assertThat(log.warnings()).hasSize(BootLog.MAX_WARNINGS).startsWith("WARNING: 0");
    assertThat(log.warningsDropped()).isEqualTo(5);
  }
}
