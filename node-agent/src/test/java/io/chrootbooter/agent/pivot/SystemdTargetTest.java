package io.chrootbooter.agent.pivot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.unpack.Mounts;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.agent.unpack.SquashfsImage;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real Debian 12 systemd root (e2e/lab/images/debian.sh) booted as a target: systemd is PID 1 of
 * the new PID namespace, in its own cgroup namespace rooted at the target's payload cgroup, reaches
 * multi-user.target with no failed unit, reports healthy through {@code /.bootstrap-return}, and
 * powers off on SIGRTMIN+4 within the grace period, leaving no mount, cgroup or process behind.
 *
 * <p>The console is a pseudo-terminal, as the bootstrap's serial console is a terminal: systemd
 * writes its status lines and the getty its prompt to {@code /dev/console}, which the enter step
 * binds to the target's console. Same setup and teardown as {@link PivotReturnTest}.
 */
class SystemdTargetTest {
  private static final Duration GRACE = Duration.ofSeconds(10);
  private static final Duration BOOT_LIMIT = Duration.ofSeconds(120);

  private static Path image;

  @TempDir Path temp;
  private Path cgroupParent;
  private StateFiles state;
  private BootController controller;
  private Pty console;
  private List<String> mountsBefore;

  @BeforeAll
  static void buildImage() throws Exception {
    TestTarget.assumeHost();
    image = DebianImage.get();
  }

  @BeforeEach
  void setUp() throws IOException {
    mountsBefore = TestTarget.mountTable();
    cgroupParent = TestTarget.newCgroup("cb-systemd-test");
    state = new StateFiles(temp.resolve("state"));
    controller = TestTarget.controller(cgroupParent, temp, state, OptionalLong.empty());
    console = Pty.open();
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      controller.close();
    } finally {
      try {
        // Whatever a failed test left: kill every cgroup below the parent, then remove them.
        if (cgroupParent != null) {
          TestTarget.removeCgroup(cgroupParent);
        }
        List<Path> leaked = new ArrayList<>(Mounts.mountsBelow(temp));
        Collections.reverse(leaked);
        for (Path point : leaked) {
          Mounts.umount(point);
        }
      } finally {
        if (console != null) {
          console.close();
          // What the target printed, for a look after a failure.
          Path log =
              Path.of(System.getProperty("user.dir"), "target", "systemd-target-console.log");
          Files.createDirectories(log.getParent());
          Files.write(log, console.output());
        }
      }
    }
  }

  /** Mounts the image with a tmpfs overlay and boots its /sbin/init (systemd). */
  private long boot() throws IOException {
    return boot(Confinement.Machine);
  }

  private long boot(Confinement confinement) throws IOException {
    Path work = Files.createDirectories(temp.resolve("work"));
    Path root = temp.resolve("root");
    SquashfsImage.Mounted mounted = SquashfsImage.mount(image, work, root, new Overlay.Tmpfs());
    TargetSpec spec =
        new TargetSpec(
            root,
            TargetSpec.DEFAULT_INIT,
            image.toUri().toString(),
            Signals.SIGRTMIN + 4,
            GRACE,
            console.slave(),
            confinement,
            List.of());
    controller.boot(spec, mounted::close, BOOT_LIMIT);
    return Long.parseLong(state.read("pid_in_target").orElseThrow());
  }

  /** Runs {@code command} inside every namespace of the target (nsenter(1)); its stdout. */
  private static String inTarget(long pid, Duration timeout, String... command)
      throws IOException, InterruptedException {
    List<String> argv = new ArrayList<>(List.of("nsenter", "-t", Long.toString(pid), "-a", "--"));
    argv.addAll(List.of(command));
    Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Thread pump =
        new Thread(
            () -> {
              try {
                p.getInputStream().transferTo(out);
              } catch (IOException e) {
                // the process is gone
              }
            });
    pump.start();
    if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      p.destroyForcibly().waitFor();
    }
    pump.join();
    return out.toString(StandardCharsets.UTF_8).strip();
  }

  private void assertBackInBootstrap() throws Exception {
    assertThat(controller.session()).isEmpty();
    assertThat(controller.phase()).isEqualTo(MachinePhase.Bootstrap);
    assertThat(state.read("pid_in_target")).contains("");
    try (Stream<Path> cgroups = Files.list(cgroupParent)) {
      assertThat(cgroups.filter(Files::isDirectory)).as("cgroups left").isEmpty();
    }
    assertThat(TestTarget.mountTable()).as("mounts after return").isEqualTo(mountsBefore);
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(TestTarget.run("losetup", "-j", image.toString())).isBlank());
    try (Stream<Path> staging = Files.list(temp.resolve("staging"))) {
      assertThat(staging).as("staging left").isEmpty();
    }
    assertThat(ProcessHandle.current().descendants().filter(ProcessHandle::isAlive))
        .as("processes left")
        .isEmpty();
  }

  @Test
  void debianBootsToMultiUserWithSystemdAsPid1AndPowersOffGracefully() throws Exception {
    long start = System.nanoTime();
    long pid = boot();
    long entered = System.nanoTime();

    Path proc = Path.of("/proc", Long.toString(pid));
    // The enter step reports ready just before it execs the init.
    await()
        .atMost(Duration.ofSeconds(10))
        .pollInterval(Duration.ofMillis(5))
        .untilAsserted(
            () ->
                assertThat(Files.readSymbolicLink(proc.resolve("exe")).toString())
                    .as("/sbin/init of the image is systemd")
                    .endsWith("/lib/systemd/systemd"));
    assertThat(Files.readAllLines(proc.resolve("status")))
        .filteredOn(l -> l.startsWith("NSpid:"))
        .singleElement()
        .satisfies(l -> assertThat(l.split("\\s+")).hasSize(3).endsWith("1"));
    for (String ns : List.of("pid", "mnt", "uts", "ipc", "cgroup")) {
      assertThat(Files.readSymbolicLink(proc.resolve("ns/" + ns)))
          .as("%s namespace", ns)
          .isNotEqualTo(Files.readSymbolicLink(Path.of("/proc/self/ns/" + ns)));
    }
    assertThat(Files.readString(proc.resolve("environ"))).contains("container=chrootbooter");

    // systemctl talks to systemd over /run/systemd/private, which systemd makes once it runs.
    await()
        .atMost(BOOT_LIMIT)
        .pollInterval(Duration.ofMillis(20))
        .until(() -> Files.exists(proc.resolve("root/run/systemd/private")));
    String running = inTarget(pid, BOOT_LIMIT, "/bin/systemctl", "is-system-running", "--wait");
    long multiUser = System.nanoTime();
    assertThat(running)
        .as(
            "systemctl is-system-running; failed units: %s",
            inTarget(pid, Duration.ofSeconds(10), "/bin/systemctl", "--failed", "--no-legend"))
        .isEqualTo("running");
    assertThat(
            inTarget(
                pid, Duration.ofSeconds(10), "/bin/systemctl", "is-active", "multi-user.target"))
        .isEqualTo("active");
    assertThat(
            inTarget(
                pid,
                Duration.ofSeconds(10),
                "/bin/systemctl",
                "show",
                "-p",
                "ActiveState,Result,ExecMainStatus",
                "chrootbooter-healthy.service"))
        .as("/.bootstrap-return --healthy ran and reached the agent's FIFO")
        .contains("ActiveState=active", "Result=success", "ExecMainStatus=0");
    assertThat(controller.lastReturn()).as("no boot timeout: the healthy report came").isEmpty();
    assertThat(inTarget(pid, Duration.ofSeconds(10), "/bin/cat", "/proc/1/cgroup"))
        .as("systemd sees the target's cgroup as its root")
        .endsWith("0::/init.scope");
    assertThat(inTarget(pid, Duration.ofSeconds(10), "/bin/hostname"))
        .isEqualTo("chrootbooter-debian");
    assertThat(Files.readString(proc.resolve("root/etc/os-release")))
        .contains("ID=debian", "VERSION_ID=\"12\"");
    String analyze = inTarget(pid, Duration.ofSeconds(10), "/usr/bin/systemd-analyze", "time");
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> console.text().contains("Multi-User System"));

    long before = System.nanoTime();
    LastReturn last = controller.trigger(ReturnTrigger.Console, "poweroff").orElseThrow();
    long returned = System.nanoTime();
    assertThat(last.forced()).as("systemd powers off within %s", GRACE).isFalse();
    assertThat(last.initExit())
        .as("poweroff(2) inside the PID namespace ends its init by SIGINT")
        .startsWith("signal 2 ");
    assertThat(Files.exists(proc)).isFalse();
    assertBackInBootstrap();
    assertThat(console.text()).contains("Powering off.");

    System.out.printf(
        "systemd target: enter %d ms; is-system-running=running %d ms after boot(); %s;"
            + " graceful return (SIGRTMIN+4) %d ms (lastReturn.duration %d ms)%n",
        (entered - start) / 1_000_000,
        (multiUser - start) / 1_000_000,
        analyze.lines().findFirst().orElse("").strip(),
        (returned - before) / 1_000_000,
        last.duration().toMillis());
  }

  /**
   * The same image {@link Confinement#Confined}: systemd still reaches multi-user.target with no
   * failed unit and reports healthy, without the capabilities the bounding set lacks, under the
   * seccomp filter, with a private {@code /dev} and read-only {@code /proc/sys} and {@code /sys}
   * (systemd skips what needs them, as in a container); a power-off still ends it gracefully.
   */
  @Test
  void debianReachesMultiUserConfined() throws Exception {
    long start = System.nanoTime();
    long pid = boot(Confinement.Confined);
    Path proc = Path.of("/proc", Long.toString(pid));
    await()
        .atMost(BOOT_LIMIT)
        .pollInterval(Duration.ofMillis(20))
        .until(() -> Files.exists(proc.resolve("root/run/systemd/private")));
    String running = inTarget(pid, BOOT_LIMIT, "/bin/systemctl", "is-system-running", "--wait");
    long multiUser = System.nanoTime();
    assertThat(running)
        .as(
            "systemctl is-system-running; failed units: %s",
            inTarget(pid, Duration.ofSeconds(10), "/bin/systemctl", "--failed", "--no-legend"))
        .isEqualTo("running");
    assertThat(
            inTarget(
                pid, Duration.ofSeconds(10), "/bin/systemctl", "is-active", "multi-user.target"))
        .isEqualTo("active");
    assertThat(
            inTarget(
                pid,
                Duration.ofSeconds(10),
                "/bin/systemctl",
                "show",
                "-p",
                "ActiveState,Result",
                "chrootbooter-healthy.service"))
        .contains("ActiveState=active", "Result=success");
    List<String> status = Files.readAllLines(proc.resolve("status"));
    long capBnd =
        Long.parseUnsignedLong(
            status.stream()
                .filter(l -> l.startsWith("CapBnd:"))
                .findFirst()
                .orElseThrow()
                .substring(7)
                .strip(),
            16);
    assertThat(capBnd & io.chrootbooter.agent.confine.BoundingSet.mask())
        .as("systemd's bounding set lacks the dropped capabilities")
        .isZero();
    assertThat(status).contains("Seccomp:\t2");
    assertThat(inTarget(pid, Duration.ofSeconds(10), "/bin/ls", "/dev"))
        .as("no disk in the private /dev")
        .doesNotContain("loop", "sda", "vda");

    LastReturn last = controller.trigger(ReturnTrigger.Console, "poweroff").orElseThrow();
    assertThat(last.forced()).as("systemd powers off within %s", GRACE).isFalse();
    assertBackInBootstrap();
    System.out.printf(
        "Confined systemd target: is-system-running=running %d ms after boot(); graceful return"
            + " %d ms, init %s%n",
        (multiUser - start) / 1_000_000, last.duration().toMillis(), last.initExit());
  }

  private static long openFds() throws IOException {
    try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
      return fds.count();
    }
  }

  /**
   * Five boots to multi-user and graceful returns in a row: every return is graceful, and the
   * cycles leave no mount, loop device, cgroup, process or open file descriptor behind.
   */
  @Test
  void fiveBootsAndPowerOffsLeakNothing() throws Exception {
    long fds = -1;
    long[] bootMs = new long[5];
    long[] returnMs = new long[5];
    for (int i = 0; i < bootMs.length; i++) {
      long start = System.nanoTime();
      long pid = boot();
      Path proc = Path.of("/proc", Long.toString(pid));
      await()
          .atMost(BOOT_LIMIT)
          .pollInterval(Duration.ofMillis(20))
          .until(() -> Files.exists(proc.resolve("root/run/systemd/private")));
      assertThat(inTarget(pid, BOOT_LIMIT, "/bin/systemctl", "is-system-running", "--wait"))
          .as("cycle %d", i)
          .isEqualTo("running");
      bootMs[i] = (System.nanoTime() - start) / 1_000_000;
      LastReturn last = controller.trigger(ReturnTrigger.Console, "cycle " + i).orElseThrow();
      assertThat(last.forced()).as("cycle %d forced", i).isFalse();
      returnMs[i] = last.duration().toMillis();
      assertBackInBootstrap();
      if (i == 0) {
        fds = openFds(); // after one cycle, so that class loading does not count
      }
    }
    assertThat(openFds())
        .as("open fds after the cycles (after the first: %d)", fds)
        .isLessThanOrEqualTo(fds + 5);
    Arrays.sort(bootMs);
    Arrays.sort(returnMs);
    System.out.printf(
        "5 systemd cycles: boot() to is-system-running=running median %d ms (max %d);"
            + " graceful return median %d ms (max %d)%n",
        bootMs[2], bootMs[4], returnMs[2], returnMs[4]);
  }
}
