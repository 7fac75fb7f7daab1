package io.chrootbooter.agent.pivot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.relay.BootLog;
import io.chrootbooter.agent.relay.ConsoleRecorder;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.agent.unpack.SquashfsImage;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Debian 12 with systemd behind the console relay: two pty pairs stand in for the machine's console
 * and its serial line {@code ttyS0}. The person at the console sees systemd's boot and the
 * autologin shell (console-getty's agetty hangs the console up first), types a command and reads
 * its answer; what the shell writes to {@code /dev/ttyS0} reaches the serial line; the recorded log
 * holds all of it up to the power-off messages. Same setup and teardown as {@link
 * SystemdTargetTest}.
 */
class SystemdConsoleRelayTest {
  private static final Duration BOOT_LIMIT = Duration.ofSeconds(120);
  private static Path image;

  @TempDir Path temp;
  private Path cgroupParent;
  private StateFiles state;
  private BootController controller;
  private Pty console;
  private Pty serial;

  @BeforeAll
  static void buildImage() throws Exception {
    TestTarget.assumeHost();
    image = DebianImage.get();
  }

  @BeforeEach
  void setUp() throws IOException {
    cgroupParent = TestTarget.newCgroup("cb-systemd-relay");
    state = new StateFiles(temp.resolve("state"));
    controller = TestTarget.controller(cgroupParent, temp, state, OptionalLong.empty());
    console = Pty.open();
    serial = Pty.open();
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      controller.close();
    } finally {
      try {
        TestTarget.removeCgroup(cgroupParent);
        TestTarget.umountAllBelow(temp);
      } finally {
        console.close();
        serial.close();
        Path log = Path.of(System.getProperty("user.dir"), "target", "systemd-relay-console.log");
        Files.createDirectories(log.getParent());
        Files.write(log, console.output());
      }
    }
  }

  @Test
  void theConsoleThroughTheRelayShowsTheBootTakesTypingAndIsRecordedToThePowerOff()
      throws Exception {
    ConsoleRecorder recorder = bootWithRelay(Confinement.Machine);
    awaitShell();
    assertThat(capBnd(initPid())).as("a Machine target's bounding set").isEqualTo(capBnd(0));
    console.type("uname -r; echo on-the-serial-line > /dev/ttyS0\r");
    String release = Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip();
    await()
        .atMost(Duration.ofSeconds(30))
        .untilAsserted(
            () -> assertThat(console.text()).contains("uname -r").contains(release + "\r\r\n"));
    await()
        .atMost(Duration.ofSeconds(30))
        .untilAsserted(() -> assertThat(serial.text()).contains("on-the-serial-line\r\r\n"));

    controller.trigger(ReturnTrigger.Console, "poweroff").orElseThrow();
    BootLog log = recorder.current().orElseThrow();
    assertThat(log.ended()).isTrue();
    assertThat(log.text())
        .contains("root@chrootbooter-debian")
        .contains(release + "\r\n")
        .contains("on-the-serial-line")
        .contains("Powering off.");
    assertThat(console.text()).contains("Powering off.");
  }

  /**
   * Confined behind the relay: still Confined (the relay's console does not change what the target
   * may do), its console the relay's; its private /dev has no ttyS0 to bind over.
   */
  @Test
  void aConfinedTargetBehindTheRelayStaysConfined() throws Exception {
    ConsoleRecorder recorder = bootWithRelay(Confinement.Confined);
    awaitShell();
    assertThat(capBnd(initPid())).as("a Confined target's bounding set").isNotEqualTo(capBnd(0));
    console.type("uname -r; ls /dev/ttyS0\r");
    String release = Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip();
    await()
        .atMost(Duration.ofSeconds(30))
        .untilAsserted(
            () ->
                assertThat(console.text())
                    .contains(release + "\r\r\n")
                    .contains("No such file or directory"));
    controller.trigger(ReturnTrigger.Console, "poweroff").orElseThrow();
    assertThat(recorder.current().orElseThrow().text()).contains("Powering off.");
  }

  private ConsoleRecorder bootWithRelay(Confinement confinement) throws IOException {
    Path dev = Files.createDirectories(temp.resolve("dev"));
    Files.createSymbolicLink(dev.resolve("ttyS0"), serial.slave());
    ConsoleRecorder recorder =
        new ConsoleRecorder(
            new ConsoleRecorder.Settings(
                "console=ttyS0,115200", dev, temp.resolve("sys"), Optional.empty(), 1 << 20, "t"),
            Set::of,
            Clock.systemUTC());
    controller.consoles(recorder);
    Path root = temp.resolve("root");
    SquashfsImage.Mounted mounted =
        SquashfsImage.mount(
            image, Files.createDirectories(temp.resolve("work")), root, new Overlay.Tmpfs());
    controller.boot(
        new TargetSpec(
                root,
                TargetSpec.DEFAULT_INIT,
                image.toUri().toString(),
                Signals.SIGRTMIN + 4,
                Duration.ofSeconds(10),
                console.slave())
            .confined(confinement, List.of()),
        mounted::close,
        BOOT_LIMIT);
    return recorder;
  }

  /** The autologin shell's prompt: console-getty ran agetty on the relayed console. */
  private void awaitShell() {
    await()
        .atMost(BOOT_LIMIT)
        .pollInterval(Duration.ofMillis(200))
        .until(() -> console.text().contains("root@chrootbooter-debian"));
  }

  private long initPid() throws IOException {
    return Long.parseLong(state.read("pid_in_target").orElseThrow());
  }

  /** The {@code CapBnd} line of a process's status; 0 for the test JVM's own. */
  private static String capBnd(long pid) throws IOException {
    Path status = pid == 0 ? Path.of("/proc/self/status") : Path.of("/proc", pid + "", "status");
    return Files.readAllLines(status).stream()
        .filter(l -> l.startsWith("CapBnd:"))
        .findFirst()
        .orElseThrow();
  }
}
