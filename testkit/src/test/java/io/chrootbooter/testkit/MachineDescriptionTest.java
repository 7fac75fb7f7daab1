package io.chrootbooter.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class MachineDescriptionTest {
  private static final Path REPO = Path.of(System.getProperty("user.dir")).getParent();
  private final MachineDescription lab = MachineDescription.lab();

  @Test
  void machineOneIsTheLabsM1() {
    assertThat(lab.mac(1)).isEqualTo("52:54:00:12:34:56");
    assertThat(lab.mac(3)).isEqualTo("52:54:00:12:34:58");
    assertThat(lab.address("10.88.0", 1)).isEqualTo("10.88.0.101");
    assertThatThrownBy(() -> lab.mac(0)).hasMessageContaining("machine number 0");
  }

  /** ./lab's machines.bash reads the same file and derives the same MACs and addresses. */
  @Test
  void theLabScriptGivesItsMachinesTheSameMacsAddressesAndQemuSettings() throws IOException {
    Path machines = REPO.resolve("e2e/lab/lib/machines.bash");
    assumeTrue(Files.isRegularFile(machines), machines + " is not here (a source tree is needed)");
    assumeTrue(Host.onPath("bash"), "bash is not on the PATH");
    String out =
        Host.run(
            "bash",
            "-c",
            "set -eu; ROOT=$1; SUBNET=10.88.0; die() { echo \"$*\" >&2; exit 1; }; source $2;"
                + " for m in m1 m2 m3; do echo \"$m $(mac_of $m) $(ip_of $m)\"; done;"
                + " echo \"qemu $(machine_prop qemu.machine) $(machine_prop qemu.cpu)"
                + " $(machine_prop qemu.nic)\"",
            "machines",
            REPO.toString(),
            machines.toString());

    assertThat(out.lines())
        .containsExactly(
            "m1 " + lab.mac(1) + " " + lab.address("10.88.0", 1),
            "m2 " + lab.mac(2) + " " + lab.address("10.88.0", 2),
            "m3 " + lab.mac(3) + " " + lab.address("10.88.0", 3),
            "qemu " + lab.machine() + " " + lab.cpu() + " " + lab.nic());
  }

  @Test
  void aMachinesQemuCommandLineIsTheDescriptionsWithItsOwnBootAndNetwork() {
    List<String> cmd =
        Machine.builder("m1", Path.of("/run/lab"))
            .number(1)
            .memory(1024)
            .serialPorts(1)
            .userNetwork("restrict=on")
            .kernel(Path.of("/k"), Path.of("/i"), "console=ttyS0")
            .command(Path.of("/run/lab/m1-monitor.sock"));

    assertThat(String.join(" ", cmd))
        .startsWith("qemu-system-x86_64 -name m1 -accel tcg -machine " + lab.machine())
        .contains("-cpu " + lab.cpu() + " -smp " + lab.smp() + " -m 1024 ")
        .contains("-monitor unix:/run/lab/m1-monitor.sock,server=on,wait=off -serial stdio")
        .contains("-chardev socket,id=s1,path=/run/lab/m1-ttyS1.sock,server=on,wait=off")
        .contains(
            "-netdev user,id=n0,restrict=on -device "
                + lab.nic()
                + ",netdev=n0,mac="
                + lab.mac(1)
                + ",romfile=")
        .endsWith("-kernel /k -initrd /i -append console=ttyS0");
  }

  @Test
  void aMachineWithoutANetworkHasNoNic() {
    List<String> cmd =
        Machine.builder("m2", Path.of("/run/lab"))
            .pxe(Machine.Boot.UEFI_PXE)
            .command(Path.of("/m.sock"));

    assertThat(String.join(" ", cmd))
        .contains("-m " + lab.memoryMib() + " ")
        .contains("-nic none")
        .endsWith("-bios " + Machine.OVMF);
  }
}
