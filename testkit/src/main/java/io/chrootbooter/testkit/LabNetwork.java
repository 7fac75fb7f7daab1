package io.chrootbooter.testkit;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A lab network: a network namespace of its own with a bridge {@code br0} ({@code <subnet>.1/24}
 * and {@code <ula>1/64}), a tap per machine, dnsmasq as the site's DHCP server, and further
 * namespaces joined to the bridge by veth pairs — the layout of {@code ./lab}, whose
 * e2e/lab/lib/network.bash makes the same with {@code ip}. Nothing of it appears in the host's
 * namespace; every process runs inside one of its namespaces and is stopped by {@link #close()},
 * which then deletes the namespaces, newest first, also when {@link #create} failed half way.
 */
public final class LabNetwork implements AutoCloseable {
  private final String namespace;
  private final String subnet;
  private final String ula;
  private final Path dir;
  private final Teardown teardown;
  private final MachineDescription description = MachineDescription.lab();

  private LabNetwork(String namespace, String subnet, String ula, Path dir) {
    this.namespace = namespace;
    this.subnet = subnet;
    this.ula = ula;
    this.dir = dir;
    this.teardown = new Teardown("lab network " + namespace);
  }

  /**
   * Creates namespace {@code namespace} with its bridge.
   *
   * @param subnet the bridge's IPv4 /24, three octets ({@code 10.77.0})
   * @param ula the bridge's IPv6 /64 prefix ending in {@code ::} ({@code fd77::})
   * @param dir where logs and the machines' sockets go
   */
  public static LabNetwork create(String namespace, String subnet, String ula, Path dir)
      throws Exception {
    LabNetwork net = new LabNetwork(namespace, subnet, ula, dir);
    try {
      Files.createDirectories(dir);
      Host.run("ip", "netns", "add", namespace);
      net.teardown.push(() -> Host.run("ip", "netns", "del", namespace));
      net.ip("link", "set", "lo", "up");
      net.ip("link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0");
      net.ip("addr", "add", subnet + ".1/24", "dev", "br0");
      net.ip("addr", "add", ula + "1/64", "dev", "br0", "nodad");
      net.ip("link", "set", "br0", "up");
      return net;
    } catch (Exception | Error e) {
      net.closeAfter(e);
      throw e;
    }
  }

  /** The namespace the bridge, the taps, dnsmasq and the machines live in. */
  public String namespace() {
    return namespace;
  }

  /** The bridge's address. */
  public String gateway() {
    return subnet + ".1";
  }

  /** What a lab machine is ({@code machine.properties}). */
  public MachineDescription description() {
    return description;
  }

  /** The fixed address of machine number {@code n}, as {@link #startDhcp} hands it out. */
  public String address(int n) {
    return description.address(subnet, n);
  }

  /** Where this lab's logs and sockets are. */
  public Path dir() {
    return dir;
  }

  /** Adds tap {@code tap-<name>} to the bridge, for machine {@code name}; its interface name. */
  public String tap(String name) throws IOException {
    String tap = "tap-" + name;
    if (tap.length() > 15) {
      throw new IllegalArgumentException("machine name " + name + " is too long for a tap name");
    }
    ip("tuntap", "add", "dev", tap, "mode", "tap");
    ip("link", "set", tap, "master", "br0");
    ip("link", "set", tap, "up");
    return tap;
  }

  /**
   * Creates namespace {@code other} joined to the bridge by a veth pair, whose end in {@code other}
   * is {@code ifname} with {@code cidr} ({@code 10.77.0.2/24}): a server's host on the lab network.
   * It is deleted before this network's own namespace.
   */
  public void join(String other, String ifname, String cidr) throws IOException {
    Host.run("ip", "netns", "add", other);
    teardown.push(() -> Host.run("ip", "netns", "del", other));
    Host.run("ip", "-n", other, "link", "set", "lo", "up");
    String bridgeEnd = "veth-" + Integer.toHexString(other.hashCode());
    ip("link", "add", bridgeEnd, "type", "veth", "peer", "name", ifname, "netns", other);
    ip("link", "set", bridgeEnd, "master", "br0");
    ip("link", "set", bridgeEnd, "up");
    Host.run("ip", "-n", other, "addr", "add", cidr, "dev", ifname);
    Host.run("ip", "-n", other, "link", "set", ifname, "up");
  }

  /**
   * Starts dnsmasq on the bridge as the site's DHCP server, as ./lab runs it: addresses from {@code
   * .100} to {@code .199}, router advertisements only for IPv6 (so that iPXE does not wait for a
   * router), no ping before an offer, and no option 175.176, which would make iPXE ignore every
   * proxyDHCP offer; {@code fixed} maps a MAC to the address it always gets. Its log is {@link #log
   * log("dnsmasq")}.
   */
  public Process startDhcp(Map<String, String> fixed) throws IOException {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--user=root",
                "--port=0",
                "--interface=br0",
                "--bind-interfaces",
                "--dhcp-range=" + subnet + ".100," + subnet + ".199,1h",
                "--dhcp-range=" + ula + ",ra-only",
                "--enable-ra",
                "--no-ping",
                "--log-dhcp",
                "--log-facility=-",
                "--dhcp-leasefile=" + dir.resolve("dnsmasq.leases"),
                "--pid-file=" + dir.resolve("dnsmasq.pid")));
    fixed.forEach((mac, address) -> cmd.add("--dhcp-host=" + mac + "," + address));
    return spawn("dnsmasq", namespace, cmd);
  }

  /**
   * Starts {@code command} in namespace {@code in} (this network's or one {@link #join joined} to
   * it), its output in {@link #log log(name)}; stopped by {@link #close()}.
   */
  public Process spawn(String name, String in, List<String> command) throws IOException {
    List<String> full = new ArrayList<>(List.of("ip", "netns", "exec", in));
    full.addAll(command);
    Process p =
        new ProcessBuilder(full)
            .redirectErrorStream(true)
            .redirectOutput(log(name).toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .start();
    teardown.push(() -> stop(p));
    return p;
  }

  /** A machine on this network: on tap {@code tap-<name>}, its QEMU in this namespace. */
  public Machine.Builder machine(String name) throws IOException {
    return Machine.builder(name, dir).on(this, tap(name));
  }

  /** Stops {@code machine} with this network at the latest. */
  void own(Machine machine) {
    teardown.push(machine::close);
  }

  /** The log of process {@code name}. */
  public Path log(String name) {
    return dir.resolve(name + ".log");
  }

  /** A log's text so far; empty when there is none. */
  public static String read(Path file) {
    try {
      return Files.exists(file) ? Files.readString(file, StandardCharsets.ISO_8859_1) : "";
    } catch (IOException e) {
      return "(" + e + ")";
    }
  }

  /** Every log of this lab, without terminal escapes: what a human needs when a boot fails. */
  public String dump() {
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

  private void ip(String... args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of("ip", "-n", namespace));
    cmd.addAll(List.of(args));
    Host.run(cmd.toArray(String[]::new));
  }

  static void stop(Process p) throws InterruptedException {
    p.destroy();
    if (!p.waitFor(5, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      p.waitFor(5, TimeUnit.SECONDS);
    }
  }

  private void closeAfter(Throwable failure) {
    try {
      close();
    } catch (Exception e) {
      failure.addSuppressed(e);
    }
  }

  /** Stops every machine and process, then deletes the namespaces; newest first. */
  @Override
  public void close() throws Exception {
    teardown.close();
  }
}
