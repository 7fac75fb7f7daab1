package io.chrootbooter.operator.boottest;

import static io.chrootbooter.operator.boottest.Fixtures.apply;
import static io.chrootbooter.operator.boottest.Fixtures.healthy;
import static io.chrootbooter.operator.boottest.Fixtures.machineSpec;
import static io.chrootbooter.operator.boottest.Fixtures.ready;
import static io.chrootbooter.operator.boottest.Fixtures.status;
import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.api.v1alpha1.AfterTest;
import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.BootTestCheck.TestedTrigger;
import io.chrootbooter.api.v1alpha1.BootTestSpec;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.api.v1alpha1.MachineSelection;
import io.chrootbooter.api.v1alpha1.MachineTestResult;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckOutcome;
import io.chrootbooter.api.v1alpha1.MachineTestResult.MachineTestPhase;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.boottest.BootTestRules.Hold;
import io.chrootbooter.operator.boottest.BootTestRules.Observation;
import io.chrootbooter.operator.boottest.BootTestRules.Plan;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.LabelSelectorBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Every step of a machine's test through {@link BootTestRules}, a pure function: the machines'
 * reports are written into their status by hand, as the operator's agent API would.
 */
class BootTestRulesTest {
  private static final Instant T0 = Instant.parse("2026-01-01T10:00:00Z");

  private final Map<String, MachineBoot> machines = new LinkedHashMap<>();
  private BootTest test;
  private Instant now = T0;
  private Plan last;

  private void machine(String name, String image, MachinePhase phase, Map<String, String> labels) {
    MachineBoot mb =
        Fixtures.machine(
            name,
            labels,
            machineSpec(image),
            status(phase, phase == MachinePhase.Running ? image : null, null));
    mb.getMetadata().setResourceVersion("7");
    machines.put(name, mb);
  }

  /** What the agent reports: its status written into the MachineBoot. */
  private void reports(String name, MachinePhase phase, String image, LastReturn r) {
    MachineBoot mb = machines.get(name);
    LastReturn kept = r != null ? r : mb.getStatus().lastReturn();
    mb.setStatus(status(phase, image, kept));
  }

  private static LastReturn returned(String trigger, String time) {
    return new LastReturn(trigger, "why", time, 120L, false);
  }

  private void test(BootTestSpec spec) {
    test = new BootTest();
    test.setMetadata(
        new ObjectMetaBuilder().withName("smoke").withNamespace("lab").withGeneration(1L).build());
    test.setSpec(spec);
  }

  private static BootTestSpec spec(
      List<String> names,
      LabelSelector selector,
      int parallelism,
      AfterTest after,
      BootTestCheck... checks) {
    return new BootTestSpec(
        "busybox",
        new MachineSelection(selector, names),
        parallelism,
        List.of(checks),
        "10m",
        after);
  }

  private static BootTestCheck returns(TestedTrigger trigger, String timeout) {
    return new BootTestCheck(null, null, new BootTestCheck.Returns(trigger, timeout));
  }

  /** One reconcile: the plan is applied as the reconciler would (holds, releases, status). */
  private Plan step() {
    last =
        BootTestRules.plan(
            new Observation(test, ready(), Map.copyOf(machines), Set.of("smoke"), now));
    apply(last.writes(), machines);
    test.setStatus(last.status());
    return last;
  }

  private MachineTestResult result(String name) {
    return test.getStatus().machines().stream()
        .filter(m -> m.name().equals(name))
        .findFirst()
        .orElseThrow();
  }

  private TestHold hold(String name) {
    return TestHold.of(machines.get(name)).orElseThrow();
  }

  private void later(Duration d) {
    now = now.plus(d);
  }

  @Test
  void aMachineGoesThroughTheBootstrapToTheImageAndPassesItsChecksOneMachineAtATime() {
    machine("m1", "debian-12", MachinePhase.Running, Map.of());
    machine("m2", null, MachinePhase.Bootstrap, Map.of());
    test(
        spec(
            List.of("m2", "m1"),
            null,
            1,
            null,
            healthy("30s"),
            returns(TestedTrigger.SpecChange, "1m")));

    step();
    assertThat(test.getStatus().machines())
        .extracting(MachineTestResult::name)
        .containsExactly("m1", "m2");
    assertThat(result("m1").phase()).isEqualTo(MachineTestPhase.Switching);
    assertThat(result("m1").stage()).isEqualTo("Bootstrap");
    assertThat(result("m1").previousImage()).isEqualTo("debian-12");
    assertThat(result("m2").phase()).as("parallelism 1").isEqualTo(MachineTestPhase.Pending);
    TestHold toBootstrap = hold("m1");
    assertThat(toBootstrap.imageRef()).isNull();
    assertThat(toBootstrap.spec()).isEqualTo(machineSpec("debian-12"));
    assertThat(toBootstrap.generation()).isGreaterThan(1_000_000_000_000L);
    assertThat(last.writes()).singleElement().isInstanceOf(Hold.class);
    assertThat(((Hold) last.writes().get(0)).resourceVersion())
        .as("taken on what was seen")
        .isEqualTo("7");

    // Still running the old image: nothing moves.
    later(Duration.ofMillis(300));
    step();
    assertThat(result("m1").stage()).isEqualTo("Bootstrap");
    assertThat(last.writes()).isEmpty();

    reports("m1", MachinePhase.Bootstrap, null, returned("SpecChange", "t1"));
    later(Duration.ofMillis(300));
    step();
    TestHold toImage = hold("m1");
    assertThat(toImage.imageRef()).isEqualTo("busybox");
    assertThat(toImage.bootTimeout()).as("the healthy check's timeout").isEqualTo("30s");
    assertThat(toImage.generation()).isGreaterThan(toBootstrap.generation());
    assertThat(result("m1").stage()).isEqualTo("Image");

    reports("m1", MachinePhase.Running, "busybox", null);
    later(Duration.ofSeconds(1));
    step();
    assertThat(result("m1").phase()).isEqualTo(MachineTestPhase.Checking);
    assertThat(result("m1").checks().get(0).result()).isEqualTo(CheckOutcome.Running);

    // An agent that reports no health: healthy once bootTimeout (and a margin) passed without a
    // BootTimeout return.
    later(Duration.ofSeconds(31));
    step();
    assertThat(result("m1").checks().get(0).result()).isEqualTo(CheckOutcome.Running);
    later(Duration.ofSeconds(2));
    step();
    assertThat(result("m1").checks().get(0).result()).isEqualTo(CheckOutcome.Passed);
    // The SpecChange check sends the machine to the bootstrap itself.
    assertThat(result("m1").checks().get(1).result()).isEqualTo(CheckOutcome.Running);
    assertThat(hold("m1").imageRef()).isNull();

    reports("m1", MachinePhase.Bootstrap, null, returned("SpecChange", "t2"));
    later(Duration.ofMillis(500));
    step();
    assertThat(result("m1").phase()).isEqualTo(MachineTestPhase.Passed);
    assertThat(result("m1").checks().get(1).message()).contains("returned by SpecChange in 120 ms");
    assertThat(result("m1").released()).isTrue();
    assertThat(machines.get("m1").getMetadata().getAnnotations())
        .doesNotContainKey(TestHold.ANNOTATION);
    assertThat(machines.get("m1").getSpec())
        .as("Restore leaves the spec")
        .isEqualTo(machineSpec("debian-12"));
    // The slot is free: m2 is taken in the same reconcile.
    assertThat(result("m2").phase()).isEqualTo(MachineTestPhase.Switching);
    assertThat(test.getStatus().passed()).isEqualTo(1);
    assertThat(Conditions.isTrue(test.getStatus().conditions(), "Running")).isTrue();
    assertThat(last.requeue()).contains(BootTestRules.POLL);
  }

  @Test
  void aBootTimeoutReturnFailsTheHealthyCheckSkipsTheRestAndKeepSetsTheSpec() {
    machine("m1", null, MachinePhase.Bootstrap, Map.of("rack", "a"));
    machine("m2", null, MachinePhase.Bootstrap, Map.of("rack", "b"));
    test(
        spec(
            null,
            new LabelSelectorBuilder()
                .addNewMatchExpression()
                .withKey("rack")
                .withOperator("In")
                .withValues("a")
                .endMatchExpression()
                .build(),
            5,
            AfterTest.Keep,
            healthy("5s"),
            returns(TestedTrigger.Hotkey, "1m")));
    step();
    assertThat(test.getStatus().machines())
        .extracting(MachineTestResult::name)
        .containsExactly("m1");
    step(); // in the bootstrap already: booted at once
    assertThat(hold("m1").imageRef()).isEqualTo("busybox");
    reports("m1", MachinePhase.Running, "busybox", null);
    step();
    later(Duration.ofSeconds(5));
    reports("m1", MachinePhase.Bootstrap, null, returned("BootTimeout", "t1"));
    step();
    MachineTestResult r = result("m1");
    assertThat(r.phase()).isEqualTo(MachineTestPhase.Failed);
    assertThat(r.checks().get(0).result()).isEqualTo(CheckOutcome.Failed);
    assertThat(r.checks().get(0).message())
        .startsWith("not healthy within 5s: returned by BootTimeout");
    assertThat(r.checks().get(1).result()).isEqualTo(CheckOutcome.Skipped);
    assertThat(machines.get("m1").getSpec().imageRef()).as("Keep").isEqualTo("busybox");
    assertThat(Conditions.isTrue(test.getStatus().conditions(), "Failed")).isTrue();
    assertThat(Conditions.isTrue(test.getStatus().conditions(), "Complete")).isFalse();
    assertThat(last.requeue()).isEmpty();
    assertThat(last.notes())
        .anyMatch(
            n -> n.warning() && n.message().startsWith("1 of 1 failed: m1 (Failed: healthy: "));
  }

  @Test
  void aReturnByAnotherTriggerOrNoneInTimeFailsAReturnsCheck() {
    machine("m1", null, MachinePhase.Bootstrap, Map.of());
    machine("m2", null, MachinePhase.Bootstrap, Map.of());
    test(
        spec(
            List.of("m1", "m2"),
            null,
            2,
            AfterTest.Bootstrap,
            returns(TestedTrigger.Serial, "1m")));
    step();
    step();
    reports("m1", MachinePhase.Running, "busybox", null);
    reports("m2", MachinePhase.Running, "busybox", null);
    step();
    assertThat(result("m1").checks().get(0).result()).isEqualTo(CheckOutcome.Running);
    reports("m1", MachinePhase.ConsoleOverride, null, returned("Hotkey", "t9"));
    later(Duration.ofSeconds(10));
    step();
    assertThat(result("m1").checks().get(0).message())
        .isEqualTo("expected a Serial return, got: returned by Hotkey in 120 ms: why");
    assertThat(result("m2").phase()).isEqualTo(MachineTestPhase.Checking);
    later(Duration.ofSeconds(50));
    step();
    assertThat(result("m2").checks().get(0).message()).isEqualTo("no Serial return within 1m");
    assertThat(machines.get("m2").getSpec().state()).as("Bootstrap").isNotNull();
    assertThat(test.getStatus().failed()).isEqualTo(2);
  }

  @Test
  void aMachineAnotherTestHoldsWaitsAndAStaleHoldIsTakenOverWithTheSpecItKept() {
    machine("m1", "debian-12", MachinePhase.Running, Map.of());
    MachineBoot mb = machines.get("m1");
    TestHold other = new TestHold("other", 1_800_000_000_000L, "x", null, machineSpec("debian-11"));
    mb.getMetadata().getAnnotations().put(TestHold.ANNOTATION, other.toJson());
    test(spec(List.of("m1"), null, 1, null, healthy("1s")));

    last =
        BootTestRules.plan(
            new Observation(test, ready(), Map.copyOf(machines), Set.of("smoke", "other"), now));
    assertThat(last.status().machines().get(0).phase()).isEqualTo(MachineTestPhase.Pending);
    assertThat(last.status().machines().get(0).message())
        .isEqualTo("waiting: BootTest other holds the machine");
    assertThat(last.writes()).isEmpty();

    step(); // "other" is gone
    assertThat(hold("m1").test()).isEqualTo("smoke");
    assertThat(hold("m1").spec())
        .as("what the machine had before either test")
        .isEqualTo(machineSpec("debian-11"));
    assertThat(hold("m1").generation()).isGreaterThan(other.generation());
  }

  @Test
  void theTestsTimeoutEndsWhatRunsInErrorAndReleasesIt() {
    machine("m1", "debian-12", MachinePhase.Running, Map.of());
    machine("m2", null, MachinePhase.Bootstrap, Map.of());
    test(spec(List.of("m1", "m2"), null, 1, null, healthy("1s")));
    step();
    later(Duration.ofMinutes(10));
    step();
    assertThat(result("m1").phase()).isEqualTo(MachineTestPhase.Error);
    assertThat(result("m1").message())
        .isEqualTo("the test's timeout of 10m passed while the machine was Switching");
    assertThat(result("m2").phase()).isEqualTo(MachineTestPhase.Error);
    assertThat(result("m2").released()).as("never held").isNull();
    assertThat(machines.get("m1").getMetadata().getAnnotations())
        .doesNotContainKey(TestHold.ANNOTATION);
    assertThat(test.getStatus().phase())
        .isEqualTo(io.chrootbooter.api.v1alpha1.BootTestStatus.TestPhase.Failed);
  }

  @Test
  void aMissingMachineWaitsAndAFailedBootIsAnError() {
    machine("m1", null, MachinePhase.Bootstrap, Map.of());
    test(spec(List.of("m1", "ghost"), null, 2, null, healthy("1s")));
    step();
    assertThat(result("ghost").phase()).isEqualTo(MachineTestPhase.Pending);
    assertThat(result("ghost").message())
        .isEqualTo("waiting for MachineBoot ghost, which does not exist");
    step();
    MachineBoot mb = machines.get("m1");
    mb.setStatus(
        MachineBootStatus.builder()
            .phase(MachinePhase.Failed)
            .observedGeneration(3L)
            .error("sha256 mismatch")
            .build());
    step();
    assertThat(result("m1").phase()).isEqualTo(MachineTestPhase.Error);
    assertThat(result("m1").message())
        .isEqualTo("the machine could not boot busybox: sha256 mismatch");
    assertThat(result("m1").checks().get(0).result()).isEqualTo(CheckOutcome.Skipped);
  }

  @Test
  void noMatchingMachineAnInvalidSpecAndAnEditedSpecFailTheTest() {
    machine("m1", null, MachinePhase.Bootstrap, Map.of());
    test(
        spec(
            null,
            new LabelSelectorBuilder().addToMatchLabels("rack", "z").build(),
            1,
            null,
            healthy("1s")));
    step();
    assertThat(Conditions.find(test.getStatus().conditions(), "Failed").get().getReason())
        .isEqualTo("NoMachines");

    test(spec(List.of("m1"), null, 0, null, new BootTestCheck(null, null, null)));
    step();
    var failed = Conditions.find(test.getStatus().conditions(), "Failed").get();
    assertThat(failed.getReason()).isEqualTo("InvalidSpec");
    assertThat(failed.getMessage())
        .isEqualTo(
            "spec.parallelism: 0 is not between 1 and 1000; spec.checks[0]: set exactly one of healthy, command, consoleMatches, consoleNever and returns");

    test(spec(List.of("m1"), null, 1, null, healthy("1s")));
    step();
    assertThat(hold("m1").test()).isEqualTo("smoke");
    test.getMetadata().setGeneration(2L);
    step();
    assertThat(result("m1").phase()).isEqualTo(MachineTestPhase.Error);
    assertThat(result("m1").message()).startsWith("spec: changed while the test ran");
    assertThat(machines.get("m1").getMetadata().getAnnotations())
        .doesNotContainKey(TestHold.ANNOTATION);
  }

  @Test
  void aHealthyReportPassesTheHealthyCheckAtOnce() {
    machine("m1", null, MachinePhase.Bootstrap, Map.of());
    test(spec(List.of("m1"), null, 1, null, healthy("5m")));
    step();
    step();
    MachineBoot mb = machines.get("m1");
    mb.setStatus(
        MachineBootStatus.builder()
            .phase(MachinePhase.Running)
            .currentImage("busybox")
            .observedGeneration(3L)
            .build());
    step();
    assertThat(result("m1").checks().get(0).result()).isEqualTo(CheckOutcome.Running);
    later(Duration.ofSeconds(4));
    mb.setStatus(
        MachineBootStatus.builder()
            .phase(MachinePhase.Running)
            .currentImage("busybox")
            .observedGeneration(3L)
            .healthy(true)
            .build());
    step();
    assertThat(result("m1").phase()).isEqualTo(MachineTestPhase.Passed);
    assertThat(result("m1").checks().get(0).message())
        .isEqualTo("busybox reported healthy 4000 ms after it was seen running");
    assertThat(result("m1").checks().get(0).durationMillis()).isEqualTo(4000L);
  }
}
