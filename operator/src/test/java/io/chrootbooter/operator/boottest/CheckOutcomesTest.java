package io.chrootbooter.operator.boottest;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.BootTestCheck.TestedTrigger;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckOutcome;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.TestCommand;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** How a command check is decided from what the agent reported, and which commands a boot runs. */
class CheckOutcomesTest {
  private static final Instant T0 = Instant.parse("2026-01-01T10:00:00Z");

  private static BootTestCheck command(String name, String... run) {
    return new BootTestCheck(
        name, null, null, new BootTestCheck.Command(List.of(run), null, "20s"), null, null);
  }

  private static MachineBoot running(Boolean healthy, List<TestCommand.Result> results) {
    MachineBoot mb = new MachineBoot();
    mb.setStatus(
        MachineBootStatus.builder()
            .phase(MachinePhase.Running)
            .currentImage("busybox")
            .observedGeneration(1L)
            .healthy(healthy)
            .testCommands(results)
            .build());
    return mb;
  }

  /** What {@code check} (named kernel) decides at {@code now}, its result {@code result}. */
  private static CheckOutcomes.Decided reported(
      BootTestCheck check, TestCommand.Result result, Instant now) {
    return CheckOutcomes.command(
            check, "kernel", running(true, List.of(result)), "busybox", T0, Optional.empty(), now)
        .orElseThrow();
  }

  @Test
  void aBootRunsTheCommandsUpToTheNextReturnsCheck() {
    List<BootTestCheck> checks =
        List.of(
            new BootTestCheck(null, new BootTestCheck.Healthy("1m"), null),
            command("a", "true"),
            new BootTestCheck(null, null, new BootTestCheck.Returns(TestedTrigger.Hotkey, null)),
            command("b", "uname", "-r"),
            command("c", "false"));
    assertThat(CheckOutcomes.commandsFrom(checks, 0))
        .containsExactly(new TestCommand("a", List.of("true"), "20s"));
    assertThat(CheckOutcomes.commandsFrom(checks, 3))
        .extracting(TestCommand::name)
        .containsExactly("b", "c");
    assertThat(CheckOutcomes.commandsFrom(checks, -1)).hasSize(1);
  }

  @Test
  void aCommandPassesOnItsExitCodeAndFailsOnAnotherATimeoutOrNoResult() {
    BootTestCheck check = command("kernel", "uname", "-r");
    var ok =
        reported(
            check,
            new TestCommand.Result("kernel", 0, false, "6.1.0\n", "", false, 4L, null),
            T0.plusSeconds(1));
    assertThat(ok.result()).isEqualTo(CheckOutcome.Passed);
    assertThat(ok.message()).isEqualTo("exit code 0 after 4 ms: 6.1.0");
    assertThat(ok.output()).isEqualTo("stdout:\n6.1.0\n");

    var killed =
        reported(
            check,
            new TestCommand.Result(
                "kernel", null, true, "", "hung\0\u001b\r\n", false, 20_000L, null),
            T0.plusSeconds(21));
    assertThat(killed.result()).isEqualTo(CheckOutcome.Failed);
    assertThat(killed.message()).isEqualTo("killed at its timeout of 20s");
    // What a target wrote may hold anything: control characters are shown, not kept.
    assertThat(killed.output()).isEqualTo("stderr:\nhung\uFFFD\uFFFD\uFFFD\n");

    var refused =
        reported(
            check,
            new TestCommand.Result(
                "kernel", null, null, null, null, null, null, "the command is empty"),
            T0.plusSeconds(1));
    assertThat(refused.result()).isEqualTo(CheckOutcome.Error);
    assertThat(refused.message()).isEqualTo("the agent did not run it: the command is empty");

    // No result: it waits for the timeout and 30 s, then says why there may be none.
    MachineBoot waiting = running(null, List.of());
    assertThat(
            CheckOutcomes.command(
                check, "kernel", waiting, "busybox", T0, Optional.empty(), T0.plusSeconds(49)))
        .isEmpty();
    var none =
        CheckOutcomes.command(
                check, "kernel", waiting, "busybox", T0, Optional.empty(), T0.plusSeconds(50))
            .orElseThrow();
    assertThat(none.result()).isEqualTo(CheckOutcome.Failed);
    assertThat(none.message())
        .isEqualTo(
            "no result within 50s: the target has not reported healthy, and its commands run"
                + " once it has");

    var returned =
        CheckOutcomes.command(
                check,
                "kernel",
                waiting,
                "busybox",
                T0,
                Optional.of(
                    new LastReturn("TargetExit", "the target's init exited", null, null, null)),
                T0.plusSeconds(2))
            .orElseThrow();
    assertThat(returned.message())
        .isEqualTo(
            "the target returned before the command's result: TargetExit: the target's init"
                + " exited");
  }
}
