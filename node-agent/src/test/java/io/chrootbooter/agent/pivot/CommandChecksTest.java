package io.chrootbooter.agent.pivot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.agent.unpack.SquashfsImage;
import io.chrootbooter.protocol.ReturnTrigger;
import io.chrootbooter.protocol.TestCommand;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A BootTest's commands as the agent runs them: a real busybox target (squashfs root, tmpfs
 * overlay, PID 1 of its own namespaces in its own cgroup2) booted by the agent's {@link
 * BootController}, the commands started by {@link CommandChecks} once it reports healthy. Every
 * target, cgroup and mount is removed after each test, even on failure.
 */
class CommandChecksTest {
  private static Path imageDir;
  private static Path image;

  @TempDir Path temp;
  private Path cgroupParent;
  private StateFiles state;
  private BootController controller;
  private CommandChecks checks;
  private final AtomicInteger reports = new AtomicInteger();

  @BeforeAll
  static void buildImage() throws Exception {
    TestTarget.assumeHost();
    imageDir = Files.createTempDirectory("cb-command-image");
    // Reports healthy after a moment, so that the commands wait for it.
    image =
        TestTarget.build(
            imageDir,
            Map.of(
                "slow-healthy",
                """
                trap 'exit 0' USR2
                echo ok > /run/booted
                sleep 1
                echo up > /run/up
                /.bootstrap-return --healthy
                while :; do sleep 1 & wait $!; done
                """));
  }

  @AfterAll
  static void removeImage() throws IOException {
    TestTarget.deleteTree(imageDir);
  }

  @BeforeEach
  void setUp() throws IOException {
    cgroupParent = TestTarget.newCgroup("cb-cmdtest");
    state = new StateFiles(temp.resolve("state"));
    controller = TestTarget.controller(cgroupParent, temp, state, OptionalLong.of(512));
    checks = new CommandChecks(TestTarget.BUSYBOX, reports::incrementAndGet);
    // As the agent does: every change of the target may be its healthy report.
    controller.onChange(() -> checks.poke(controller.session()));
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (controller != null) {
        controller.close();
      }
    } finally {
      if (cgroupParent != null) {
        TestTarget.removeCgroup(cgroupParent);
      }
      TestTarget.umountAllBelow(temp);
    }
  }

  private TargetSession boot(String init, List<TestCommand> commands) throws IOException {
    Path work = Files.createDirectories(temp.resolve("work"));
    Path root = temp.resolve("root");
    SquashfsImage.Mounted mounted = SquashfsImage.mount(image, work, root, new Overlay.Tmpfs());
    Path console = Files.writeString(temp.resolve("console.log"), "");
    controller.boot(TestTarget.spec(root, init, console), mounted::close, Duration.ZERO);
    TargetSession session = controller.session().orElseThrow();
    checks.booted(session, commands);
    checks.poke(controller.session());
    return session;
  }

  private static TestCommand command(String name, String timeout, String... run) {
    return new TestCommand(name, List.of(run), timeout);
  }

  @Test
  void theCommandsRunInOrderInTheTargetOnceItIsHealthyAndReportWhatTheyDid() throws Exception {
    TargetSession session =
        boot(
            "slow-healthy",
            List.of(
                command("up", null, "cat", "/run/up"),
                command("fails", "10s", "sh", "-c", "echo partial; echo broken >&2; exit 3"),
                command(
                    "where",
                    "10s",
                    "sh",
                    "-c",
                    "cat /etc/marker; /bin/busybox grep '^0::' /proc/self/cgroup"),
                command(
                    "chatty",
                    "10s",
                    "/bin/busybox",
                    "sh",
                    "-c",
                    "busybox yes | busybox head -c 10000"),
                command("slow", "500ms", "sh", "-c", "echo begun; sleep 60"),
                command("daemon", "10s", "sh", "-c", "sleep 300 & echo started"),
                command("refused", "10s", "a\0b"),
                command("absurd", "2h", "true")));

    await().atMost(Duration.ofSeconds(30)).until(() -> checks.results(session).size() == 8);
    List<TestCommand.Result> r = checks.results(session);
    assertThat(r)
        .extracting(TestCommand.Result::name)
        .containsExactly("up", "fails", "where", "chatty", "slow", "daemon", "refused", "absurd");

    // Run only once the target was healthy: /run/up is written just before it says so.
    assertThat(r.get(0).exitCode()).as("stderr: %s", r.get(0).stderr()).isZero();
    assertThat(r.get(0).stdout()).isEqualTo("up\n");

    assertThat(r.get(1).exitCode()).isEqualTo(3);
    assertThat(r.get(1).stdout()).isEqualTo("partial\n");
    assertThat(r.get(1).stderr()).isEqualTo("broken\n");
    assertThat(r.get(1).timedOut()).isFalse();
    assertThat(r.get(1).truncated()).isFalse();

    // Inside the target's root, its processes in the target's cgroup (the supervisor's).
    assertThat(r.get(2).stdout())
        .startsWith(TestTarget.MARKER + "\n0::/")
        .contains("/" + cgroupParent.getFileName() + "/")
        .endsWith(
            "/"
                + session.target().commandCgroup().getParent().getFileName()
                + "/"
                + Cgroup.SUPERVISOR
                + "\n");

    assertThat(r.get(3).stdout()).hasSize(TestCommand.MAX_OUTPUT_BYTES).startsWith("y\ny\n");
    assertThat(r.get(3).truncated()).isTrue();
    assertThat(r.get(3).exitCode()).isZero();

    assertThat(r.get(4).timedOut()).isTrue();
    assertThat(r.get(4).exitCode()).isNull();
    assertThat(r.get(4).stdout()).isEqualTo("begun\n");
    assertThat(r.get(4).durationMillis()).isLessThan(5000L);

    assertThat(r.get(5).exitCode()).isZero();
    assertThat(r.get(5).stdout()).isEqualTo("started\n");
    assertThat(r.get(5).durationMillis())
        .as("the daemon holds the output pipes; the command is done without it")
        .isLessThan(5000L);

    assertThat(r.get(6).error()).isEqualTo("argument 0 of the command holds a NUL character");
    assertThat(r.get(6).exitCode()).isNull();
    assertThat(r.get(7).error()).isEqualTo("timeout: 2h is not between 1ms and 1h");

    // The timeout ended its command only: the target runs on.
    assertThat(session.target().alive()).isTrue();
    assertThat(controller.session()).contains(session);
    assertThat(reports.get()).as("a status report after each result").isGreaterThanOrEqualTo(8);

    // The return ends the target with whatever its commands left (the daemon).
    controller.trigger(ReturnTrigger.Console, "done");
    assertThat(session.target().alive()).isFalse();
  }

  @Test
  void aTargetThatNeverReportsHealthyRunsNothing() throws Exception {
    TargetSession session = boot("friendly", List.of(command("never", "10s", "true")));
    await()
        .during(Duration.ofSeconds(2))
        .atMost(Duration.ofSeconds(5))
        .until(() -> checks.results(session).isEmpty());
    assertThat(session.healthy()).isFalse();
  }

  @Test
  void theReportCarriesAtMostTheBudgetOfOutputTheFirstResultsWhole() {
    String big = "x".repeat(4096);
    List<TestCommand.Result> all =
        List.of(
            new TestCommand.Result("a", 0, false, big, big, false, 1L, null),
            new TestCommand.Result("b", 0, false, big, "", false, 1L, null),
            new TestCommand.Result("c", 0, false, "short", "err", false, 1L, null));
    List<TestCommand.Result> cut = CommandChecks.withinBudget(all, 10_000);
    assertThat(cut.get(0)).isEqualTo(all.get(0));
    assertThat(cut.get(1).stdout()).hasSize(10_000 - 8192);
    assertThat(cut.get(1).truncated()).isTrue();
    assertThat(cut.get(2).stdout()).isEmpty();
    assertThat(cut.get(2).stderr()).isEmpty();
    assertThat(cut.get(2).truncated()).isTrue();
    assertThat(cut.get(2).exitCode()).isZero();
  }
}
