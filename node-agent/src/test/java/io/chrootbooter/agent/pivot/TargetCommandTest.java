package io.chrootbooter.agent.pivot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A command run in a real target: a process in mount, UTS, IPC and PID namespaces of its own (its
 * own hostname and /proc) made with util-linux {@code unshare}, torn down after each test.
 */
class TargetCommandTest {
  private static final Path BUSYBOX = Path.of("/bin/busybox");
  private static final String HOSTNAME = "cb-target";

  private Process unshare;
  private long init;

  @BeforeEach
  void startTarget() throws Exception {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")), "needs root: namespaces");
    Assumptions.assumeTrue(Files.isExecutable(BUSYBOX), "no /bin/busybox (busybox-static)");
    Path util =
        Stream.of("/usr/bin/unshare", "/bin/unshare")
            .map(Path::of)
            .filter(Files::isExecutable)
            .findFirst()
            .orElse(null);
    Assumptions.assumeTrue(util != null, "no unshare from util-linux");
    unshare =
        new ProcessBuilder(
                util.toString(),
                "--pid",
                "--fork",
                "--mount",
                "--uts",
                "--ipc",
                "--mount-proc",
                BUSYBOX.toString(),
                "sh",
                "-c",
                "hostname " + HOSTNAME + " && exec " + BUSYBOX + " sleep 1000")
            .redirectErrorStream(true)
            .start();
    // The target's init: the sleep, PID 1 of its namespace, a child of unshare.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (System.nanoTime() < deadline) {
      var child =
          unshare
              .children()
              .filter(p -> p.info().commandLine().orElse("").contains("sleep 1000"))
              .findFirst();
      if (child.isPresent()) {
        init = child.get().pid();
        return;
      }
      Thread.sleep(20);
    }
    throw new AssertionError(
        "the target did not start: " + new String(unshare.getInputStream().readNBytes(4096)));
  }

  @AfterEach
  void stopTarget() throws Exception {
    if (unshare != null) {
      unshare.descendants().forEach(ProcessHandle::destroyForcibly);
      unshare.destroyForcibly();
      unshare.waitFor(10, TimeUnit.SECONDS);
    }
  }

  private TargetCommand.Result run(Duration timeout, int max, String... argv) throws Exception {
    return TargetCommand.run(BUSYBOX, init, List.of(argv), timeout, max);
  }

  private boolean targetAlive() {
    return ProcessHandle.of(init).map(ProcessHandle::isAlive).orElse(false);
  }

  @Test
  void runsInTheTargetsNamespacesWithItsExitCodeAndOutput() throws Exception {
    var r =
        run(
            Duration.ofSeconds(10),
            4096,
            "sh",
            "-c",
            "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo oops >&2; exit 3");
    assertThat(r.exitCode()).isEqualTo(3);
    assertThat(r.timedOut()).isFalse();
    assertThat(r.stdout()).startsWith(HOSTNAME + "\n").contains("sleep 1000");
    assertThat(r.stderr()).isEqualTo("oops\n");
    assertThat(r.truncated()).isFalse();
    String env = run(Duration.ofSeconds(10), 65536, "env").stdout();
    assertThat(env)
        .contains("HOME=/root\n")
        .contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
    // Nothing of the agent's environment reaches the target (the test JVM's stands in for it).
    System.getenv().keySet().stream()
        .filter(k -> !List.of("HOME", "PATH", "PWD", "SHLVL", "_").contains(k))
        .forEach(k -> assertThat(env).as("a clean environment").doesNotContain(k + "="));
  }

  @Test
  void outputBeyondTheBoundIsCutAndSaidSo() throws Exception {
    var r = run(Duration.ofSeconds(20), 1000, "sh", "-c", "yes | head -c 200000; echo done >&2");
    assertThat(r.exitCode()).isZero();
    assertThat(r.stdout()).hasSize(1000).startsWith("y\ny\n");
    assertThat(r.stderr()).isEqualTo("done\n");
    assertThat(r.truncated()).isTrue();
  }

  @Test
  void theTimeoutKillsTheCommandOnlyAndADaemonDoesNotHoldTheCheck() throws Exception {
    long start = System.nanoTime();
    var slow = run(Duration.ofSeconds(1), 100, "sh", "-c", "echo begun; sleep 60; echo never");
    assertThat(slow.timedOut()).isTrue();
    assertThat(slow.exitCode()).isEqualTo(-1);
    assertThat(slow.stdout()).isEqualTo("begun\n");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
    assertThat(targetAlive()).as("the target survives its command's timeout").isTrue();
    String left =
        run(Duration.ofSeconds(10), 4096, "sh", "-c", "ps -o args 2>/dev/null || ls /proc")
            .stdout();
    assertThat(left).doesNotContain("sleep 60");

    start = System.nanoTime();
    var daemon = run(Duration.ofSeconds(30), 100, "sh", "-c", "sleep 300 & echo started; exit 0");
    assertThat(daemon.exitCode()).isZero();
    assertThat(daemon.timedOut()).isFalse();
    assertThat(daemon.stdout()).isEqualTo("started\n");
    assertThat(Duration.ofNanos(System.nanoTime() - start))
        .as("the daemon keeps the pipes open; the check does not wait for it")
        .isLessThan(Duration.ofSeconds(10));
    assertThat(targetAlive()).isTrue();
  }

  @Test
  void theTimeoutAlsoEndsWhatTheCommandLeftInItsProcessGroup() throws Exception {
    // The subshell exits at once: its sleep is the target init's child now, no descendant of the
    // command, but still in the command's process group.
    var r = run(Duration.ofSeconds(1), 100, "sh", "-c", "(sleep 61 &); echo left; sleep 60");
    assertThat(r.timedOut()).isTrue();
    assertThat(r.stdout()).isEqualTo("left\n");
    String left =
        run(Duration.ofSeconds(10), 65536, "sh", "-c", "ps -o args 2>/dev/null || ls /proc")
            .stdout();
    assertThat(left).doesNotContain("sleep 61").doesNotContain("sleep 60");
    assertThat(targetAlive()).isTrue();
    // A daemon (a session of its own, no longer the command's child) is no part of it: it stays.
    var daemon =
        run(Duration.ofSeconds(1), 100, "sh", "-c", "(setsid sleep 62 &); sleep 0.2; sleep 60");
    assertThat(daemon.timedOut()).isTrue();
    assertThat(run(Duration.ofSeconds(10), 65536, "ps", "-o", "args").stdout())
        .contains("sleep 62");
  }

  @Test
  void theCommandRunsInTheCgroupItIsGiven() throws Exception {
    Path cgroup2 = Path.of("/sys/fs/cgroup/unified");
    Assumptions.assumeTrue(
        Files.exists(cgroup2.resolve("cgroup.procs")), "no cgroup2 hierarchy at " + cgroup2);
    Path cgroup =
        Files.createDirectory(cgroup2.resolve("cb-command-test-" + ProcessHandle.current().pid()));
    try {
      var r =
          TargetCommand.run(
              BUSYBOX,
              init,
              cgroup,
              List.of("sh", "-c", "cat /proc/self/cgroup | grep '^0::'"),
              Duration.ofSeconds(10),
              4096);
      assertThat(r.exitCode()).as("stderr: %s", r.stderr()).isZero();
      assertThat(r.stdout()).isEqualTo("0::/" + cgroup.getFileName() + "\n");
    } finally {
      Files.delete(cgroup); // empty again: the command has exited
    }
  }

  @Test
  void malformedCommandsAreRefusedWithTheReason() {
    assertThatThrownBy(() -> TargetCommand.check(List.of()))
        .isInstanceOf(TargetCommand.RefusedException.class)
        .hasMessage("the command is empty");
    assertThatThrownBy(() -> TargetCommand.check(List.of("sh", "a\0b")))
        .hasMessage("argument 1 of the command holds a NUL character");
    assertThatThrownBy(() -> TargetCommand.check(List.of("x".repeat(5000))))
        .hasMessage("argument 0 of the command is 5000 characters; at most 4096");
    assertThatThrownBy(() -> TargetCommand.check(List.of("")))
        .hasMessage("the command's program is empty");
  }
}
