package io.chrootbooter.pxe;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.chrootbooter.testkit.Host;
import io.chrootbooter.testkit.Machine;
import io.chrootbooter.testkit.MachineDescription;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.awaitility.core.ConditionTimeoutException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real PXE boot: QEMU's iPXE ROM (TCG) on a bridge with dnsmasq as the site's DHCP server and our
 * pxe-server as proxyDHCP, all inside network namespaces the test creates and removes. A known
 * machine fetches {@code http://<operator>/boot/<mac>.ipxe} straight from our proxy offer, chains
 * {@code undionly.kpxe} from our TFTP server, and that iPXE gets its script from us again; an
 * unknown one gets an address from dnsmasq and nothing from us. A UEFI machine whose firmware is a
 * plain PXE client (EDK2 in OVMF) gets {@code snponly.efi} by TFTP, which then does the same.
 */
class NetnsPxeBootTest {
  /** Machine m1 of the lab. */
  static final String KNOWN = MachineDescription.lab().mac(1);

  static final String UNKNOWN = "52:54:00:00:00:99";

  @TempDir static Path dir;
  static NetnsPxeLab lab;

  @BeforeAll
  static void startLab() throws Exception {
    Optional<String> noNamespaces = Host.cannotMakeNamespaces();
    assumeTrue(noNamespaces.isEmpty(), noNamespaces.orElse(""));
    Optional<String> missing = Host.missing(List.of("dnsmasq", "busybox", "qemu-system-x86_64"));
    assumeTrue(
        missing.isEmpty(),
        missing.orElse("")
            + " is needed (Debian packages dnsmasq, busybox-static, qemu-system-x86)");
    assumeTrue(
        Files.exists(Path.of("/usr/lib/ipxe/qemu/efi-virtio.rom")),
        "QEMU's virtio-net option ROM is needed (Debian package ipxe-qemu)");
    lab = NetnsPxeLab.start(dir, List.of(KNOWN));
    awaitOrDump(
        Duration.ofSeconds(30),
        () -> lab.read(lab.log("pxe-server")).contains("serving as 10.77.0.2"));
  }

  @AfterAll
  static void stopLab() throws Exception {
    if (lab != null) {
      lab.close();
    }
  }

  @Test
  void knownMachineChainsFromOurProxyOfferToItsScript() throws Exception {
    int logFrom = lab.read(lab.log("pxe-server")).length();
    Path console = lab.bootVm(KNOWN, Machine.Boot.BIOS_PXE);
    try {
      awaitOrDump(
          Duration.ofSeconds(120),
          () -> lab.read(console).contains("CB-SCRIPT-OK " + KNOWN) || gaveUp(console));
    } finally {
      lab.stopNewest();
    }
    String pxeLog = lab.read(lab.log("pxe-server")).substring(logFrom);
    assertThat(lab.read(console))
        .as("console (and logs)%s", lab.dump())
        .contains("Filename: " + NetnsPxeLab.OPERATOR + "/boot/" + KNOWN + ".ipxe")
        .contains("CB-CHIP virtio-net")
        .contains("CB-CHIP undionly")
        .contains("CB-SCRIPT-OK " + KNOWN);
    // The guest itself (an address from dnsmasq's range), not only our look-up, fetched it.
    assertThat(lab.read(lab.log("httpd")))
        .containsPattern("10\\.77\\.0\\.1\\d\\d:\\d+: url:/boot/" + KNOWN + "\\.ipxe");
    // Our TFTP served the chained iPXE (iPXE asks blksize 1432), and both iPXEs got our offer.
    assertThat(pxeLog).contains("sent \"undionly.kpxe\" (74213 bytes, blksize 1432)");
    assertThat(pxeLog.lines().filter(l -> l.contains("answered DHCPDISCOVER") && l.contains(KNOWN)))
        .hasSizeGreaterThanOrEqualTo(2);
  }

  @Test
  void uefiPxeRomGetsSnponlyEfiByTftpAndThenItsScript() throws Exception {
    assumeTrue(Files.exists(Machine.OVMF), "OVMF is needed (Debian package ovmf)");
    int logFrom = lab.read(lab.log("pxe-server")).length();
    Path console = lab.bootVm(KNOWN, Machine.Boot.UEFI_PXE);
    try {
      awaitOrDump(
          Duration.ofSeconds(240), () -> lab.read(console).contains("CB-SCRIPT-OK " + KNOWN));
    } finally {
      lab.stopNewest();
    }
    assertThat(lab.read(console))
        .as("console (and logs)%s", lab.dump())
        .contains("NBP filename is snponly.efi")
        .contains("CB-CHIP SNP")
        .contains("CB-SCRIPT-OK " + KNOWN);
    assertThat(lab.read(lab.log("pxe-server")).substring(logFrom))
        .contains("with boot file snponly.efi")
        .contains("sent \"snponly.efi\" (" + Files.size(Path.of("/usr/lib/ipxe/snponly.efi")));
  }

  @Test
  void unknownMachineGetsNoAnswer() throws Exception {
    Path console = lab.bootVm(UNKNOWN, Machine.Boot.BIOS_PXE);
    try {
      awaitOrDump(
          Duration.ofSeconds(120),
          () ->
              lab.read(lab.log("pxe-server")).contains(UNKNOWN + " is unknown to the operator")
                  && lab.read(console).contains("No more network devices"));
    } finally {
      lab.stopNewest();
    }
    assertThat(lab.read(console)).contains("net0: 10.77.0.").doesNotContain("Filename:");
  }

  /** SeaBIOS's last word once every boot device failed: no point waiting longer. */
  private static boolean gaveUp(Path console) {
    return lab.read(console).contains("No bootable device");
  }

  private static void awaitOrDump(Duration timeout, Callable<Boolean> condition) {
    try {
      await().atMost(timeout).pollInterval(Duration.ofMillis(250)).until(condition);
    } catch (ConditionTimeoutException e) {
      throw new AssertionError(e.getMessage() + "\n" + lab.dump(), e);
    }
  }
}
