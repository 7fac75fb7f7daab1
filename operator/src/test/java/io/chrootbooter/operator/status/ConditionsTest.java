package io.chrootbooter.operator.status;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Condition;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

class ConditionsTest {
  private static final Instant T1 = Instant.parse("2026-01-01T10:00:00Z");
  private static final Instant T2 = Instant.parse("2026-01-01T10:05:00Z");

  @Test
  void transitionTimeChangesOnlyWhenTheStatusChanges() {
    List<Condition> first =
        Conditions.merge(
            List.of(), Health.reconciling(Reason.WaitingForAgent, "waiting").conditions(1L), T1);
    assertThat(first)
        .extracting(Condition::getLastTransitionTime)
        .containsOnly("2026-01-01T10:00:00Z");

    // Same statuses, other reason and message: no transition.
    List<Condition> second =
        Conditions.merge(
            first, Health.reconciling(Reason.Progressing, "downloading").conditions(2L), T2);
    assertThat(second)
        .extracting(Condition::getLastTransitionTime)
        .containsOnly("2026-01-01T10:00:00Z");
    assertThat(Conditions.find(second, "Reconciling").orElseThrow().getReason())
        .isEqualTo("Progressing");

    // Ready flips: Ready and Reconciling transition, Stalled does not.
    List<Condition> third =
        Conditions.merge(second, Health.ready(Reason.Running, "running").conditions(2L), T2);
    assertThat(Conditions.find(third, "Ready").orElseThrow().getLastTransitionTime())
        .isEqualTo("2026-01-01T10:05:00Z");
    assertThat(Conditions.find(third, "Reconciling").orElseThrow().getLastTransitionTime())
        .isEqualTo("2026-01-01T10:05:00Z");
    assertThat(Conditions.find(third, "Stalled").orElseThrow().getLastTransitionTime())
        .isEqualTo("2026-01-01T10:00:00Z");
  }

  @Test
  void exactlyOneOfTheThreeIsTrueAndHealthReadsItBack() {
    Health stalled = Health.stalled(Reason.InvalidSpec, "spec.macAddress: required");
    List<Condition> conditions = stalled.conditions(3L);
    assertThat(conditions)
        .filteredOn(c -> "True".equals(c.getStatus()))
        .extracting(Condition::getType)
        .containsExactly("Stalled");
    assertThat(conditions).extracting(Condition::getObservedGeneration).containsOnly(3L);
    assertThat(Health.of(conditions)).contains(stalled);
  }
}
