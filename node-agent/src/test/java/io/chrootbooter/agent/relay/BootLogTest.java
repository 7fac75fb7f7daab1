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
