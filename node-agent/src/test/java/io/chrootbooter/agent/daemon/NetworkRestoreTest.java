package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The network restore after a return, for real: two throw-away network namespaces, each held by an
 * {@code unshare --net sleep} process of this test — the machine's, with its boot interface {@code
 * eth0}, and the router's at the other end of a veth pair, which also holds the operator's address
 * {@code 10.99.0.1}, reachable from the machine only through the default route. The bootstrap's
 * lease is set by the real {@code udhcpc.script} (busybox's ip, as in the bootstrap; its {@code
 * /run} a private tmpfs), then a "target" breaks the network with real ip(8) commands, and {@link
 * NetworkRestore} runs busybox ip inside the machine's namespace through nsenter(1). The kernel's
 * state is read back with {@code ip -json}; the namespaces end with their holders.
 */
class NetworkRestoreTest {
  private static final Path BUSYBOX = Path.of("/bin/busybox");
  private static final Path SCRIPT = Path.of("src/bootstrap/udhcpc.script");
  private static final String OPERATOR = "10.99.0.1";

  @TempDir Path temp;
  private final List<Process> holders = new ArrayList<>();
  private final ObjectMapper json = new ObjectMapper();
  private long machine;
  private long router;
  private Path leaseFile;

  @BeforeEach
  void namespaces() throws Exception {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")), "needs root: network namespaces");
    for (String tool : List.of("unshare", "nsenter", "ip")) {
      Assumptions.assumeTrue(onPath(tool), tool + " is not installed (util-linux, iproute2)");
    }
    Assumptions.assumeTrue(
        Files.isExecutable(BUSYBOX), "no /bin/busybox: apt-get install -y busybox-static");
    machine = holdNamespace();
    router = holdNamespace();
    in(
        machine,
        "ip",
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "gw0",
        "netns",
        "" + router);
    in(router, "ip", "link", "set", "lo", "up");
    in(router, "ip", "addr", "add", OPERATOR + "/32", "dev", "lo");
    in(router, "ip", "addr", "add", "10.77.0.1/24", "dev", "gw0");
    in(router, "ip", "link", "set", "gw0", "up");
    in(machine, "ip", "link", "set", "lo", "up");
    in(machine, "ip", "link", "set", "eth0", "up");
    leaseFile = temp.resolve("net.env");
    Files.writeString(leaseFile, bound("10.77.0.50"));
    // The kernel's own link-local IPv6 address (and its local route) once duplicate address
    // detection is over, so that it is part of every state the tests compare.
    await()
        .atMost(Duration.ofSeconds(10))
        .pollInterval(Duration.ofMillis(50))
        .until(
            () -> {
              String v6 = in(machine, "ip", "-6", "addr", "show", "dev", "eth0");
              return v6.contains("fe80::") && !v6.contains("tentative");
            });
  }

  @AfterEach
  void endNamespaces() throws InterruptedException {
    for (Process p : holders) {
      p.destroyForcibly();
      p.waitFor(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void aTargetThatRewiredTheNetworkLeavesTheLeaseBehindOnReturn() throws Exception {
    Snapshot leased = snapshot();
    assertThat(leased.addresses()).containsExactly("10.77.0.50/24 brd 10.77.0.255");
    assertThat(leased.routes())
        .containsExactlyInAnyOrder("default via 10.77.0.1", "10.77.0.0/24 src 10.77.0.50");
    assertThat(reachesOperator()).as("the bootstrap reaches the operator").isTrue();
    NetworkRestore restore = restoreFor(leaseFile);
    assertThat(restore.mtu()).hasValue(leased.mtu());

    // The target: its own static address, a route that takes the operator's network elsewhere,
    // another default route, jumbo frames, and the link down on its way out.
    in(machine, "ip", "addr", "flush", "dev", "eth0");
    in(machine, "ip", "addr", "add", "192.168.50.7/24", "dev", "eth0");
    in(machine, "ip", "addr", "add", "10.77.0.99/24", "dev", "eth0");
    in(machine, "ip", "route", "add", "10.99.0.0/16", "via", "192.168.50.1", "dev", "eth0");
    in(machine, "ip", "route", "add", "default", "via", "192.168.50.1", "dev", "eth0");
    in(machine, "ip", "link", "set", "dev", "eth0", "mtu", "1280");
    assertThat(reachesOperator()).as("the target cut the way to the operator").isFalse();
    in(machine, "ip", "link", "set", "dev", "eth0", "down");

    assertThat(restore.restore()).as("failed commands").isEmpty();

    assertThat(snapshot()).isEqualTo(leased);
    assertThat(reachesOperator()).as("the bootstrap reaches the operator again").isTrue();
    assertThat(restore.restore()).as("a second restore changes nothing").isEmpty();
    assertThat(snapshot()).isEqualTo(leased);
  }

  /** Deleting the subnet route alone leaves the gateway unreachable: the route is put back. */
  @Test
  void aTargetThatDeletedOnlyTheRoutesGetsThemBack() throws Exception {
    Snapshot leased = snapshot();
    NetworkRestore restore = restoreFor(leaseFile);
    in(machine, "ip", "route", "del", "default");
    in(machine, "ip", "route", "del", "10.77.0.0/24", "dev", "eth0");
    assertThat(snapshot().routes()).isEmpty();

    assertThat(restore.restore()).as("failed commands").isEmpty();

    assertThat(snapshot()).isEqualTo(leased);
    assertThat(reachesOperator()).isTrue();
  }

  /** udhcpc keeps running while a target runs; a lease it got since the agent started wins. */
  @Test
  void aLeaseRenewedWhileTheTargetRanIsTheOneRestored() throws Exception {
    NetworkRestore restore = restoreFor(leaseFile);
    Files.writeString(leaseFile, bound("10.77.0.51"));
    in(machine, "ip", "addr", "flush", "dev", "eth0");

    assertThat(restore.restore()).as("failed commands").isEmpty();

    Snapshot now = snapshot();
    assertThat(now.addresses()).containsExactly("10.77.0.51/24 brd 10.77.0.255");
    assertThat(now.routes())
        .containsExactlyInAnyOrder("default via 10.77.0.1", "10.77.0.0/24 src 10.77.0.51");
    assertThat(reachesOperator()).isTrue();
  }

  /** udhcpc got its lease only after the agent started (it goes on in the background). */
  @Test
  void aLeaseThatCameAfterTheAgentStartedIsRestored() throws Exception {
    Snapshot leased = snapshot();
    Path later = temp.resolve("later.env");
    NetworkRestore restore =
        NetworkRestore.fromLease(
                net(), Map.of(), Optional.of(later), Optional.of(NetworkSnapshot.take(net())))
            .orElseThrow();
    assertThat(restore.restore()).as("no lease yet: nothing to do, nothing fails").isEmpty();
    Files.copy(leaseFile, later);
    in(machine, "ip", "addr", "flush", "dev", "eth0");

    assertThat(restore.restore()).as("failed commands").isEmpty();

    assertThat(snapshot()).isEqualTo(leased);
    assertThat(reachesOperator()).isTrue();
  }

  /**
   * A target that steers the machine's traffic by every other means: an nftables rule redirecting
   * port 8080 (made with nft, else iptables-nft), a policy rule sending the operator's network to a
   * routing table of its own through a veth pair, a bridge and a macvlan (a vlan and a dummy too
   * where the kernel has them), the operator's address on lo, and {@code net.ipv4.ip_forward=1}.
   * After the return all of it is gone, and the operator's HTTP server, on the router's side,
   * answers again.
   */
  @Test
  void aTargetsFirewallPolicyRoutingInterfacesAndSysctlsAreGoneAfterTheReturn() throws Exception {
    boolean nft = onPath("nft");
    Assumptions.assumeTrue(onPath("curl"), "curl is not installed");
    Assumptions.assumeTrue(
        nft || onPath("iptables-nft"), "neither nft nor iptables-nft is installed (nftables)");
    serveOperator();
    NetworkRestore restore = restoreFor(leaseFile);
    Network before = network();
    assertThat(before.forward()).isEqualTo("0");
    assertThat(fetch()).as("the operator's HTTP server before the target").hasValue("operator");

    // The target.
    if (nft) {
      in(machine, "nft", "add table ip t");
      in(machine, "nft", "add chain ip t out { type nat hook output priority -100 ; }");
      in(machine, "nft", "add rule ip t out tcp dport 8080 redirect to :9");
    } else {
      in(
          machine,
          "iptables-nft",
          "-t",
          "nat",
          "-A",
          "OUTPUT",
          "-p",
          "tcp",
          "--dport",
          "8080",
          "-j",
          "REDIRECT",
          "--to-ports",
          "9");
    }
    in(machine, "ip", "link", "add", "tv0", "type", "veth", "peer", "name", "tv1");
    in(machine, "ip", "addr", "add", "192.168.50.2/24", "dev", "tv0");
    in(machine, "ip", "link", "set", "tv0", "up");
    in(machine, "ip", "link", "set", "tv1", "up");
    in(machine, "ip", "rule", "add", "to", "10.99.0.0/16", "lookup", "100", "pref", "100");
    in(
        machine,
        "ip",
        "route",
        "add",
        "10.99.0.0/16",
        "via",
        "192.168.50.1",
        "dev",
        "tv0",
        "table",
        "100");
    in(machine, "ip", "-6", "rule", "add", "to", "fd99::/16", "lookup", "100", "pref", "100");
    in(machine, "ip", "link", "add", "br-t", "type", "bridge");
    in(machine, "ip", "link", "add", "mv-t", "link", "eth0", "type", "macvlan");
    List<String> optional = new ArrayList<>();
    if (tryIn(
        machine, "ip", "link", "add", "link", "eth0", "name", "eth0.7", "type", "vlan", "id",
        "7")) {
      optional.add("eth0.7");
    }
    if (tryIn(machine, "ip", "link", "add", "dm-t", "type", "dummy")) {
      optional.add("dm-t");
    }
    in(machine, "ip", "addr", "add", OPERATOR + "/32", "dev", "lo");
    in(machine, "sysctl", "-w", "net.ipv4.ip_forward=1");
    Network changed = network();
    assertThat(changed.links()).contains("tv0", "tv1", "br-t", "mv-t").containsAll(optional);
    assertThat(changed.rules()).anyMatch(r -> r.contains("\"table\":\"100\""));
    assertThat(changed.forward()).isEqualTo("1");
    assertThat(changed.firewall()).isNotEmpty();
    assertThat(fetch()).as("the target cut the way to the operator").isEmpty();

    assertThat(restore.restore()).as("failed commands").isEmpty();

    Network after = network();
    assertThat(after.links()).as("interfaces").isEqualTo(before.links());
    assertThat(after.rules()).as("policy rules").isEqualTo(before.rules());
    assertThat(after.routes()).as("routes of all tables").isEqualTo(before.routes());
    assertThat(after.addresses()).as("addresses").isEqualTo(before.addresses());
    assertThat(after.firewall()).as("nftables ruleset").isEqualTo(before.firewall()).isEmpty();
    assertThat(after.forward()).as("net.ipv4.ip_forward").isEqualTo("0");
    assertThat(fetch()).as("the operator's HTTP server after the return").hasValue("operator");
    assertThat(restore.restore()).as("a second restore changes nothing").isEmpty();
    assertThat(network()).isEqualTo(after);
  }

  /**
   * A target using iptables-legacy (x_tables, not nftables): its rules, its chains and its DROP
   * policy are gone after the return, and the operator answers again.
   */
  @Test
  void legacyIptablesTablesAreEmptied() throws Exception {
    for (String tool : List.of("iptables-legacy", "iptables-legacy-save", "curl")) {
      Assumptions.assumeTrue(onPath(tool), tool + " is not installed");
    }
    serveOperator();
    NetworkRestore restore = restoreFor(leaseFile);
    Network before = network();
    in(machine, "iptables-legacy", "-N", "target-chain");
    in(
        machine,
        "iptables-legacy",
        "-A",
        "target-chain",
        "-p",
        "tcp",
        "--dport",
        "8080",
        "-j",
        "REJECT");
    in(machine, "iptables-legacy", "-A", "OUTPUT", "-j", "target-chain");
    in(
        machine,
        "iptables-legacy",
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "--dport",
        "8080",
        "-j",
        "REDIRECT",
        "--to-ports",
        "9");
    in(machine, "iptables-legacy", "-P", "FORWARD", "DROP");
    assertThat(fetch()).as("the target's firewall cut the way to the operator").isEmpty();

    assertThat(restore.restore()).as("failed commands").isEmpty();

    String save = in(machine, "iptables-legacy-save");
    assertThat(save.lines().filter(l -> l.startsWith("-A") || l.startsWith(":target")))
        .as("rules and chains of the target")
        .isEmpty();
    assertThat(save.lines().filter(l -> l.startsWith(":")))
        .as("built-in chains")
        .isNotEmpty()
        .allMatch(l -> l.matches(":[A-Z]+ ACCEPT .*"));
    assertThat(network()).isEqualTo(before);
    assertThat(fetch()).as("the operator's HTTP server after the return").hasValue("operator");
    assertThat(restore.restore()).as("a second restore changes nothing").isEmpty();
  }

  /**
   * A target using arptables-legacy: an OUTPUT policy of DROP and a chain of its own leave the
   * machine unable to resolve its gateway, so the operator is out of reach; after the return the
   * ARP table's rules and chains are gone, every chain accepts, and the operator answers again.
   */
  @Test
  void legacyArptablesTablesAreEmptied() throws Exception {
    for (String tool : List.of("arptables-legacy", "curl")) {
      Assumptions.assumeTrue(
          onPath(tool), tool + " is not installed (apt-get install arptables curl)");
    }
    serveOperator();
    NetworkRestore restore = restoreFor(leaseFile);
    Network before = network();
    in(machine, "arptables-legacy", "-N", "target-chain");
    in(machine, "arptables-legacy", "-A", "target-chain", "-j", "DROP");
    in(machine, "arptables-legacy", "-A", "INPUT", "-j", "target-chain");
    in(machine, "arptables-legacy", "-P", "OUTPUT", "DROP");
    in(machine, "ip", "neigh", "flush", "all");
    assertThat(fetch()).as("the target's ARP rules cut the way to the gateway").isEmpty();

    assertThat(restore.restore()).as("failed commands").isEmpty();

    // arptables-legacy-save lists through /usr/sbin/arptables, which may be the nft one.
    assertThat(in(machine, "arptables-legacy", "-L", "-n").lines().filter(l -> !l.isBlank()))
        .as("the ARP filter table: built-in chains accepting, no rule, no chain of the target")
        .containsExactly(
            "Chain INPUT (policy ACCEPT)",
            "Chain OUTPUT (policy ACCEPT)",
            "Chain FORWARD (policy ACCEPT)");
    assertThat(network()).isEqualTo(before);
    assertThat(fetch()).as("the operator's HTTP server after the return").hasValue("operator");
    assertThat(restore.restore()).as("a second restore changes nothing").isEmpty();
  }

  /**
   * An agent run outside the bootstrap (no {@code CB_NETWORK_READY}) takes no snapshot: the host's
   * own interfaces, rules and firewall are none of its business.
   */
  @Test
  void outsideTheBootstrapThereIsNoSnapshot() {
    NetworkRestore restore = NetworkRestore.fromLease(BUSYBOX, Map.of()).orElseThrow();
    assertThat(restore.awaitSnapshot()).isEmpty();
  }

  /** A snapshot kept in its file is the one a restarted agent uses, not the state it finds. */
  @Test
  void aRestartedAgentRestoresTheFirstSnapshot() throws Exception {
    Path file = temp.resolve("network-snapshot.json");
    NetworkSnapshot first = NetworkSnapshot.loadOrTake(file, net());
    assertThat(file).isRegularFile();
    in(machine, "ip", "link", "add", "tv0", "type", "veth", "peer", "name", "tv1");
    in(machine, "sysctl", "-w", "net.ipv4.ip_forward=1");

    NetworkSnapshot again = NetworkSnapshot.loadOrTake(file, net());

    assertThat(again).isEqualTo(first);
    assertThat(again.links()).doesNotContainKey("tv0");
    assertThat(again.sysctls()).containsEntry("net.ipv4.ip_forward", "0");
  }

  @Test
  void aLeaseMustHoldAnInterfaceAndAnAddress() {
    assertThat(NetworkRestore.Lease.of(Map.of())).isEmpty();
    assertThat(
            NetworkRestore.Lease.of(
                Map.of("CB_NET_IFACE", "eth0", "CB_NET_IP", "10.0.0.5; reboot")))
        .isEmpty();
    assertThat(NetworkRestore.Lease.of(Map.of("CB_NET_IFACE", "eth0", "CB_NET_IP", "10.0.0.256")))
        .isEmpty();
    assertThat(NetworkRestore.Lease.of(Map.of("CB_NET_IFACE", "eth0 up", "CB_NET_IP", "10.0.0.5")))
        .isEmpty();
    NetworkRestore.Lease lease =
        NetworkRestore.Lease.of(
                Map.of(
                    "CB_NET_IFACE", "enp1s0",
                    "CB_NET_IP", "172.20.5.9",
                    "CB_NET_MASK", "12",
                    "CB_NET_ROUTER", "not an address"))
            .orElseThrow();
    assertThat(lease.cidr()).isEqualTo("172.20.5.9/12");
    assertThat(lease.subnet()).isEqualTo("172.16.0.0/12");
    assertThat(lease.router()).isEmpty();
  }

  // ---- helpers --------------------------------------------------------------------------------

  /** What a user checks: addresses, main-table routes, MTU and link state of eth0. */
  record Snapshot(TreeSet<String> addresses, TreeSet<String> routes, int mtu, String flags) {}

  private Snapshot snapshot() throws Exception {
    JsonNode link = json.readTree(in(machine, "ip", "-json", "addr", "show", "dev", "eth0")).get(0);
    TreeSet<String> addresses = new TreeSet<>();
    for (JsonNode a : link.path("addr_info")) {
      if ("inet".equals(a.path("family").asText())) {
        addresses.add(
            a.path("local").asText()
                + "/"
                + a.path("prefixlen").asInt()
                + (a.has("broadcast") ? " brd " + a.path("broadcast").asText() : ""));
      }
    }
    TreeSet<String> routes = new TreeSet<>();
    for (JsonNode r : json.readTree(in(machine, "ip", "-json", "-4", "route", "show"))) {
      routes.add(
          r.path("dst").asText()
              + (r.has("gateway") ? " via " + r.path("gateway").asText() : "")
              + (r.has("prefsrc") ? " src " + r.path("prefsrc").asText() : "")
              + (r.path("dev").asText().equals("eth0") ? "" : " dev " + r.path("dev").asText()));
    }
    List<String> flags = new ArrayList<>();
    link.path("flags").forEach(f -> flags.add(f.asText()));
    return new Snapshot(
        addresses,
        routes,
        link.path("mtu").asInt(),
        flags.contains("UP") && flags.contains("LOWER_UP") ? "up" : "down: " + flags);
  }

  /** What a user checks after a return, with iproute2 and the nftables tools. */
  record Network(
      List<String> links,
      List<String> rules,
      List<String> routes,
      List<String> addresses,
      List<String> firewall,
      String forward) {}

  private Network network() throws Exception {
    List<String> links = new ArrayList<>();
    for (JsonNode l : json.readTree(in(machine, "ip", "-json", "link", "show"))) {
      links.add(l.path("ifname").asText());
    }
    List<String> rules = new ArrayList<>();
    for (String family : List.of("-4", "-6")) {
      for (JsonNode r : json.readTree(in(machine, "ip", "-json", family, "rule", "show"))) {
        rules.add(family + " " + r);
      }
    }
    List<String> routes = new ArrayList<>();
    for (String family : List.of("-4", "-6")) {
      for (JsonNode r :
          json.readTree(in(machine, "ip", "-json", family, "route", "show", "table", "all"))) {
        routes.add(family + " " + r);
      }
    }
    List<String> addresses = new ArrayList<>();
    for (JsonNode l : json.readTree(in(machine, "ip", "-json", "addr", "show"))) {
      for (JsonNode a : l.path("addr_info")) {
        addresses.add(l.path("ifname").asText() + " " + a.path("local").asText());
      }
    }
    String rules4 =
        onPath("nft") ? in(machine, "nft", "list", "ruleset") : in(machine, "iptables-nft-save");
    List<String> firewall = rules4.lines().filter(l -> !l.isBlank() && !l.startsWith("#")).toList();
    String forward = in(machine, "cat", "/proc/sys/net/ipv4/ip_forward").strip();
    return new Network(
        List.copyOf(new TreeSet<>(links)),
        rules,
        List.copyOf(new TreeSet<>(routes)),
        List.copyOf(new TreeSet<>(addresses)),
        firewall,
        forward);
  }

  /** busybox httpd on the operator's address, port 8080, in the router's namespace. */
  private void serveOperator() throws Exception {
    Path www = Files.createDirectories(temp.resolve("www"));
    Files.writeString(www.resolve("index.html"), "operator");
    Process httpd =
        new ProcessBuilder(
                nsenter(
                    router,
                    BUSYBOX.toString(),
                    "httpd",
                    "-f",
                    "-p",
                    OPERATOR + ":8080",
                    "-h",
                    www.toString()))
            .redirectErrorStream(true)
            .start();
    holders.add(httpd);
    await()
        .atMost(Duration.ofSeconds(10))
        .pollInterval(Duration.ofMillis(50))
        .until(
            () -> {
              assertThat(httpd.isAlive()).as("busybox httpd").isTrue();
              return in(router, "cat", "/proc/net/tcp").contains(":1F90 00000000:0000 0A");
            });
  }

  /** The page the operator's HTTP server serves, fetched from the machine; empty when it fails. */
  private Optional<String> fetch() throws Exception {
    Process p =
        new ProcessBuilder(
                nsenter(
                    machine,
                    "curl",
                    "-sS",
                    "--max-time",
                    "3",
                    "http://" + OPERATOR + ":8080/index.html"))
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    return p.waitFor() == 0 ? Optional.of(out) : Optional.empty();
  }

  private static boolean tryIn(long pid, String... command) throws Exception {
    Process p = new ProcessBuilder(nsenter(pid, command)).redirectErrorStream(true).start();
    p.getInputStream().readAllBytes();
    return p.waitFor() == 0;
  }

  private boolean reachesOperator() throws Exception {
    Process p =
        new ProcessBuilder(
                nsenter(machine, BUSYBOX.toString(), "ping", "-c", "1", "-W", "2", OPERATOR))
            .redirectErrorStream(true)
            .start();
    p.getInputStream().readAllBytes();
    return p.waitFor() == 0;
  }

  private NetworkRestore restoreFor(Path lease) throws IOException {
    return NetworkRestore.fromLease(
            net(),
            NetworkRestore.readEnv(lease),
            Optional.of(lease),
            Optional.of(NetworkSnapshot.take(net())))
        .orElseThrow();
  }

  /** busybox's ip and sysctl, and netlink, in the machine's namespace. */
  private NetworkCommands net() {
    return NetworkCommands.of(machine, BUSYBOX);
  }

  /**
   * Runs the bootstrap's {@code udhcpc.script bound} in the machine's namespace as udhcpc would for
   * a lease of {@code ip}: busybox's ip first on the PATH, a private tmpfs on {@code /run} (the
   * script writes {@code /run/bootstrap/net.env} and {@code /run/resolv.conf}).
   *
   * @return the {@code net.env} it wrote
   */
  private String bound(String ip) throws Exception {
    Path bin = Files.createDirectories(temp.resolve("bin"));
    if (!Files.exists(bin.resolve("ip"))) {
      Files.createSymbolicLink(bin.resolve("ip"), BUSYBOX);
    }
    ProcessBuilder pb =
        new ProcessBuilder(
            nsenter(
                machine,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                "mount -t tmpfs cb-run /run && mkdir /run/bootstrap && sh \"$0\" bound >&2"
                    + " && cat /run/bootstrap/net.env",
                SCRIPT.toAbsolutePath().toString()));
    Map<String, String> env = pb.environment();
    env.put("PATH", bin + ":" + env.get("PATH"));
    env.putAll(
        Map.of(
            "interface", "eth0",
            "ip", ip,
            "mask", "24",
            "broadcast", "10.77.0.255",
            "router", "10.77.0.1",
            "dns", "10.77.0.1",
            "serverid", "10.77.0.1",
            "lease", "3600"));
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor()).as("udhcpc.script bound: %s", err).isZero();
    assertThat(out).contains("CB_NET_IP='" + ip + "'");
    return out;
  }

  /** Starts {@code unshare --net sleep}: its network namespace lives as long as it does. */
  private long holdNamespace() throws Exception {
    Process p = new ProcessBuilder("unshare", "--net", "sleep", "3600").start();
    holders.add(p);
    String own = Files.readSymbolicLink(Path.of("/proc/self/ns/net")).toString();
    Path ns = Path.of("/proc", Long.toString(p.pid()), "ns/net");
    // unshare(1) execs sleep in the new namespace: wait until the process is in it.
    await()
        .atMost(Duration.ofSeconds(10))
        .pollInterval(Duration.ofMillis(10))
        .until(
            () -> {
              assertThat(p.isAlive()).as("unshare --net sleep").isTrue();
              return !Files.readSymbolicLink(ns).toString().equals(own);
            });
    return p.pid();
  }

  private static List<String> nsenter(long pid, String... command) {
    List<String> c = new ArrayList<>(List.of("nsenter", "--net=/proc/" + pid + "/ns/net"));
    c.addAll(List.of(command));
    return c;
  }

  /** Runs {@code command} in the namespace of {@code pid}; its output; fails on a failure. */
  private static String in(long pid, String... command) throws Exception {
    Process p = new ProcessBuilder(nsenter(pid, command)).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor()).as("%s: %s", String.join(" ", command), out).isZero();
    return out;
  }

  private static boolean onPath(String tool) {
    return Stream.of(System.getenv("PATH").split(":"))
        .anyMatch(dir -> Files.isExecutable(Path.of(dir, tool)));
  }
}
