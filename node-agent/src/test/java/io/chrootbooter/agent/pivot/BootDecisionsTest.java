package io.chrootbooter.agent.pivot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The pure decisions and values of the pivot package. */
class BootDecisionsTest {
  @TempDir Path temp;

  @ParameterizedTest(name = "[{index}] {0}, spec names image {1} -> {2}")
  @CsvSource({
    "Hotkey,true,ConsoleOverride",
    "Serial,true,ConsoleOverride",
    "Helper,true,ConsoleOverride",
    "Console,true,ConsoleOverride",
    "Hotkey,false,Bootstrap",
    "SpecChange,true,Bootstrap",
    "BootTimeout,true,Bootstrap",
    "TargetExit,true,Bootstrap",
  })
  void aHumanOrTheTargetOverridesTheSpec(
      ReturnTrigger trigger, boolean namesImage, MachinePhase phase) {
    assertThat(BootController.phaseAfterReturn(trigger, namesImage)).isEqualTo(phase);
  }

  @Test
  void onlyANewGenerationEndsAnOverride() {
    assertThat(BootController.overrideEnds(7, 7)).isFalse();
    assertThat(BootController.overrideEnds(7, 8)).isTrue();
  }

  @ParameterizedTest(name = "[{index}] {0} = {1}")
  @CsvSource({"SIGRTMIN+4,38", "USR2,12", "sigterm,15", "9,9", "SIGHUP,1"})
  void parsesSignalNames(String name, int number) {
    assertThat(Signals.parse(name)).isEqualTo(number);
  }

  @Test
  void rejectsUnknownSignalsNamingTheAcceptedForms() {
    assertThatThrownBy(() -> Signals.parse("SIGFOO"))
        .hasMessageContaining("\"SIGFOO\" is not one of SIGHUP, SIGINT, SIGKILL, SIGUSR2, SIGTERM");
  }

  @Test
  void targetSpecDefaultsAndValidates() {
    TargetSpec spec =
        new TargetSpec(temp, null, null, Signals.SIGRTMIN + 4, null, Path.of("/dev/null"));
    assertThat(spec.init()).isEqualTo("/sbin/init");
    assertThat(spec.grace()).isEqualTo(Duration.ofSeconds(10));
    assertThatThrownBy(() -> new TargetSpec(temp, "sbin/init", "", 15, null, Path.of("/dev/null")))
        .hasMessage("init \"sbin/init\" is not an absolute path inside the image");
    assertThatThrownBy(() -> new TargetSpec(temp, "/init", "", 99, null, Path.of("/dev/null")))
        .hasMessage("gracefulSignal 99 is not a signal number 1..64");
  }

  @Test
  void stateFilesAreOneLineEach() throws IOException {
    StateFiles state = new StateFiles(temp.resolve("run/bootstrap"));
    state.running(4242, "http://h/i.squashfs", java.time.Instant.parse("2026-01-02T03:04:05Z"));
    assertThat(temp.resolve("run/bootstrap/pid_in_target")).hasContent("4242");
    assertThat(temp.resolve("run/bootstrap/current_phase")).hasContent("Running");
    assertThat(temp.resolve("run/bootstrap/boot_time")).hasContent("2026-01-02T03:04:05Z");
    state.noTarget();
    state.phase(MachinePhase.ConsoleOverride);
    assertThat(state.read("pid_in_target")).contains("");
    assertThat(state.read("current_phase")).contains("ConsoleOverride");
    assertThat(state.read("missing")).isEmpty();
  }

  @Test
  void teardownRunsInReverseAndEveryStepEvenAfterAFailure() {
    List<String> ran = new ArrayList<>();
    Teardown teardown = new Teardown();
    teardown.push("tmpfs", () -> ran.add("tmpfs"));
    teardown.push(
        "squashfs",
        () -> {
          ran.add("squashfs");
          throw new IOException("umount: busy");
        });
    teardown.push("overlay", () -> ran.add("overlay"));
    assertThatThrownBy(teardown::close).hasMessage("teardown of squashfs: umount: busy");
    assertThat(ran).containsExactly("overlay", "squashfs", "tmpfs");
  }

  @Test
  void theTargetsCommandLineHasNoCbWords() {
    assertThat(
            EnterScript.targetCommandLine(
                "BOOT_IMAGE=vmlinuz console=ttyS0  cb.operator=http://10.0.2.2:8080"
                    + " cb.token=s3cr3t \"cb.nonce=a b\" quiet cb_debug=1 foo=\"x cb.y\"\n"))
        .isEqualTo("BOOT_IMAGE=vmlinuz console=ttyS0 quiet foo=\"x cb.y\"\n");
    assertThat(EnterScript.targetCommandLine("cb.token=only\n")).isEqualTo("\n");
  }

  @Test
  void enterCommandPassesPathsAsArgumentsNotScriptText() {
    List<String> command =
        EnterScript.command(
            Path.of("/bin/busybox"),
            Path.of("/run/cb/root $(x)"),
            "/sbin/init",
            Path.of("/f"),
            Optional.of(Path.of("/h")),
            Path.of("/c"));
    assertThat(command.subList(0, 9))
        .containsExactly(
            "/bin/busybox",
            "unshare",
            "--mount",
            "--pid",
            "--uts",
            "--ipc",
            "--fork",
            "--propagation",
            "private");
    assertThat(command).contains("/run/cb/root $(x)");
    assertThat(command.get(11)).doesNotContain("/run/cb/root");
  }
}
