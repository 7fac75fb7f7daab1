package io.chrootbooter.operator.boottest;

import static io.chrootbooter.operator.boottest.Fixtures.apply;
import static io.chrootbooter.operator.boottest.Fixtures.healthy;
import static io.chrootbooter.operator.boottest.Fixtures.machineSpec;
import static io.chrootbooter.operator.boottest.Fixtures.ready;
import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.BootTestPromotion;
import io.chrootbooter.api.v1alpha1.BootTestSpec;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.api.v1alpha1.MachineSelection;
import io.chrootbooter.api.v1alpha1.MachineTestResult.MachineTestPhase;
import io.chrootbooter.api.v1alpha1.PromotionStatus;
import io.chrootbooter.api.v1alpha1.PromotionStatus.PromotionPhase;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.boottest.BootTestRules.Observation;
import io.chrootbooter.operator.boottest.BootTestRules.Plan;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.fabric8.kubernetes.api.model.LabelSelectorBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A promotion through {@link Promotion}, a pure function, on a simulated fleet whose agents obey at
 * once: a machine sent to an image runs it and reports healthy, or (when it is one of the {@code
 * broken}) is returned by BootTimeout; one sent to the bootstrap waits there.
 */
class PromotionTest {
  private static final Instant T0 = Instant.parse("2026-01-01T10:00:00Z");

  private final Map<String, MachineBoot> machines = new LinkedHashMap<>();
  private final Set<String> broken = new HashSet<>();
  private BootTest test;
  private Instant now = T0;
  private Plan last;
  private int returns;

  private void machine(String name, Map<String, String> labels) {
    machines.put(
        name,
        Fixtures.machine(
            name,
            labels,
            machineSpec("debian-12"),
            status(MachinePhase.Running, "debian-12", null, true)));
  }

  private static MachineBootStatus status(
      MachinePhase phase, String image, LastReturn r, boolean healthy) {
    return Fixtures.status(phase, image, r).toBuilder()
        .healthy(healthy && phase == MachinePhase.Running ? true : null)
        .build();
  }

  private void test(List<String> tested, BootTestPromotion promote) {
    test = new BootTest();
    test.setMetadata(
        new ObjectMetaBuilder().withName("roll").withNamespace("lab").withGeneration(1L).build());
    test.setSpec(
        new BootTestSpec(
            "busybox",
            new MachineSelection(null, tested),
            1,
            List.of(healthy("1m")),
            "10m",
            null,
            promote));
  }

  /** One reconcile, its writes applied; then every agent does what its machine is told. */
  private Plan step() {
    last =
        Promotion.plan(new Observation(test, ready(), Map.copyOf(machines), Set.of("roll"), now));
    apply(last.writes(), machines);
    test.setStatus(last.status());
    now = now.plus(Duration.ofSeconds(1));
    for (var e : machines.entrySet()) {
      MachineBoot mb = e.getValue();
      String wanted = TestHold.effectiveSpec(mb).imageRef();
      MachineBootStatus s = mb.getStatus();
      if (wanted == null) {
        if (s.phase() != MachinePhase.Bootstrap) {
          mb.setStatus(status(MachinePhase.Bootstrap, null, returned("SpecChange"), false));
        }
      } else if (!wanted.equals(s.currentImage()) && s.phase() != MachinePhase.Bootstrap) {
        mb.setStatus(status(MachinePhase.Bootstrap, null, returned("SpecChange"), false));
      } else if (!wanted.equals(s.currentImage())) {
        if (broken.contains(e.getKey()) && wanted.equals("busybox")) {
          mb.setStatus(status(MachinePhase.Bootstrap, null, returned("BootTimeout"), false));
        } else {
          mb.setStatus(status(MachinePhase.Running, wanted, s.lastReturn(), true));
        }
      }
    }
    return last;
  }

  private LastReturn returned(String trigger) {
    return new LastReturn(trigger, "why", now.plusNanos(++returns).toString(), 100L, false);
  }

  private PromotionStatus promotion() {
    return test.getStatus().promotion();
  }

  private long held() {
    return machines.values().stream().filter(m -> TestHold.of(m).isPresent()).count();
  }

  private boolean ended() {
    return test.getStatus() != null
        && (Conditions.isTrue(test.getStatus().conditions(), "Complete")
            || Conditions.isTrue(test.getStatus().conditions(), "Failed"));
  }

  private void runUntilEnded(int maxHeld) {
    for (int i = 0; i < 200 && !ended(); i++) {
      step();
      assertThat(held()).as("held at once").isLessThanOrEqualTo(maxHeld);
    }
    assertThat(ended()).as("ended: %s", test.getStatus()).isTrue();
  }

  @Test
  void theFleetIsPromotedInBatchesOfMaxUnavailableAfterTheTestPassed() {
    machine("t1", Map.of());
    for (int i = 1; i <= 5; i++) {
      machine("w" + i, Map.of("fleet", "web"));
    }
    test(
        List.of("t1"),
        new BootTestPromotion(
            new MachineSelection(
                new LabelSelectorBuilder().withMatchLabels(Map.of("fleet", "web")).build(), null),
            2,
            1));
    step();
    assertThat(promotion().phase()).isEqualTo(PromotionPhase.Waiting);
    assertThat(promotion().progress()).isEqualTo("0/5 promoted");
    assertThat(held()).as("only the tested machine").isEqualTo(1);

    step();
    step();
    step();
    // The test passed: the first batch is taken, two machines.
    for (int i = 0; i < 10 && promotion().phase() == PromotionPhase.Waiting; i++) {
      step();
    }
    assertThat(promotion().phase()).isEqualTo(PromotionPhase.Promoting);
    assertThat(machines.get("t1").getSpec().imageRef()).as("restored").isEqualTo("debian-12");
    runUntilEnded(2);
    assertThat(Conditions.isTrue(test.getStatus().conditions(), "Complete")).isTrue();
    assertThat(Conditions.isTrue(test.getStatus().conditions(), "Promoted")).isTrue();
    assertThat(promotion().phase()).isEqualTo(PromotionPhase.Promoted);
    assertThat(promotion().progress()).isEqualTo("5/5 promoted");
    assertThat(Conditions.find(test.getStatus().conditions(), "Promoted").get().getMessage())
        .isEqualTo("5/5 promoted");
    assertThat(Conditions.find(test.getStatus().conditions(), "Complete").get().getMessage())
        .isEqualTo("the test passed; 5/5 promoted");
    assertThat(promotion().batch()).isEqualTo(3);
    assertThat(test.getStatus().passed()).isEqualTo(6);
    for (int i = 1; i <= 5; i++) {
      MachineBoot mb = machines.get("w" + i);
      assertThat(mb.getSpec().imageRef()).isEqualTo("busybox");
      assertThat(TestHold.of(mb)).isEmpty();
    }
    assertThat(last.requeue()).isEmpty();
  }

  @Test
  void theFirstFailureThresholdFailuresStopThePromotionAndRollBack() {
    machine("t1", Map.of());
    for (int i = 1; i <= 6; i++) {
      machine("w" + i, Map.of());
    }
    broken.add("w2");
    broken.add("w3");
    test(
        List.of("t1"),
        new BootTestPromotion(
            new MachineSelection(null, List.of("w1", "w2", "w3", "w4", "w5", "w6")), 1, 2));
    runUntilEnded(1);
    assertThat(Conditions.isTrue(test.getStatus().conditions(), "Failed")).isTrue();
    assertThat(Conditions.isTrue(test.getStatus().conditions(), "RolledBack")).isTrue();
    assertThat(promotion().phase()).isEqualTo(PromotionPhase.Stopped);
    assertThat(promotion().progress()).isEqualTo("1/6 promoted");
    assertThat(promotion().rolledBack())
        .extracting(PromotionStatus.RolledBack::name)
        .containsExactly("w2", "w3");
    assertThat(promotion().rolledBack().get(0).reason()).contains("BootTimeout");
    assertThat(machines.get("w1").getSpec().imageRef()).isEqualTo("busybox");
    for (String name : List.of("w2", "w3", "w4", "w5", "w6")) {
      assertThat(machines.get(name).getSpec().imageRef()).as(name).isEqualTo("debian-12");
      assertThat(TestHold.of(machines.get(name))).as(name).isEmpty();
    }
    assertThat(
            promotion().machines().stream()
                .filter(m -> m.name().equals("w4"))
                .findFirst()
                .orElseThrow()
                .phase())
        .isEqualTo(MachineTestPhase.Pending);
    assertThat(test.getStatus().failed()).isEqualTo(2);
    assertThat(last.notes())
        .anyMatch(
            n ->
                n.reason() == io.chrootbooter.operator.status.Reason.PromotionStopped
                    && n.message().startsWith("stopped: failureThreshold 2 reached (2 failures)"));
  }

  @Test
  void aFailedTestPromotesNothing() {
    machine("t1", Map.of());
    machine("w1", Map.of());
    broken.add("t1");
    test(List.of("t1"), new BootTestPromotion(new MachineSelection(null, List.of("w1")), 1, 1));
    runUntilEnded(1);
    assertThat(Conditions.isTrue(test.getStatus().conditions(), "Failed")).isTrue();
    assertThat(promotion().phase()).isEqualTo(PromotionPhase.NotStarted);
    assertThat(machines.get("w1").getSpec().imageRef()).isEqualTo("debian-12");
    assertThat(TestHold.of(machines.get("w1"))).isEmpty();
    assertThat(machines.get("w1").getMetadata().getLabels()).doesNotContainKey(TestHold.LABEL);
  }

  @Test
  void theValidatorNamesEveryProblemOfPromote() {
    BootTestSpec spec =
        new BootTestSpec(
            "busybox",
            new MachineSelection(
                new LabelSelectorBuilder().withMatchLabels(Map.of("rack", "a")).build(),
                List.of("m1")),
            1,
            List.of(new BootTestCheck(null, new BootTestCheck.Healthy(null), null)),
            null,
            null,
            new BootTestPromotion(
                new MachineSelection(
                    new LabelSelectorBuilder().withMatchLabels(Map.of("rack", "a")).build(),
                    List.of("m2", "m1", "Bad")),
                0,
                1001));
    assertThat(BootTestValidator.violations(spec))
        .containsExactly(
            "spec.promote.promoteTo.names[2]: \"Bad\" is not an object name (lower-case letters,"
                + " digits, '-' and '.')",
            "spec.promote.promoteTo.names[1]: \"m1\" is in spec.machines.names too; a machine is"
                + " either tested or promoted",
            "spec.promote.promoteTo.selector: the same as spec.machines.selector; it would promote"
                + " to the machines tested",
            "spec.promote.maxUnavailable: 0 is not between 1 and 1000",
            "spec.promote.failureThreshold: 1001 is not between 1 and 1000");
    BootTestSpec none =
        new BootTestSpec(
            "busybox",
            new MachineSelection(null, List.of("m1")),
            null,
            List.of(new BootTestCheck(null, new BootTestCheck.Healthy(null), null)),
            null,
            null,
            new BootTestPromotion(new MachineSelection(null, List.of()), null, null));
    assertThat(BootTestValidator.violations(none))
        .containsExactly("spec.promote.promoteTo: give a selector, names, or both");
  }
}
