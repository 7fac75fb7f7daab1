package io.chrootbooter.agent.relay;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.agent.relay.ConsoleDevices.Device;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ConsoleDevicesTest {
  private static final Path DEV = Path.of("/dev");
  private static final Path CONSOLE = Path.of("/dev/console");

  @Test
  void consoleIsTheLastActiveConsoleAndSharesItsRelay() {
    List<Device> plan =
        ConsoleDevices.plan(
            "BOOT_IMAGE=vmlinuz console=tty0 console=ttyS0,115200n8 cb.operator=http://x",
            CONSOLE,
            DEV,
            Optional.of("tty0 ttyS0\n"),
            Optional.of("tty1\n"),
            Set.of());
    assertThat(plan)
        .containsExactly(
            new Device(Path.of("/dev/ttyS0"), List.of("console", "ttyS0")),
            new Device(Path.of("/dev/tty1"), List.of("tty0", "tty1")));
  }

  @Test
  void withoutConsoleWordsOnlyTheConsoleIsRelayed() {
    assertThat(
            ConsoleDevices.plan(
                "quiet", CONSOLE, DEV, Optional.of("tty0\n"), Optional.of("tty3"), Set.of()))
        .containsExactly(new Device(Path.of("/dev/tty3"), List.of("console")));
    // Nothing in /sys to read: /dev/console itself.
    assertThat(ConsoleDevices.plan("", CONSOLE, DEV, Optional.empty(), Optional.empty(), Set.of()))
        .containsExactly(new Device(CONSOLE, List.of("console")));
  }

  @Test
  void theSerialTriggersPortAndHostileNamesAreLeftOut() {
    List<Device> plan =
        ConsoleDevices.plan(
            "console=ttyS1 console=../../etc/passwd console=tty console=ttyS0 console=ttyS0"
                + " console=hvc0 console=ttyS0;reboot",
            CONSOLE,
            DEV,
            Optional.of("ttyS0"),
            Optional.empty(),
            Set.of(Path.of("/dev/ttyS1")));
    assertThat(plan)
        .containsExactly(
            new Device(Path.of("/dev/ttyS0"), List.of("console", "ttyS0")),
            new Device(Path.of("/dev/hvc0"), List.of("hvc0")));
  }

  @Test
  void aConsoleOtherThanDevConsoleIsRelayedAsItIs() {
    Path log = Path.of("/tmp/console.pty");
    assertThat(
            ConsoleDevices.plan(
                "console=ttyS0", log, DEV, Optional.of("ttyS0"), Optional.empty(), Set.of()))
        .containsExactly(
            new Device(log, List.of("console")),
            new Device(Path.of("/dev/ttyS0"), List.of("ttyS0")));
  }
}
