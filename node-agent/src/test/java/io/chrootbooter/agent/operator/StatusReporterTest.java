package io.chrootbooter.agent.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.StatusReport;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** The reporter sends on change, and the full report every heartbeat when nothing changed. */
class StatusReporterTest {
  private static final StatusReport RUNNING =
      StatusReport.builder()
          .phase(MachinePhase.Running)
          .currentImage("debian-12")
          .appliedGeneration(2L)
          .build();

  @Test
  void withoutAHeartbeatOnlyChangesAreSent() throws Exception {
    List<StatusReport> sent = new CopyOnWriteArrayList<>();
    try (StatusReporter reporter =
        new StatusReporter(r -> sent.add(r), () -> RUNNING, Duration.ofMillis(10))) {
      await().atMost(Duration.ofSeconds(5)).until(() -> sent.size() == 1);
      Thread.sleep(500);
      assertThat(sent).hasSize(1);
      reporter.poke();
      await().atMost(Duration.ofSeconds(5)).until(() -> sent.size() == 2);
    }
  }

  @Test
  void theFullReportIsSentEveryHeartbeatWhenNothingChanges() throws Exception {
    List<Long> sentAt = new CopyOnWriteArrayList<>();
    try (StatusReporter reporter =
        new StatusReporter(
            r -> {
              assertThat(r).isEqualTo(RUNNING);
              sentAt.add(System.nanoTime());
              return true;
            },
            () -> RUNNING,
            Duration.ofMillis(10),
            Duration.ofMillis(200))) {
      await().atMost(Duration.ofSeconds(5)).until(() -> sentAt.size() >= 6);
      for (int i = 1; i < sentAt.size(); i++) {
        assertThat(Duration.ofNanos(sentAt.get(i) - sentAt.get(i - 1)))
            .isGreaterThanOrEqualTo(Duration.ofMillis(190));
      }
      // A shorter heartbeat from the operator applies at once.
      reporter.heartbeat(Duration.ofMillis(50));
      int before = sentAt.size();
      Thread.sleep(600);
      assertThat(sentAt.size() - before).isGreaterThanOrEqualTo(5);
    }
  }

  @Test
  void theHeartbeatAskedForIsHeldWithinBounds() {
    assertThat(StatusReporter.heartbeatOf(null)).isEqualTo(Duration.ofSeconds(15));
    assertThat(StatusReporter.heartbeatOf("nonsense")).isEqualTo(Duration.ofSeconds(15));
    assertThat(StatusReporter.heartbeatOf("5s")).isEqualTo(Duration.ofSeconds(5));
    assertThat(StatusReporter.heartbeatOf("1ms")).isEqualTo(StatusReporter.MIN_HEARTBEAT);
    assertThat(StatusReporter.heartbeatOf("999h")).isEqualTo(StatusReporter.MAX_HEARTBEAT);
  }
}
