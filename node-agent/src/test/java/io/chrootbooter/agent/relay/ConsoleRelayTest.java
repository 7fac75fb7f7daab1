package io.chrootbooter.agent.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.pivot.BootController;
import io.chrootbooter.agent.pivot.StateFiles;
import io.chrootbooter.agent.pivot.TestTarget;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.agent.unpack.SquashfsImage;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The console relay for real: a busybox target booted in its own namespaces, its {@code
 * /dev/console} and {@code /dev/ttyS0} pty slaves the relay owns, and two pty pairs standing in for
 * the machine's real console and serial line. Every target, relay, mount and cgroup a test makes is
 * removed in {@code @AfterEach}, even on failure.
 */
class ConsoleRelayTest {
  private static final String MARKER = "cb-relay-" + UUID.randomUUID();
  private static final long HUNDRED_MB = 100_000_000L;

  private static final Map<String, String> INITS =
      Map.of(
          "talker",
          """
          trap 'exit 0' USR2
          echo "hello on the console"
          echo "hello on ttyS0" > /dev/ttyS0
          echo ok > /run/booted
          read -r line
          echo "target read: $line"
          echo "$line" > /run/typed
          while :; do sleep 1 & wait $!; done
          """,
          "flood",
          """
          trap 'exit 0' USR2
          echo ok > /run/booted
          /bin/busybox head -c %d /dev/zero | /bin/busybox tr '\\0' x
          echo ok > /run/flooded
          while :; do sleep 1 & wait $!; done
          """
              .formatted(HUNDRED_MB),
          "warner",
          """
          trap 'exit 0' USR2
          echo ok > /run/booted
          echo "<4>WARNING: CPU: 0 PID: 1 at %s" > /dev/kmsg
          echo "<6>%s an ordinary line" > /dev/kmsg
          while :; do sleep 1 & wait $!; done
          """
              .formatted(MARKER, MARKER));

  private static Path imageDir;
  private static Path image;

  @TempDir Path temp;
  private Path cgroupParent;
  private StateFiles state;
  private BootController controller;
  private StandIn console;
  private StandIn serial;
  private final List<String> warnings = new CopyOnWriteArrayList<>();

  @BeforeAll
  static void buildImage() throws Exception {
    TestTarget.assumeHost();
    imageDir = Files.createTempDirectory("cb-relay-image");
    image = TestTarget.build(imageDir, INITS);
  }

  @AfterAll
  static void removeImage() throws IOException {
    TestTarget.deleteTree(imageDir);
  }

  @BeforeEach
  void setUp() throws IOException {
    cgroupParent = TestTarget.newCgroup("cb-relay");
    state = new StateFiles(temp.resolve("state"));
    controller = TestTarget.controller(cgroupParent, temp, state, OptionalLong.of(512));
    console = StandIn.open();
    serial = StandIn.open();
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      controller.close();
    } finally {
      console.close();
      serial.close();
      TestTarget.removeCgroup(cgroupParent);
      TestTarget.umountAllBelow(temp);
    }
  }

  /** A recorder whose "ttyS0" is the serial stand-in, and which reads {@code kmsg}. */
  private ConsoleRecorder recorder(int capacity, Optional<Path> kmsg) throws IOException {
    Path dev = Files.createDirectories(temp.resolve("dev"));
    Files.createSymbolicLink(dev.resolve("ttyS0"), serial.device());
    ConsoleRecorder recorder =
        new ConsoleRecorder(
            new ConsoleRecorder.Settings(
                "root=/dev/ram0 console=tty0x console=ttyS0,115200n8 quiet",
                dev,
                temp.resolve("no-sys-class-tty"),
                kmsg,
                capacity,
                "test-boot"),
            Set::of,
            Clock.systemUTC());
    recorder.onWarning((log, line) -> warnings.add(line));
    controller.consoles(recorder);
    return recorder;
  }

  private long boot(String init) throws IOException {
    Path root = temp.resolve("root");
    SquashfsImage.Mounted mounted =
        SquashfsImage.mount(
            image, Files.createDirectories(temp.resolve("work")), root, new Overlay.Tmpfs());
    controller.specChanged(1, true);
    controller.boot(TestTarget.spec(root, init, console.device()), mounted::close, Duration.ZERO);
    long pid = Long.parseLong(state.read("pid_in_target").orElseThrow());
    await()
        .atMost(Duration.ofSeconds(20))
        .until(() -> Files.exists(Path.of("/proc", Long.toString(pid), "root/run/booted")));
    return pid;
  }

  @Test
  void theTargetsConsolesReachTheRealDevicesAndTheLogAndTypingReachesTheTarget() throws Exception {
    ConsoleRecorder recorder = recorder(BootLog.DEFAULT_CAPACITY, Optional.empty());
    long pid = boot("talker");

    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> {
              // The real device keeps its output processing (the agent's own lines need it):
              // the pty's line ends arrive with one more carriage return, which shows as none.
              assertThat(console.text()).contains("hello on the console\r\r\n");
              assertThat(serial.text()).contains("hello on ttyS0\r\r\n");
            });
    assertThat(console.text()).doesNotContain("hello on ttyS0");
    // The target's /dev/console and /dev/ttyS0 are ptys (major 136), not the machine's devices.
    assertThat(TestTarget.run("stat", "-L", "-c", "%t", "/proc/" + pid + "/root/dev/ttyS0"))
        .isEqualTo("88\n");
    assertThat(TestTarget.run("stat", "-L", "-c", "%t", "/proc/" + pid + "/root/dev/console"))
        .isEqualTo("88\n");

    console.type("uname -r\r");
    Path typed = Path.of("/proc", Long.toString(pid), "root/run/typed");
    await().atMost(Duration.ofSeconds(10)).until(() -> Files.exists(typed));
    assertThat(Files.readString(typed)).isEqualTo("uname -r\n");
    // The pty echoes what is typed, as a terminal does, and the target's answer follows.
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(console.text()).contains("uname -r\r\r\ntarget read: uname -r\r\r\n"));
    // What the agent prints on the real console while the target runs keeps its line ends.
    Files.writeString(console.device(), "chrootbooter: a line of the agent\n");
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(console.text()).contains("chrootbooter: a line of the agent\r\n"));

    BootLog log = recorder.current().orElseThrow();
    assertThat(log.text())
        .contains("hello on the console\r\n", "hello on ttyS0\r\n", "target read: uname -r");
    assertThat(log.image()).isEqualTo("http://images.test/talker");
    assertThat(log.id()).isEqualTo("test-boot-1");

    controller.trigger(ReturnTrigger.Hotkey, "test");
    assertThat(log.ended()).isTrue();
    // The real device is its own again: its settings are what they were (not raw).
    assertThat(TestTarget.run("stty", "-F", console.device().toString())).doesNotContain("-icanon");
  }

  /**
   * A user attached at the operator: the agent opens its console connection (the real JDK client,
   * the real relay and target), what is typed through it reaches the target's console as typing at
   * the machine does, the target's output comes back (and still reaches the real console), and the
   * target's end closes the connection with 1000. A key typed to its echo through the connection is
   * what the attach path adds at the agent.
   */
  @Test
  void typingThroughTheOperatorsConnectionReachesTheTargetAndItsOutputComesBack() throws Exception {
    ConsoleRecorder recorder = recorder(BootLog.DEFAULT_CAPACITY, Optional.empty());
    long pid = boot("talker");
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> console.text().contains("hello on the console"));
    Map<String, StandInOperator> others = new java.util.concurrent.ConcurrentHashMap<>();
    try (StandInOperator operator = StandInOperator.start()) {
      io.chrootbooter.agent.operator.ConsoleAttach attach =
          new io.chrootbooter.agent.operator.ConsoleAttach(
              java.net.http.HttpClient.newHttpClient(),
              () -> "Bearer session-of-this-boot",
              ticket -> others.getOrDefault(ticket, operator).uri(ticket),
              recorder::attach);
      attach.open("ticket-0123456789abcdef");
      String head = operator.request.get(10, java.util.concurrent.TimeUnit.SECONDS);
      assertThat(head)
          .startsWith(
              "GET /agent/v1/machines/52:54:00:12:34:56/console/live?ticket=ticket-0123456789abcdef ");
      assertThat(StandInOperator.header(head, "Authorization"))
          .isEqualTo("Bearer session-of-this-boot");

      operator.type("uname -r\r");
      Path typed = Path.of("/proc", Long.toString(pid), "root/run/typed");
      await().atMost(Duration.ofSeconds(10)).until(() -> Files.exists(typed));
      assertThat(Files.readString(typed)).isEqualTo("uname -r\n");
      // The echo and the target's answer reach the attached user, and the machine's console.
      await()
          .atMost(Duration.ofSeconds(10))
          .untilAsserted(
              () -> assertThat(operator.text()).contains("uname -r\r\ntarget read: uname -r\r\n"));
      await()
          .atMost(Duration.ofSeconds(10))
          .untilAsserted(() -> assertThat(console.text()).contains("target read: uname -r"));

      double[] took = new double[50];
      for (int i = 0; i < took.length; i++) {
        int before = operator.size();
        long start = System.nanoTime();
        operator.type("k");
        operator.awaitSize(before + 1, 5_000);
        took[i] = (System.nanoTime() - start) / 1e6;
      }
      java.util.Arrays.sort(took);
      System.out.printf(
          java.util.Locale.ROOT,
          "RESULT console_attach_agent_rtt %.3f ms%n",
          took[took.length / 2]);

      // Eight connections at most: seven more are attached, the one after is turned away.
      for (int i = 1; i <= 8; i++) {
        String ticket = "ticket-more-0123456789-" + i;
        others.put(ticket, StandInOperator.start());
        attach.open(ticket);
        others.get(ticket).request.get(10, java.util.concurrent.TimeUnit.SECONDS);
      }
      assertThat(
              others
                  .get("ticket-more-0123456789-8")
                  .closed
                  .get(10, java.util.concurrent.TimeUnit.SECONDS))
          .isEqualTo("1011 more than 8 consoles attached to this machine");
      assertThat(others.get("ticket-more-0123456789-7").closed).isNotDone();

      controller.trigger(ReturnTrigger.Hotkey, "test");
      assertThat(operator.closed.get(10, java.util.concurrent.TimeUnit.SECONDS))
          .isEqualTo("1000 the target ended");
      assertThat(
              others
                  .get("ticket-more-0123456789-7")
                  .closed
                  .get(10, java.util.concurrent.TimeUnit.SECONDS))
          .isEqualTo("1000 the target ended");
    } finally {
      for (StandInOperator other : others.values()) {
        other.close();
      }
    }
    // No target: the next connection is closed at once with the reason.
    try (StandInOperator operator = StandInOperator.start()) {
      new io.chrootbooter.agent.operator.ConsoleAttach(
              java.net.http.HttpClient.newHttpClient(),
              () -> "Bearer session-of-this-boot",
              operator::uri,
              recorder::attach)
          .open("ticket-0123456789abcdef");
      assertThat(operator.closed.get(10, java.util.concurrent.TimeUnit.SECONDS))
          .isEqualTo("1011 machine is not running a target");
    }
  }

  /**
   * A key typed at the real device to its echo, through the relay and the pty's line discipline,
   * against the same through a pty alone (the stand-in with echo on): what the relay adds.
   */
  @Test
  void aTypedKeysEchoComesBackPromptly() throws Exception {
    recorder(BootLog.DEFAULT_CAPACITY, Optional.empty());
    boot("talker");
    await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () ->
                console.text().contains("hello on ttyS0")
                    || console.text().contains("hello on the console"));
    double relayed = echoMillis(console, 50);
    console.type("\r");
    // The reference: a pty whose slave echoes itself (the stand-in, with the relay gone).
    controller.trigger(ReturnTrigger.Hotkey, "test");
    TestTarget.run("stty", "-F", console.device().toString(), "echo", "icanon");
    double direct = echoMillis(console, 50);
    // The median of 50 keys typed to their echo through the relay, and through a pty alone.
    System.out.printf(
        "RESULT console_rtt %.3f ms%nRESULT console_rtt_pty_alone %.3f ms%n", relayed, direct);
    assertThat(relayed).as("median echo through the relay, ms").isLessThan(100);
  }

  private static double echoMillis(StandIn device, int keys) throws Exception {
    double[] took = new double[keys];
    for (int i = 0; i < keys; i++) {
      int before = device.text().length();
      long start = System.nanoTime();
      device.type("k");
      while (device.text().length() == before) {
        Thread.onSpinWait();
        if (System.nanoTime() - start > 5_000_000_000L) {
          throw new AssertionError("no echo of key " + i + " within 5 s");
        }
      }
      took[i] = (System.nanoTime() - start) / 1e6;
    }
    java.util.Arrays.sort(took);
    return took[keys / 2];
  }

  @Test
  void a100MbFloodStaysBoundedAndReachesTheRealDevice() throws Exception {
    int capacity = BootLog.DEFAULT_CAPACITY;
    ConsoleRecorder recorder = recorder(capacity, Optional.empty());
    long pid = boot("flood");
    Path flooded = Path.of("/proc", Long.toString(pid), "root/run/flooded");
    long start = System.nanoTime();
    await().atMost(Duration.ofSeconds(120)).until(() -> Files.exists(flooded));
    double seconds = (System.nanoTime() - start) / 1e9;
    await().atMost(Duration.ofSeconds(10)).until(() -> console.count() >= HUNDRED_MB);

    BootLog log = recorder.current().orElseThrow();
    // The flood's last line has no end: it is in the log once it waited LINE_WAIT_NANOS.
    await().atMost(Duration.ofSeconds(10)).until(() -> log.total() >= HUNDRED_MB);
    BootLog.Chunk kept = log.read(0, Integer.MAX_VALUE);
    assertThat(kept.data()).hasSize(capacity);
    assertThat(kept.start()).isEqualTo(log.total() - capacity);
    assertThat(new String(kept.data(), 0, 64)).isEqualTo("x".repeat(64));
    // 100 MB through the relay.
    System.out.printf("RESULT console_relay_flood %.1f MB/s%n", HUNDRED_MB / 1e6 / seconds);
  }

  @Test
  void aKernelWarningWhileTheTargetRunsIsRecordedAndReported() throws Exception {
    Path kmsg = Path.of("/dev/kmsg");
    Assumptions.assumeTrue(Files.isReadable(kmsg), "/dev/kmsg is not readable here");
    ConsoleRecorder recorder = recorder(BootLog.DEFAULT_CAPACITY, Optional.of(kmsg));
    boot("warner");

    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(warnings).containsExactly("WARNING: CPU: 0 PID: 1 at " + MARKER));
    BootLog log = recorder.current().orElseThrow();
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(() -> assertThat(log.text()).contains(MARKER + " an ordinary line\r\n"));
    assertThat(log.text())
        .containsPattern("\\[ *[0-9]+\\.[0-9]{6}\\] WARNING: CPU: 0 PID: 1 at " + MARKER + "\r\n");
    assertThat(log.warnings()).containsExactly("WARNING: CPU: 0 PID: 1 at " + MARKER);
    List<String> ordinary = new ArrayList<>(warnings);
    assertThat(ordinary).noneMatch(w -> w.contains("ordinary"));
  }
}
