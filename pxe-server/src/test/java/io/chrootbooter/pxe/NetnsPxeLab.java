package io.chrootbooter.pxe;

import io.chrootbooter.testkit.LabNetwork;
import io.chrootbooter.testkit.Machine;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;

/**
 * A PXE network on the test kit's {@link LabNetwork}, with a namespace of its own for the servers,
 * torn down in reverse on {@link #close}, also when starting fails half way (docs/architecture.md
 * §7):
 *
 * <pre>
 *  netns LAN: br0 10.77.0.1/24 + fd77::1/64, dnsmasq (the site's DHCP server), a tap per machine
 *             └─ veth ══ veth-pxe ─┐
 *  netns PXE: veth-pxe 10.77.0.2/24: pxe-server (proxyDHCP + TFTP), busybox httpd as the
 *             operator's /boot/&lt;mac&gt;.ipxe
 * </pre>
 *
 * Nothing is created in the host's namespace; every process runs inside one of the two.
 */
final class NetnsPxeLab implements AutoCloseable {
  static final String SERVER = "10.77.0.2";
  static final String OPERATOR = "http://" + SERVER + ":8080";

  final LabNetwork net;
  final String pxe;
  final Path dir;
  private final Deque<Machine> machines = new ArrayDeque<>();
  private int booted;

  private NetnsPxeLab(LabNetwork net, String pxe, Path dir) {
    this.net = net;
    this.pxe = pxe;
    this.dir = dir;
  }

  /** Builds the namespaces and starts dnsmasq, the stand-in operator and the pxe-server. */
  static NetnsPxeLab start(Path dir, List<String> knownMacs) throws Exception {
    String id = Long.toString(ProcessHandle.current().pid());
    LabNetwork net = LabNetwork.create("cbpxe-lan-" + id, "10.77.0", "fd77::", dir);
    NetnsPxeLab lab = new NetnsPxeLab(net, "cbpxe-srv-" + id, dir);
    try {
      lab.build(knownMacs);
      return lab;
    } catch (Exception | AssertionError e) {
      lab.close();
      throw e;
    }
  }

  private void build(List<String> knownMacs) throws Exception {
    net.join(pxe, "veth-pxe", SERVER + "/24");
    Path www = Files.createDirectories(dir.resolve("www/boot"));
    for (String mac : knownMacs) {
      // The BIOS chain: the ROM's iPXE (virtio-net driver) chains undionly.kpxe from our TFTP
      // server (next-server of our offer; plain ${next-server} is dnsmasq's, which outranks the
      // proxy's settings); that iPXE (undionly driver) runs DHCP again, gets this script again
      // from our offer, and stops.
      Files.writeString(
          www.resolve(mac + ".ipxe"),
          "#!ipxe\n"
              + "echo CB-CHIP ${net0/chip}\n"
              + "iseq ${net0/chip} virtio-net"
              + " && chain tftp://${proxydhcp/next-server}/undionly.kpxe ||\n"
              + "echo CB-SCRIPT-OK ${net0/mac}\n");
    }
    net.spawn(
        "httpd",
        pxe,
        List.of(
            "busybox",
            "httpd",
            "-f",
            "-vv",
            "-p",
            SERVER + ":8080",
            "-h",
            dir.resolve("www").toString()));
    // The site's DHCP server, as ./lab runs it (docs/architecture.md §7); no fixed addresses.
    net.startDhcp(Map.of());
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String classpath =
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    net.spawn(
        "pxe-server",
        pxe,
        List.of(
            java,
            "--add-exports",
            "java.base/sun.nio.ch=ALL-UNNAMED",
            "-cp",
            classpath,
            PxeServerMain.class.getName(),
            "--operator",
            OPERATOR,
            "--interface",
            "veth-pxe",
            "--debug"));
  }

  /**
   * Powers on a machine with {@code mac} that boots from the network with {@code firmware}'s PXE
   * client; the file its console goes to.
   */
  Path bootVm(String mac, Machine.Boot firmware) throws Exception {
    // The default ROM (efi-virtio.rom, BIOS + EFI iPXE) for the BIOS boot: Debian's
    // pxe-virtio.rom does not load on QEMU 7.2's virtio-net-pci. OVMF needs 512 MiB.
    Machine vm =
        net.machine("vm" + ++booted)
            .mac(mac)
            .smp(1)
            .memory(firmware == Machine.Boot.UEFI_PXE ? 512 : 256)
            .pxe(firmware)
            .powerOn();
    machines.push(vm);
    return vm.consoleLog();
  }

  /** Powers off the newest machine, leaving the rest of the lab running. */
  void stopNewest() throws Exception {
    Machine vm = machines.poll();
    if (vm != null) {
      vm.close();
    }
  }

  Path log(String name) {
    return net.log(name);
  }

  String read(Path file) {
    return LabNetwork.read(file);
  }

  /** Everything a human needs when a boot fails. */
  String dump() {
    return net.dump();
  }

  @Override
  public void close() throws Exception {
    net.close();
  }
}
