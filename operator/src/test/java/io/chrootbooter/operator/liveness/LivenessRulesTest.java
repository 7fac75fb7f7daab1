package io.chrootbooter.operator.liveness;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.StatusReport;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class LivenessRulesTest {
  private static final Duration LOST_AFTER = Duration.ofSeconds(60);
  private static final Instant T = Instant.parse("2026-01-01T00:00:00Z");

  @Test
  void lostOnceLostAfterHasPassedSinceLastSeen() {
    assertThat(LivenessRules.isLost(T, T.plusSeconds(59), LOST_AFTER)).isFalse();
    assertThat(LivenessRules.isLost(T, T.plusMillis(59_999), LOST_AFTER)).isFalse();
    assertThat(LivenessRules.isLost(T, T.plusSeconds(60), LOST_AFTER)).isTrue();
    assertThat(LivenessRules.isLost(T, T.plusSeconds(3600), LOST_AFTER)).isTrue();
    // A clock behind the renewing replica's: not lost.
    assertThat(LivenessRules.isLost(T, T.minusSeconds(5), LOST_AFTER)).isFalse();
  }

  @Test
  void theLeaseIsRenewedOnceAThirdOfLostAfterOld() {
    assertThat(LivenessRules.needsRenewal(null, T, LOST_AFTER)).isTrue();
    assertThat(LivenessRules.needsRenewal(T, T.plusSeconds(15), LOST_AFTER)).isFalse();
    assertThat(LivenessRules.needsRenewal(T, T.plusSeconds(20), LOST_AFTER)).isTrue();
    // With heartbeats every quarter, that is every other heartbeat: never older than half.
    Duration hb = LivenessRules.heartbeat(LOST_AFTER);
    assertThat(hb).isEqualTo(Duration.ofSeconds(15));
    Instant renewed = T;
    int renewals = 0;
    for (int i = 1; i <= 40; i++) {
      Instant now = T.plus(hb.multipliedBy(i));
      assertThat(Duration.between(renewed, now)).isLessThanOrEqualTo(LOST_AFTER.dividedBy(2));
      if (LivenessRules.needsRenewal(renewed, now, LOST_AFTER)) {
        renewed = now;
        renewals++;
      }
    }
    assertThat(renewals).isEqualTo(20);
  }

  @Test
  void lastSeenIsRefreshedOnceALostAfter() {
    assertThat(LivenessRules.needsSeenWrite(null, T, LOST_AFTER)).isTrue();
    assertThat(LivenessRules.needsSeenWrite(T, T.plusSeconds(59), LOST_AFTER)).isFalse();
    assertThat(LivenessRules.needsSeenWrite(T, T.plusSeconds(60), LOST_AFTER)).isTrue();
  }

  @Test
  void heartbeatIsAQuarterOfLostAfterAndAtLeastASecond() {
    assertThat(LivenessRules.heartbeat(Duration.ofSeconds(10))).isEqualTo(Duration.ofMillis(2500));
    // The agent accepts no heartbeat under a second.
    assertThat(LivenessRules.heartbeat(Duration.ofSeconds(3))).isEqualTo(Duration.ofSeconds(1));
    assertThat(GoDuration.format(Duration.ofMillis(2500))).isEqualTo("2500ms");
    assertThat(GoDuration.format(Duration.ofSeconds(15))).isEqualTo("15s");
    assertThat(GoDuration.format(Duration.ofSeconds(3723))).isEqualTo("1h2m3s");
    assertThat(GoDuration.format(Duration.ofHours(2))).isEqualTo("2h");
    assertThat(GoDuration.format(Duration.ZERO)).isEqualTo("0s");
  }

  @Test
  void aNewBootIdOfARunningOrLostMachineIsAReboot() {
    MachineBootStatus running = status(MachinePhase.Running, "b1");
    assertThat(LivenessRules.rebooted(running, report("b2"), false)).isTrue();
    assertThat(LivenessRules.rebooted(running, report("b1"), false)).isFalse();
    assertThat(LivenessRules.rebooted(running, report(null), false)).as("no agent").isFalse();
    assertThat(LivenessRules.rebooted(status(MachinePhase.Running, null), report("b2"), false))
        .as("no boot id before")
        .isFalse();
    MachineBootStatus bootstrap = status(MachinePhase.Bootstrap, "b1");
    assertThat(LivenessRules.rebooted(bootstrap, report("b2"), false)).isFalse();
    assertThat(LivenessRules.rebooted(bootstrap, report("b2"), true)).as("lost").isTrue();
    assertThat(LivenessRules.rebooted(null, report("b2"), true)).isFalse();
  }

  @Test
  void lastSeenIsTheLatestSignOfLife() {
    MachineBootStatus s =
        MachineBootStatus.builder()
            .phase(MachinePhase.Running)
            .lastReportTime("2026-01-01T00:00:10.500Z")
            .lastSeen("2026-01-01T00:00:05Z")
            .build();
    assertThat(LivenessRules.lastSeen(null, s)).contains(Instant.parse("2026-01-01T00:00:10.500Z"));
    assertThat(LivenessRules.lastSeen(T.plusSeconds(30), s)).contains(T.plusSeconds(30));
    assertThat(LivenessRules.lastSeen(null, null)).isEmpty();
    assertThat(LivenessRules.tracked(status(MachinePhase.Pending, null))).isFalse();
    assertThat(LivenessRules.tracked(status(MachinePhase.PXEBooting, null))).isFalse();
    assertThat(LivenessRules.tracked(status(MachinePhase.Bootstrap, null))).isTrue();
  }

  @Test
  void leaseNamesFollowTheMachineBootAndStayValid() {
    assertThat(LivenessRules.leaseName("m1")).isEqualTo("m1-agent");
    String longName = "a".repeat(250);
    String lease = LivenessRules.leaseName(longName);
    assertThat(lease).hasSizeLessThanOrEqualTo(253).endsWith("-agent");
    assertThat(LivenessRules.leaseName("a".repeat(249) + "b")).isNotEqualTo(lease);
  }

  private static MachineBootStatus status(MachinePhase phase, String bootId) {
    return MachineBootStatus.builder()
        .phase(phase)
        .currentImage("debian-12")
        .agent(bootId == null ? null : new AgentInfo("0.1.0", bootId, null, null, null))
        .build();
  }

  private static StatusReport report(String bootId) {
    return StatusReport.builder()
        .phase(MachinePhase.Bootstrap)
        .agent(bootId == null ? null : new AgentInfo("0.1.0", bootId, null, null, null))
        .build();
  }
}
