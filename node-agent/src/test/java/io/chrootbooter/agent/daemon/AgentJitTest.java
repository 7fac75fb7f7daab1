package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code agent.jit}: the mode read from the JVM's flags, and the bootstrap's reason for it. */
class AgentJitTest {

  /** The bootstrap's command line: the agent script's JVM_FLAGS, then the jar and `run`. */
  private static List<String> bootstrap(String... flags) {
    List<String> cmdline = new java.util.ArrayList<>();
    cmdline.add("/opt/java/bin/java");
    cmdline.addAll(List.of(flags));
    cmdline.addAll(
        List.of("-XX:+UseSerialGC", "-Xmx48m", "-jar", "/opt/agent/quarkus-run.jar", "run"));
    return cmdline;
  }

  @Test
  void theModeComesFromTheFlagsAndTheReasonFromTheAgentScript() {
    assertThat(
            Daemon.jit(
                Daemon.jvmFlags(null, bootstrap("-XX:TieredStopAtLevel=1")),
                "hypervisor TCGTCGTCGTCG: QEMU TCG"))
        .isEqualTo("c1 (hypervisor TCGTCGTCGTCG: QEMU TCG)");
    assertThat(Daemon.jit(Daemon.jvmFlags(null, bootstrap()), "hypervisor KVMKVMKVM"))
        .isEqualTo("tiered (hypervisor KVMKVMKVM)");
    assertThat(Daemon.jit(Daemon.jvmFlags(null, bootstrap()), "cb.jit=tiered"))
        .isEqualTo("tiered (cb.jit=tiered)");
    // Started by something other than the bootstrap's agent script: no reason.
    assertThat(Daemon.jit(Daemon.jvmFlags(null, bootstrap()), null)).isEqualTo("tiered");
    assertThat(Daemon.jit(Daemon.jvmFlags(null, bootstrap()), " ")).isEqualTo("tiered");
  }

  @Test
  void theLastFlagOfAKindWins() {
    assertThat(mode("-XX:TieredStopAtLevel=1", "-XX:TieredStopAtLevel=4")).isEqualTo("tiered");
    assertThat(mode("-XX:TieredStopAtLevel=4", "-XX:TieredStopAtLevel=3")).isEqualTo("c1");
    assertThat(mode("-XX:TieredStopAtLevel=0")).isEqualTo("interpreter");
    assertThat(mode("-XX:-TieredCompilation")).isEqualTo("c2");
    assertThat(mode("-XX:-TieredCompilation", "-XX:+TieredCompilation")).isEqualTo("tiered");
    assertThat(mode("-Xint")).isEqualTo("interpreter");
    assertThat(mode("-Xint", "-Xmixed")).isEqualTo("tiered");
  }

  @Test
  void onlyTheJvmsOptionsCount() {
    // JAVA_TOOL_OPTIONS come first; the command line overrides them.
    assertThat(
            Daemon.jvmFlags(
                " -XX:TieredStopAtLevel=1  -Xss1m ", bootstrap("-XX:TieredStopAtLevel=4")))
        .containsExactly(
            "-XX:TieredStopAtLevel=1",
            "-Xss1m",
            "-XX:TieredStopAtLevel=4",
            "-XX:+UseSerialGC",
            "-Xmx48m");
    // A class path's value is skipped; the main class and its arguments end the options.
    assertThat(
            Daemon.jvmFlags(
                "",
                List.of(
                    "java",
                    "-cp",
                    "-odd.jar",
                    "-XX:TieredStopAtLevel=1",
                    "io.example.Main",
                    "-XX:TieredStopAtLevel=4")))
        .containsExactly("-XX:TieredStopAtLevel=1");
    assertThat(Daemon.jvmFlags(null, List.of())).isEmpty();
  }

  private static String mode(String... flags) {
    return Daemon.jit(Daemon.jvmFlags(null, bootstrap(flags)), null);
  }
}
