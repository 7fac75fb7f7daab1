package io.chrootbooter.agent.pivot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.sys.LinuxSyscalls;
import io.chrootbooter.agent.trigger.EvdevEvent;
import io.chrootbooter.agent.trigger.TriggerWatchers;
import io.chrootbooter.agent.unpack.Mounts;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.agent.unpack.SquashfsImage;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Enter and return for real: a busybox squashfs root with a tmpfs overlay, booted as PID 1 of a new
 * PID namespace in its own cgroup2, returned by each trigger and against hostile inits. Runs in the
 * test JVM's private mount namespace (src/test/jvm/bin/java); every cgroup, process and mount a
 * test makes is removed in {@code @AfterEach}, even on failure.
 */
class PivotReturnTest {
  private static final int EAGAIN = 11;
  private static Path imageDir;
  private static Path image;

  @TempDir Path temp;
  private Path cgroupParent;
  private StateFiles state;
  private BootController controller;
  private final List<AutoCloseable> closeLast = new ArrayList<>();
  private final ExecutorService triggerThread = Executors.newSingleThreadExecutor();
  private List<String> mountsBefore;

  @BeforeAll
  static void buildImage() throws Exception {
    TestTarget.assumeHost();
    imageDir = Files.createTempDirectory("cb-pivot-image");
    image = TestTarget.build(imageDir);
  }

  @AfterAll
  static void removeImage() throws IOException {
    if (imageDir != null) {
      try (Stream<Path> walk = Files.walk(imageDir)) {
        for (Path p : walk.sorted(Collections.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
  }

  @BeforeEach
  void setUp() throws IOException {
    mountsBefore = TestTarget.mountTable();
    cgroupParent = TestTarget.newCgroup("cb-test");
    state = new StateFiles(temp.resolve("state"));
    controller = TestTarget.controller(cgroupParent, temp, state, OptionalLong.of(512));
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      controller.close();
    } finally {
      triggerThread.shutdownNow();
      for (AutoCloseable c : closeLast) {
        c.close();
      }
      // Whatever a failed test left: kill and remove every cgroup, then unmount below temp.
      if (cgroupParent != null) {
        TestTarget.removeCgroup(cgroupParent);
      }
      List<Path> leaked = new ArrayList<>(Mounts.mountsBelow(temp));
      Collections.reverse(leaked);
      for (Path point : leaked) {
        Mounts.umount(point);
      }
    }
  }

  /** Mounts the image with a tmpfs overlay and boots {@code /sbin/init-NAME}. */
  private long boot(String init, int signal, Duration grace, Duration healthyWithin)
      throws IOException {
    Path console = temp.resolve("console.log");
    Files.writeString(console, "", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    return boot(init, signal, grace, healthyWithin, console);
  }

  /** The same with {@code console} as the target's stdin, stdout and stderr. */
  private long boot(String init, int signal, Duration grace, Duration healthyWithin, Path console)
      throws IOException {
    Path work = Files.createDirectories(temp.resolve("work"));
    Path root = temp.resolve("root");
    SquashfsImage.Mounted mounted = SquashfsImage.mount(image, work, root, new Overlay.Tmpfs());
    TargetSpec spec =
        new TargetSpec(
            root, "/sbin/init-" + init, "http://images.test/" + init, signal, grace, console);
    controller.boot(spec, mounted::close, healthyWithin);
    long pid = Long.parseLong(state.read("pid_in_target").orElseThrow());
    await()
        .atMost(Duration.ofSeconds(20))
        .until(() -> Files.exists(Path.of("/proc", Long.toString(pid), "root/run/booted")));
    return pid;
  }

  private void assertBackInBootstrap(MachinePhase expected) throws Exception {
    assertThat(controller.session()).isEmpty();
    assertThat(controller.phase()).isEqualTo(expected);
    assertThat(state.read("current_phase")).contains(expected.name());
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
  }

  private Path fifo(String name) throws IOException {
    Path fifo = temp.resolve(name);
    new LinuxSyscalls().mknod(fifo, 0010600, 0, 0);
    return fifo;
  }

  private void fireLater(ReturnTrigger trigger, String reason) {
    triggerThread.execute(() -> controller.trigger(trigger, reason));
  }

  @Test
  void entersAsPid1OfANewNamespaceAndReturnsByHotkeyGracefully() throws Exception {
    controller.specChanged(1, true);
    Instant before = Instant.now();
    long pid = boot("friendly", Signals.SIGUSR2, Duration.ofSeconds(10), Duration.ZERO);

    Path proc = Path.of("/proc", Long.toString(pid));
    assertThat(Files.readAllLines(proc.resolve("status")))
        .filteredOn(l -> l.startsWith("NSpid:"))
        .singleElement()
        .satisfies(l -> assertThat(l.split("\\s+")).hasSize(3).endsWith("1"));
    assertThat(Files.readString(proc.resolve("root/etc/marker")))
        .isEqualTo(TestTarget.MARKER + "\n");
    assertThat(Files.readString(proc.resolve("root/proc/1/cmdline")))
        .contains("/sbin/init-friendly");
    for (String ns : List.of("pid", "mnt", "uts", "ipc")) {
      assertThat(Files.readSymbolicLink(proc.resolve("ns/" + ns)))
          .as("%s namespace", ns)
          .isNotEqualTo(Files.readSymbolicLink(Path.of("/proc/self/ns/" + ns)));
    }
    assertThat(Files.readSymbolicLink(proc.resolve("ns/net")))
        .isEqualTo(Files.readSymbolicLink(Path.of("/proc/self/ns/net")));
    assertThat(Files.exists(proc.resolve("root/.bootstrap-return"))).isTrue();
    assertThat(state.read("current_phase")).contains("Running");
    assertThat(state.read("last_image_url")).contains("http://images.test/friendly");
    assertThat(Instant.parse(state.read("boot_time").orElseThrow()))
        .isAfterOrEqualTo(before.minusSeconds(1));

    Path keyboard = fifo("event0");
    closeLast.add(
        0, TriggerWatchers.hotkey(keyboard, () -> fireLater(ReturnTrigger.Hotkey, "Ctrl+Alt+F12")));
    ByteArrayOutputStream keys = new ByteArrayOutputStream();
    keys.write(EvdevEvent.press(EvdevEvent.KEY_F12).encode());
    keys.write(EvdevEvent.release(EvdevEvent.KEY_F12).encode());
    keys.write(EvdevEvent.press(EvdevEvent.KEY_RIGHTCTRL).encode());
    keys.write(EvdevEvent.press(EvdevEvent.KEY_LEFTALT).encode());
    keys.write(EvdevEvent.press(EvdevEvent.KEY_F12).encode());
    try (OutputStream out = Files.newOutputStream(keyboard)) {
      out.write(keys.toByteArray());
    }

    await().atMost(Duration.ofSeconds(20)).until(() -> controller.lastReturn().isPresent());
    LastReturn last = controller.lastReturn().orElseThrow();
    assertThat(last.trigger()).isEqualTo(ReturnTrigger.Hotkey);
    assertThat(last.reason()).isEqualTo("Ctrl+Alt+F12");
    assertThat(last.forced()).as("friendly init exits on SIGUSR2").isFalse();
    assertThat(last.initExit()).isEqualTo("exit 0");
    assertThat(last.duration()).isPositive();
    assertBackInBootstrap(MachinePhase.ConsoleOverride);

    assertThat(controller.resume()).as("spec still names an image").isTrue();
    assertThat(controller.phase()).isEqualTo(MachinePhase.Bootstrap);
  }

  /**
   * In the bootstrap the agent runs with {@code oom_score_adj} -1000 (src/bootstrap/agent-cgroup),
   * and its children inherit it: no process of the target may keep it, or the kernel's OOM killer,
   * out of other choices, would kill the agent or nothing. The test JVM plays the agent; without
   * CAP_SYS_RESOURCE (some container hosts drop it) it cannot lower its own value and raises it
   * instead, which the target must not keep either.
   */
  @Test
  void noProcessOfTheTargetKeepsTheAgentsShieldFromTheOomKiller() throws Exception {
    Path adj = Path.of("/proc/self/oom_score_adj");
    String own = Files.readString(adj).strip();
    String agent = "-1000";
    try {
      Files.writeString(adj, agent);
    } catch (IOException noCapSysResource) {
      agent = "700";
      Files.writeString(adj, agent);
    }
    try {
      long pid = boot("forkbomb", Signals.SIGUSR2, Duration.ZERO, Duration.ZERO);
      List<Long> pids = new ArrayList<>();
      try (Stream<Path> walk = Files.walk(cgroupParent)) {
        for (Path procs : walk.filter(p -> p.endsWith("cgroup.procs")).toList()) {
          Files.readAllLines(procs).forEach(l -> pids.add(Long.parseLong(l.strip())));
        }
      }
      assertThat(pids).as("the target's processes").contains(pid).hasSizeGreaterThan(100);
      for (long p : pids) {
        assertThat(Files.readString(Path.of("/proc", Long.toString(p), "oom_score_adj")).strip())
            .as("oom_score_adj of process %d of the target", p)
            .isEqualTo("0");
      }
      assertThat(Files.readString(adj).strip()).as("the agent's").isEqualTo(agent);
      controller.trigger(ReturnTrigger.Console, "done").orElseThrow();
      assertBackInBootstrap(MachinePhase.Bootstrap);
    } finally {
      Files.writeString(adj, own);
    }
  }

  @Test
  void serialMagicLineForcesADeafInitOut() throws Exception {
    controller.specChanged(1, true);
    long pid = boot("deaf", Signals.SIGTERM, Duration.ofMillis(200), Duration.ZERO);
    Path serial = fifo("ttyS1");
    long[] triggeredAt = new long[1];
    closeLast.add(
        0,
        TriggerWatchers.serial(
            serial,
            "RETURN_TO_BOOTSTRAP",
            () -> {
              triggeredAt[0] = System.nanoTime();
              fireLater(ReturnTrigger.Serial, "RETURN_TO_BOOTSTRAP on ttyS1");
            }));
    try (OutputStream out = Files.newOutputStream(serial)) {
      out.write(
          "noise RETURN_TO_BOOTSTRAP\r\nRETURN_TO_BOOTSTRAPX\n".getBytes(StandardCharsets.UTF_8));
      out.flush();
      out.write("RETURN_TO_BOOTSTRAP\r\n".getBytes(StandardCharsets.UTF_8));
    }

    await().atMost(Duration.ofSeconds(20)).until(() -> controller.lastReturn().isPresent());
    long readyNanos = System.nanoTime();
    LastReturn last = controller.lastReturn().orElseThrow();
    assertThat(last.trigger()).isEqualTo(ReturnTrigger.Serial);
    assertThat(last.forced()).as("the deaf init ignores SIGTERM").isTrue();
    assertThat(last.initExit()).startsWith("signal 9");
    assertThat(Files.exists(Path.of("/proc", Long.toString(pid)))).isFalse();
    assertBackInBootstrap(MachinePhase.ConsoleOverride);
    System.out.printf(
        "forced return (serial trigger, 200 ms grace): lastReturn.duration %d ms, of which %d ms"
            + " after the grace period; trigger to observed %d ms%n",
        last.duration().toMillis(),
        last.duration().toMillis() - 200,
        (readyNanos - triggeredAt[0]) / 1_000_000);
  }

  @Test
  void helperInsideTheTargetReturnsWithItsReason() throws Exception {
    controller.specChanged(1, true);
    long pid = boot("helper", Signals.SIGTERM, Duration.ofMillis(200), Duration.ZERO);
    Files.writeString(Path.of("/proc", Long.toString(pid), "root/run/go"), "");

    await().atMost(Duration.ofSeconds(20)).until(() -> controller.lastReturn().isPresent());
    LastReturn last = controller.lastReturn().orElseThrow();
    assertThat(last.trigger()).isEqualTo(ReturnTrigger.Helper);
    assertThat(last.reason()).isEqualTo("please go back");
    assertBackInBootstrap(MachinePhase.ConsoleOverride);
  }

  @Test
  void forkBombIsKilledWithItsWholeCgroup() throws Exception {
    long pid = boot("forkbomb", Signals.SIGTERM, Duration.ofMillis(100), Duration.ZERO);
    Path cgroup;
    try (Stream<Path> children = Files.list(cgroupParent)) {
      cgroup = children.filter(Files::isDirectory).findFirst().orElseThrow();
    }
    assertThat(Files.readAllLines(cgroup.resolve("cgroup.procs")).size())
        .as("processes of the fork bomb")
        .isGreaterThan(150);

    LastReturn last = controller.trigger(ReturnTrigger.Console, "return").orElseThrow();
    assertThat(last.forced()).isTrue();
    assertThat(Files.exists(Path.of("/proc", Long.toString(pid)))).isFalse();
    assertBackInBootstrap(MachinePhase.Bootstrap);
  }

  @Test
  void specChangeReturnsFromATargetHoldingFilesAndItsOwnMountNamespace() throws Exception {
    controller.specChanged(1, true);
    long pid = boot("holder", Signals.SIGTERM, Duration.ofMillis(100), Duration.ZERO);
    assertThat(Files.readString(Path.of("/proc", Long.toString(pid), "root/run/held"))).isEmpty();

    assertThat(controller.specChanged(2, true)).as("the new generation is to be booted").isTrue();
    LastReturn last = controller.lastReturn().orElseThrow();
    assertThat(last.trigger()).isEqualTo(ReturnTrigger.SpecChange);
    assertBackInBootstrap(MachinePhase.Bootstrap);
  }

  @ParameterizedTest(name = "[{index}] {0} -f")
  @CsvSource({"reboot,signal 1 ", "poweroff,signal 2 "})
  void rebootOrPoweroffInsideTheTargetEndsOnlyItsNamespace(String command, String initExit)
      throws Exception {
    long pid = boot("rebooter", Signals.SIGTERM, Duration.ofSeconds(10), Duration.ZERO);
    Files.writeString(Path.of("/proc", Long.toString(pid), "root/run/go"), command + "\n");

    await().atMost(Duration.ofSeconds(20)).until(() -> controller.lastReturn().isPresent());
    LastReturn last = controller.lastReturn().orElseThrow();
    assertThat(last.trigger()).isEqualTo(ReturnTrigger.TargetExit);
    assertThat(last.initExit())
        .as("pid_namespaces(7): reboot ends the namespace init by SIGHUP, power-off by SIGINT")
        .startsWith(initExit);
    assertBackInBootstrap(MachinePhase.Bootstrap);
  }

  /**
   * A target that wrecks its console (a pty, as the bootstrap's serial console is a terminal): raw
   * mode, no echo, output stopped by ^S typed at the console, a line typed to it left unread. After
   * the return the console has exactly the settings it had before the boot, including the
   * bootstrap's own (erase ^H, iutf8: {@code stty sane} would reset those), output flows again, and
   * the unread line is not handed to the bootstrap's shell.
   */
  @Test
  void aTargetThatLeavesTheConsoleRawAndStoppedGetsItBackAsItWas() throws Exception {
    try (Pty console = Pty.open()) {
      TestTarget.run("stty", "-F", console.slave().toString(), "erase", "^H", "iutf8");
      String before = stty(console);
      assertThat(before).contains("erase = ^H").contains(" iutf8").contains(" icanon");
      controller.specChanged(1, true);
      boot("rawconsole", Signals.SIGTERM, Duration.ofMillis(200), Duration.ZERO, console.slave());

      assertThat(List.of(stty(console).split("[\\s;]+")))
          .as("the target's stty raw -echo ixon took effect")
          .contains("-icanon", "-echo", "-isig", "-opost", "ixon");
      console.type("load http://images.test/typed-to-the-target\n");
      console.type("\u0013");
      await() // the line discipline takes typed bytes on a kernel worker
          .atMost(Duration.ofSeconds(5))
          .untilAsserted(
              () ->
                  assertThat(console.print("."))
                      .as("^S stopped the console's output")
                      .contains(EAGAIN));

      LastReturn last = controller.trigger(ReturnTrigger.Hotkey, "Ctrl+Alt+F12").orElseThrow();
      assertThat(last.forced()).as("the target ignores SIGTERM").isTrue();
      assertBackInBootstrap(MachinePhase.ConsoleOverride);

      assertThat(stty(console)).as("stty -a after the return").isEqualTo(before);
      assertThat(console.pendingInput()).as("input left unread by the target").isEmpty();
      assertThat(console.print("bootstrap> ")).as("writing to the console").isEmpty();
      await()
          .atMost(Duration.ofSeconds(5))
          .untilAsserted(() -> assertThat(console.text()).contains("bootstrap> "));
    }
  }

  private static String stty(Pty console) throws Exception {
    return TestTarget.run("stty", "-a", "-F", console.slave().toString());
  }

  @Test
  void aTargetThatRemovesItsHelperIsStillReturned() throws Exception {
    controller.specChanged(1, true);
    long pid = boot("saboteur", Signals.SIGTERM, Duration.ofMillis(100), Duration.ZERO);
    assertThat(Files.exists(Path.of("/proc", Long.toString(pid), "root/.bootstrap-return")))
        .isFalse();

    LastReturn last = controller.trigger(ReturnTrigger.Console, "return").orElseThrow();
    assertThat(last.forced()).isTrue();
    assertBackInBootstrap(MachinePhase.ConsoleOverride);
  }

  @Test
  void aHealthyReportFromTheHelperCancelsTheBootTimeout() throws Exception {
    boot("healthy", Signals.SIGUSR2, Duration.ofSeconds(10), Duration.ofMillis(300));

    await()
        .during(Duration.ofMillis(1000))
        .atMost(Duration.ofSeconds(5))
        .until(() -> controller.session().isPresent());
    assertThat(controller.lastReturn()).isEmpty();
    assertThat(controller.session().orElseThrow().healthy())
        .as("what the agent's status reports as healthy")
        .isTrue();
    LastReturn last = controller.trigger(ReturnTrigger.Console, "done").orElseThrow();
    assertThat(last.forced()).isFalse();
    assertBackInBootstrap(MachinePhase.Bootstrap);
  }

  @Test
  void bootTimeoutReturnsATargetThatNeverReportsHealthy() throws Exception {
    controller.specChanged(1, true);
    boot("friendly", Signals.SIGUSR2, Duration.ofSeconds(10), Duration.ofMillis(300));

    await().atMost(Duration.ofSeconds(20)).until(() -> controller.lastReturn().isPresent());
    LastReturn last = controller.lastReturn().orElseThrow();
    assertThat(last.trigger()).isEqualTo(ReturnTrigger.BootTimeout);
    assertThat(last.reason()).isEqualTo("not healthy within 300 ms");
    assertBackInBootstrap(MachinePhase.Bootstrap);
  }

  private static long memAvailableKb() throws IOException {
    return meminfo("MemAvailable:");
  }

  private static long meminfo(String key) throws IOException {
    return Files.readAllLines(Path.of("/proc/meminfo")).stream()
        .filter(l -> l.startsWith(key))
        .mapToLong(l -> Long.parseLong(l.replaceAll("[^0-9]", "")))
        .findFirst()
        .orElseThrow();
  }

  private static long openFds() throws IOException {
    try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
      return fds.count();
    }
  }

  /**
   * 100 load/return cycles leave nothing behind: mounts, loop devices, cgroups, processes, open
   * file descriptors, and RAM (MemAvailable within 5 % of MemTotal: the machine is shared, so the
   * bound is loose, but a leaked tmpfs or namespace per cycle would still exceed it). The baseline
   * is taken after one warm-up cycle, so class loading does not count as a leak.
   */
  @Test
  void hundredCyclesLeakNothing() throws Exception {
    boot("friendly", Signals.SIGUSR2, Duration.ZERO, Duration.ZERO);
    controller.trigger(ReturnTrigger.Console, "warm-up").orElseThrow();
    assertBackInBootstrap(MachinePhase.Bootstrap);
    long fds = openFds();
    long mem = memAvailableKb();
    long[] returnMs = new long[100];
    for (int i = 0; i < returnMs.length; i++) {
      boot("friendly", Signals.SIGUSR2, Duration.ZERO, Duration.ZERO);
      LastReturn last = controller.trigger(ReturnTrigger.Console, "cycle " + i).orElseThrow();
      assertThat(last.forced()).isTrue();
      returnMs[i] = last.duration().toMillis();
    }
    assertBackInBootstrap(MachinePhase.Bootstrap);
    assertThat(ProcessHandle.current().descendants().filter(ProcessHandle::isAlive))
        .as("processes left by the cycles")
        .isEmpty();
    assertThat(openFds())
        .as("open fds after 100 cycles (before: %d)", fds)
        .isLessThanOrEqualTo(fds + 5);
    assertThat(memAvailableKb())
        .as("MemAvailable kB after 100 cycles (before: %d)", mem)
        .isGreaterThan(mem - meminfo("MemTotal:") / 20);
    java.util.Arrays.sort(returnMs);
    System.out.printf(
        "100 forced returns: p50 %d ms, p99 %d ms, max %d ms%n",
        returnMs[49], returnMs[98], returnMs[99]);
  }
}
