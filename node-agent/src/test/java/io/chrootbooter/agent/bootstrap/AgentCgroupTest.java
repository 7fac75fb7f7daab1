package io.chrootbooter.agent.bootstrap;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.agent.pivot.TestTarget;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The bootstrap's {@code src/bootstrap/agent-cgroup}, run by busybox's sh as the agent's launcher
 * runs it: on itself, before it starts the JVM, here in a cgroup2 sandbox of this test (a directory
 * below the host's cgroup2 root, removed afterwards). The "JVM" is the launcher's child, which
 * reports the cgroup and {@code oom_score_adj} it inherited.
 *
 * <p>What the host lacks changes what the script can do, and the test asserts what it then says:
 * without a memory controller in the sandbox (a cgroup v1 hybrid host) there is no reservation;
 * without CAP_SYS_RESOURCE (some container hosts) no negative {@code oom_score_adj}. A real OOM in
 * a target, with both, is {@code AgentOomQemuIT}'s.
 */
class AgentCgroupTest {
  private static final Path SCRIPT = Path.of("src/bootstrap/agent-cgroup");
  private static final int CAP_SYS_RESOURCE = 24;

  private Path sandbox;

  @BeforeEach
  void sandbox() throws Exception {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")), "needs root: a cgroup2 sandbox");
    Assumptions.assumeTrue(
        Files.isExecutable(TestTarget.BUSYBOX),
        "no /bin/busybox: apt-get install -y busybox-static");
    Assumptions.assumeTrue(
        Files.exists(TestTarget.CGROUP2.resolve("cgroup.subtree_control")),
        "no cgroup2 hierarchy at " + TestTarget.CGROUP2);
    sandbox = TestTarget.newCgroup("cb-agent-cgroup");
    // Where the hierarchy has a memory controller, offer it to the sandbox's children, as the
    // bootstrap's init offers every controller below the root.
    if (Files.readString(sandbox.resolve("cgroup.controllers")).contains("memory")) {
      Files.writeString(sandbox.resolve("cgroup.subtree_control"), "+memory");
    }
  }

  @AfterEach
  void removeSandbox() throws Exception {
    if (sandbox != null) {
      TestTarget.removeCgroup(sandbox);
    }
  }

  @Test
  void theLauncherAndTheJvmItStartsGetACgroupOfTheirOwnAReservationAndNoOomKill() throws Exception {
    String out = launch("64M");

    Path agent = sandbox.resolve("cb-agent");
    assertThat(agent).isDirectory();
    String cgroupLine = "0::/" + TestTarget.CGROUP2.relativize(agent);
    assertThat(out).as("the child's /proc/self/cgroup").contains("cgroup " + cgroupLine);
    if (Files.readString(agent.resolve("cgroup.controllers")).contains("memory")) {
      assertThat(Files.readString(agent.resolve("memory.min")).strip()).isEqualTo("67108864");
      assertThat(out).doesNotContain("memory reservation");
    } else {
      assertThat(out)
          .contains(
              "agent-cgroup: "
                  + sandbox
                  + " enables no memory controller for its children: the agent runs without a"
                  + " memory reservation");
    }
    if (hasCapability(CAP_SYS_RESOURCE)) {
      assertThat(out).contains("oom_score_adj -1000").doesNotContain("cannot set oom_score_adj");
    } else {
      assertThat(out).contains("agent-cgroup: cannot set oom_score_adj of");
    }
    assertThat(out).as("the launcher goes on").contains("launcher goes on");
  }

  @Test
  void aBadReservationFallsBackTo128M() throws Exception {
    String out = launch("lots; reboot");

    assertThat(out)
        .contains(
            "agent-cgroup: cb.agent-memory-min=\"lots; reboot\" is not bytes or a number with K, M"
                + " or G; using 128M");
    Path min = sandbox.resolve("cb-agent/memory.min");
    if (Files.exists(min)) {
      assertThat(Files.readString(min).strip()).isEqualTo("134217728");
    }
    assertThat(out).contains("launcher goes on");
  }

  @Test
  void aHostWithoutCgroup2MakesNoCgroupAndStillRuns() throws Exception {
    Path notACgroup = Files.createTempDirectory("cb-not-a-cgroup");
    try {
      String out = run(notACgroup, "64M");
      assertThat(out)
          .contains(
              "agent-cgroup: "
                  + notACgroup
                  + " is not a cgroup2 root: the agent runs in the cgroup it was started in")
          .contains("launcher goes on");
      try (var list = Files.list(notACgroup)) {
        assertThat(list).as("nothing created outside a cgroup2 hierarchy").isEmpty();
      }
    } finally {
      Files.delete(notACgroup);
    }
  }

  private String launch(String memoryMin) throws Exception {
    return run(sandbox, memoryMin);
  }

  /**
   * A launcher (busybox sh) that runs the script on itself, then starts a child which prints what
   * it inherited; the launcher and child end by themselves.
   */
  private String run(Path root, String memoryMin) throws Exception {
    String launcher =
        "sh \"$1\" \"$2\" $$ \"$3\" 2>&1\n"
            + "sh -c 'echo \"oom_score_adj $(cat /proc/self/oom_score_adj)\";"
            + " sed \"s/^/cgroup /\" /proc/self/cgroup'\n"
            + "echo launcher goes on\n";
    Process p =
        new ProcessBuilder(
                List.of(
                    TestTarget.BUSYBOX.toString(),
                    "sh",
                    "-c",
                    launcher,
                    "launcher",
                    SCRIPT.toAbsolutePath().toString(),
                    root.toString(),
                    memoryMin))
            .redirectErrorStream(true)
            .start();
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).as("launcher ends: %s", out).isTrue();
    assertThat(p.exitValue()).as("launcher: %s", out).isZero();
    return out;
  }

  private static boolean hasCapability(int cap) throws Exception {
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("CapEff:")) {
        return (Long.parseUnsignedLong(line.substring(7).strip(), 16) >> cap & 1) == 1;
      }
    }
    return false;
  }
}
