package io.chrootbooter.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The machine's own parts that need no guest: QEMU's monitor answers, and a machine QEMU refuses
 * fails to power on with QEMU's reason and leaves nothing. Booting a guest is what the PXE and
 * bootstrap tests do with this fixture. Needs qemu-system-x86_64; skips otherwise.
 */
class MachineTest {
  @TempDir Path dir;

  @Test
  void theMonitorAnswersAndPowerOffEndsQemuAndItsSockets() throws Exception {
    assumeTrue(Host.onPath("qemu-system-x86_64"), "qemu-system-x86_64 is not on the PATH");
    Machine vm = Machine.builder("idle", dir).memory(64).smp(1).serialPorts(1).powerOn();
    try {
      assertThat(vm.isAlive()).isTrue();
      assertThat(vm.monitor("info name")).contains("idle");
      vm.serial(1).close();
    } finally {
      vm.close();
    }

    assertThat(vm.isAlive()).isFalse();
    assertThat(dir.resolve("idle-monitor.sock")).doesNotExist();
    assertThat(dir.resolve("idle-ttyS1.sock")).doesNotExist();
    assertThatThrownBy(() -> vm.serial(2)).hasMessageContaining("serial ports 1 to 1");
  }

  @Test
  void aMachineQemuRefusesFailsToPowerOnWithQemusReason() throws Exception {
    assumeTrue(Host.onPath("qemu-system-x86_64"), "qemu-system-x86_64 is not on the PATH");
    Path missing = dir.resolve("no-such-kernel");

    assertThatThrownBy(
            () -> Machine.builder("broken", dir).memory(64).kernel(missing, missing, "").powerOn())
        .isInstanceOf(IOException.class)
        .hasMessageContaining("QEMU for broken did not start")
        .hasMessageContaining("no-such-kernel");
    assertThat(Files.exists(dir.resolve("broken-monitor.sock"))).isFalse();
  }
}
