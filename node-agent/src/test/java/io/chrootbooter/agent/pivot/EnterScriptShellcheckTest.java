package io.chrootbooter.agent.pivot;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The shell scripts {@link EnterScript} runs pass shellcheck as POSIX sh (busybox ash runs them):
 * the enter step and the cgroup join step, each taken from the command line {@link
 * EnterScript#command} builds, so that the text checked is the text busybox gets, and the in-target
 * helper. Each is written to {@code target/shellcheck/} and checked there. Skipped where shellcheck
 * is not installed; CI installs it. The project's shell files are checked by {@code
 * .ci/shellcheck}.
 */
class EnterScriptShellcheckTest {
  private static final Path DIR = Path.of("target", "shellcheck");
  private static final Path BUSYBOX = Path.of("/bin/busybox");
  private static final Path ROOT = Path.of("/run/chrootbooter/root");
  private static final Path FIFO = Path.of("/run/chrootbooter/return.fifo");
  private static final Path HELPER = Path.of("/run/chrootbooter/bootstrap-return");
  private static final Path CMDLINE = Path.of("/run/chrootbooter/cmdline");

  @BeforeAll
  static void shellcheckInstalled() {
    Assumptions.assumeTrue(
        onPath("shellcheck"),
        "shellcheck is not on the PATH (apt-get install shellcheck): the scripts of EnterScript"
            + " are not checked");
  }

  @Test
  void enterStepIsClean() throws Exception {
    List<String> scripts =
        scripts(
            EnterScript.command(BUSYBOX, ROOT, "/sbin/init", FIFO, Optional.of(HELPER), CMDLINE));
    assertThat(scripts).hasSize(1);
    assertClean("enter.sh", scripts.get(0));
  }

  @Test
  void cgroupJoinStepAndEnterStepAreClean() throws Exception {
    List<String> scripts =
        scripts(
            EnterScript.command(
                BUSYBOX,
                ROOT,
                "/sbin/init",
                FIFO,
                Optional.of(HELPER),
                CMDLINE,
                Path.of("/sys/fs/cgroup/chrootbooter/target"),
                Optional.of(Path.of("/usr/libexec/chrootbooter/unshare"))));
    assertThat(scripts).hasSize(2);
    assertClean("join.sh", scripts.get(0));
    assertClean("enter-in-cgroup.sh", scripts.get(1));
  }

  @Test
  void confinedEnterStepIsClean() throws Exception {
    List<String> scripts =
        scripts(
            EnterScript.command(
                BUSYBOX,
                ROOT,
                "/sbin/init",
                FIFO,
                Optional.of(HELPER),
                CMDLINE,
                io.chrootbooter.protocol.Confinement.Confined,
                List.of("/dev/vdb", "/dev/mapper/data")));
    assertThat(scripts).hasSize(1);
    assertClean("enter-confined.sh", scripts.get(0));
  }

  @Test
  void helperIsClean() throws Exception {
    assertClean("bootstrap-return", EnterScript.helperScript());
  }

  /** The script of every {@code sh -c SCRIPT} in the command line, in order. */
  private static List<String> scripts(List<String> command) {
    List<String> scripts = new ArrayList<>();
    for (int i = 0; i + 2 < command.size(); i++) {
      if (command.get(i).equals("sh") && command.get(i + 1).equals("-c")) {
        scripts.add(command.get(i + 2));
      }
    }
    return scripts;
  }

  private static void assertClean(String name, String script)
      throws IOException, InterruptedException {
    Files.createDirectories(DIR);
    Path file = DIR.resolve(name);
    Files.writeString(file, script);
    Process shellcheck =
        new ProcessBuilder("shellcheck", "--shell=sh", "--format=gcc", file.toString())
            .redirectErrorStream(true)
            .start();
    String findings =
        new String(shellcheck.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(shellcheck.waitFor(60, TimeUnit.SECONDS)).as("shellcheck ends").isTrue();
    assertThat(shellcheck.exitValue())
        .withFailMessage("shellcheck --shell=sh %s found:%n%s", file, findings)
        .isZero();
  }

  private static boolean onPath(String tool) {
    return Stream.of(System.getenv().getOrDefault("PATH", "").split(":"))
        .anyMatch(dir -> !dir.isEmpty() && Files.isExecutable(Path.of(dir, tool)));
  }
}
