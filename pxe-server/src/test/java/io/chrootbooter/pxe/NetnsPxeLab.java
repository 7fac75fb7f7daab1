package io.chrootbooter.pxe;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A PXE network in two namespaces of its own, owned as one resource and torn down in reverse on
 * {@link #close}, also when starting fails half way (docs/architecture.md §7):
 *
 * <pre>
 *  netns LAN: br0 10.77.0.1/24 + fd77::1/64, dnsmasq (the site's DHCP server), tap0 (QEMU)
 *             └─ veth-lan ══ veth-pxe ─┐
 *  netns PXE: veth-pxe 10.77.0.2/24: pxe-server (proxyDHCP + TFTP), busybox httpd as the
 *             operator's /boot/&lt;mac&gt;.ipxe
 * </pre>
 *
 * Nothing is created in the host's namespace; every process runs inside one of the two.
 */
final class NetnsPxeLab implements AutoCloseable {
  static final String SERVER = "10.77.0.2";
  static final String OPERATOR = "http://" + SERVER + ":8080";
  static final Path OVMF = Path.of("/usr/share/qemu/OVMF.fd");

  final String lan;
  final String pxe;
  final Path dir;
  private final Deque<AutoCloseable> teardown = new ArrayDeque<>();

  private NetnsPxeLab(Path dir) {
    String id = Long.toString(ProcessHandle.current().pid());
    this.lan = "cbpxe-lan-" + id;
    this.pxe = "cbpxe-srv-" + id;
    this.dir = dir;
  }

  /** Builds the namespaces and starts dnsmasq, the stand-in operator and the pxe-server. */
  static NetnsPxeLab start(Path dir, List<String> knownMacs) throws Exception {
    NetnsPxeLab lab = new NetnsPxeLab(dir);
    try {
      lab.build(knownMacs);
      return lab;
    } catch (Exception | AssertionError e) {
      lab.close();
      throw e;
    }
  }

  private void build(List<String> knownMacs) throws Exception {
    run("ip", "netns", "add", lan);
    teardown.push(() -> run("ip", "netns", "del", lan));
    run("ip", "netns", "add", pxe);
    teardown.push(() -> run("ip", "netns", "del", pxe));
    for (String[] cmd :
        new String[][] {
          {"ip", "-n", lan, "link", "set", "lo", "up"},
          {"ip", "-n", pxe, "link", "set", "lo", "up"},
          {
            "ip",
            "-n",
            lan,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0"
          },
          {"ip", "-n", lan, "addr", "add", "10.77.0.1/24", "dev", "br0"},
          {"ip", "-n", lan, "addr", "add", "fd77::1/64", "dev", "br0"},
          {"ip", "-n", lan, "tuntap", "add", "dev", "tap0", "mode", "tap"},
          {"ip", "-n", lan, "link", "set", "tap0", "master", "br0"},
          {
            "ip",
            "-n",
            lan,
            "link",
            "add",
            "veth-lan",
            "type",
            "veth",
            "peer",
            "name",
            "veth-pxe",
            "netns",
            pxe
          },
          {"ip", "-n", lan, "link", "set", "veth-lan", "master", "br0"},
          {"ip", "-n", lan, "link", "set", "tap0", "up"},
          {"ip", "-n", lan, "link", "set", "veth-lan", "up"},
          {"ip", "-n", lan, "link", "set", "br0", "up"},
          {"ip", "-n", pxe, "addr", "add", SERVER + "/24", "dev", "veth-pxe"},
          {"ip", "-n", pxe, "link", "set", "veth-pxe", "up"},
        }) {
      run(cmd);
    }

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
    spawn(
        "httpd",
        List.of(
            "ip",
            "netns",
            "exec",
            pxe,
            "busybox",
            "httpd",
            "-f",
            "-vv",
            "-p",
            SERVER + ":8080",
            "-h",
            dir.resolve("www").toString()));
    // The site's DHCP server, tuned as in docs/architecture.md §7, but without 175.176 = 1: that
    // would tell
    // iPXE to ignore every proxyDHCP offer, ours included.
    spawn(
        "dnsmasq",
        List.of(
            "ip",
            "netns",
            "exec",
            lan,
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--user=root",
            "--port=0",
            "--interface=br0",
            "--bind-interfaces",
            "--dhcp-range=10.77.0.100,10.77.0.200,5m",
            "--dhcp-range=fd77::,ra-only",
            "--enable-ra",
            "--no-ping",
            "--log-dhcp",
            "--log-facility=-",
            "--dhcp-leasefile=" + dir.resolve("leases"),
            "--pid-file=" + dir.resolve("dnsmasq.pid")));
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String classpath =
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    spawn(
        "pxe-server",
        List.of(
            "ip",
            "netns",
            "exec",
            pxe,
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

  /** What the VM boots with. */
  enum Firmware {
    /** SeaBIOS + the virtio-net option ROM, which is iPXE (efi-virtio.rom, BIOS part). */
    BIOS_IPXE_ROM,
    /**
     * OVMF without a NIC option ROM: EDK2's own UEFI PXE client (arch 7), a plain PXE ROM that must
     * be handed snponly.efi by TFTP.
     */
    UEFI_PXE
  }

  /** Starts QEMU (TCG) on tap0; its serial console goes to a file. */
  Path bootVm(String mac, Firmware firmware) throws IOException {
    Path console = dir.resolve("console-" + mac.replace(':', '-') + "-" + firmware + ".log");
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "ip",
                "netns",
                "exec",
                lan,
                "qemu-system-x86_64",
                "-accel",
                "tcg",
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "stdio",
                "-no-reboot",
                "-netdev",
                "tap,id=n0,ifname=tap0,script=no,downscript=no"));
    if (firmware == Firmware.BIOS_IPXE_ROM) {
      // The default ROM (efi-virtio.rom, BIOS + EFI iPXE): Debian's pxe-virtio.rom does not
      // load on QEMU 7.2's virtio-net-pci.
      cmd.addAll(
          List.of("-m", "256", "-boot", "n", "-device", "virtio-net-pci,netdev=n0,mac=" + mac));
    } else {
      cmd.addAll(
          List.of(
              "-m",
              "512",
              "-bios",
              OVMF.toString(),
              "-device",
              "virtio-net-pci,netdev=n0,mac=" + mac + ",bootindex=0,romfile="));
    }
    spawn(console, cmd);
    return console;
  }

  /** Stops the newest process started (the VM), leaving the rest of the lab running. */
  void stopNewest() throws Exception {
    teardown.pop().close();
  }

  Path log(String name) {
    return dir.resolve(name + ".log");
  }

  String read(Path file) {
    try {
      return Files.exists(file) ? Files.readString(file, StandardCharsets.ISO_8859_1) : "";
    } catch (IOException e) {
      return "(" + e + ")";
    }
  }

  /** Everything a human needs when a boot fails. */
  String dump() {
    StringBuilder sb = new StringBuilder();
    try (var files = Files.list(dir)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".log")).sorted().toList()) {
        String text = read(f).replaceAll("\u001b\\[[0-9;?]*[a-zA-Z]", "").replace("\r", "");
        sb.append("\n===== ").append(f.getFileName()).append(" =====\n").append(text);
      }
    } catch (IOException e) {
      sb.append(e);
    }
    return sb.toString();
  }

  private void spawn(String name, List<String> command) throws IOException {
    spawn(log(name), command);
  }

  private void spawn(Path output, List<String> command) throws IOException {
    Process p =
        new ProcessBuilder(command)
            .redirectErrorStream(true)
            .redirectOutput(output.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .start();
    teardown.push(() -> stop(p));
  }

  private static void stop(Process p) throws InterruptedException {
    p.destroy();
    if (!p.waitFor(5, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      p.waitFor(5, TimeUnit.SECONDS);
    }
  }

  static void run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException(String.join(" ", command) + " failed: " + out.strip());
    }
  }

  @Override
  public void close() throws Exception {
    List<Exception> failures = new ArrayList<>();
    while (!teardown.isEmpty()) {
      try {
        teardown.pop().close();
      } catch (Exception e) {
        failures.add(e);
      }
    }
    if (!failures.isEmpty()) {
      Exception first = failures.get(0);
      failures.subList(1, failures.size()).forEach(first::addSuppressed);
      throw first;
    }
  }
}
