package io.chrootbooter.agent.daemon;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.chrootbooter.agent.sys.LegacyIptables;
import io.chrootbooter.agent.sys.Nftables;
import io.chrootbooter.agent.sys.SyscallException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * The machine's network as the bootstrap had it before the first target, beyond the boot
 * interface's lease ({@link NetworkRestore} puts that back): the interfaces and whether each was
 * up, their addresses, the policy rules, the routes of every table, the nftables tables, the legacy
 * iptables tables and the sysctls under {@code net.}. Taken once, when the network is ready and
 * before any target runs, and kept in {@link #FILE} so that an agent init restarts puts back the
 * same state, not what a target left.
 *
 * <p>{@link #restore} makes the namespace match it again: interfaces a target created (veth,
 * bridge, vlan, macvlan, dummy, tunnels …) are deleted, unless they are devices (a NIC plugged in
 * meanwhile has {@code /sys/class/net/NAME/device}); rules, routes and addresses the snapshot does
 * not hold are deleted and those it holds but the namespace lost are added again; every nftables
 * table is deleted (the bootstrap has none: busybox has no nft, and tables of iptables-nft are
 * nftables tables); legacy iptables tables (x_tables, made by iptables-legacy, ip6tables-legacy or
 * arptables-legacy) a target left are emptied: no rules, no chains of their own, ACCEPT policies
 * ({@link LegacyIptables}); sysctls that differ are written back. Legacy ebtables (bridge) tables
 * are not seen: the kernel lists them nowhere, and the bootstrap's kernel registers them only when
 * a program asks for one (its {@code ebtable_*} modules).
 *
 * <p>Not restored, by design: the boot interface's IPv4 addresses and main-table routes (the
 * lease's, {@link NetworkRestore}), its IPv6 addresses (router advertisements add and renew them),
 * the IPv6 main and local tables (the kernel adds and removes their routes with links, addresses
 * and router advertisements), link-local IPv6 addresses, and the content of nftables tables the
 * bootstrap itself had (none in the bootstrap; where there were some, the ruleset is left alone and
 * a warning says so).
 *
 * @param links each interface and whether it was administratively up
 * @param addresses each interface's addresses ({@code 10.0.0.1/24}, {@code fd00::1/64}), without
 *     link-local IPv6 ones
 * @param rules4 IPv4 policy rules as {@code ip rule} prints them, whitespace collapsed
 * @param rules6 IPv6 policy rules
 * @param routes4 IPv4 routes of all tables as {@code ip route show table all} prints them
 * @param routes6 IPv6 routes of all tables
 * @param nftables the nftables tables ({@code ip nat}); empty in the bootstrap
 * @param iptables the legacy iptables tables ({@code ip_tables_names} …, as {@code ip filter})
 * @param sysctls the writable sysctls under {@code net.}
 */
record NetworkSnapshot(
    Map<String, Boolean> links,
    Map<String, List<String>> addresses,
    List<String> rules4,
    List<String> rules6,
    List<String> routes4,
    List<String> routes6,
    List<String> nftables,
    List<String> iptables,
    Map<String, String> sysctls) {
  private static final Logger LOG = Logger.getLogger(NetworkSnapshot.class);

  /** Where the bootstrap's agent keeps the snapshot across its restarts. */
  static final Path FILE = Path.of("/run/bootstrap/network-snapshot.json");

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern LINK = Pattern.compile("^[0-9]+: ([^:@ ]+)(?:@[^:]*)?: <([^>]*)>");
  private static final Pattern ADDRESS =
      Pattern.compile("^\\s+inet6? ([0-9a-fA-F.:]+/[0-9]{1,3})\\b");
  private static final Pattern SYSCTL = Pattern.compile("^(net\\.[^ =]+) = (.*)$");
  private static final Pattern RULE = Pattern.compile("^([0-9]+):\\s+(.*)$");

  /** Words of a route listing that state something about the route and are no arguments. */
  private static final Set<String> ROUTE_FLAGS =
      Set.of("linkdown", "dead", "offload", "trap", "pervasive", "notify", "rt_offload", "rt_trap");

  private static final List<String> IPTABLES =
      List.of("ip_tables_names", "ip6_tables_names", "arp_tables_names");

  NetworkSnapshot {
    links = Map.copyOf(links);
    addresses = Map.copyOf(addresses);
    rules4 = List.copyOf(rules4);
    rules6 = List.copyOf(rules6);
    routes4 = List.copyOf(routes4);
    routes6 = List.copyOf(routes6);
    nftables = List.copyOf(nftables);
    iptables = List.copyOf(iptables);
    sysctls = Map.copyOf(sysctls);
  }

  /** The namespace's state now. */
  static NetworkSnapshot take(NetworkCommands net) {
    List<String> nft = new ArrayList<>();
    try {
      Optional<Nftables> socket = Nftables.open(net.netns());
      if (socket.isPresent()) {
        try (Nftables n = socket.get()) {
          nft.addAll(n.tables());
        }
      }
    } catch (SyscallException e) {
      LOG.warnf("reading the nftables tables: %s", e.getMessage());
    }
    if (!nft.isEmpty()) {
      LOG.warnf(
          "the network had nftables tables before any target (%s): a return leaves the ruleset as"
              + " it is",
          String.join(", ", nft));
    }
    return new NetworkSnapshot(
        links(net),
        addresses(net),
        rules(net, "-4"),
        rules(net, "-6"),
        routes(net, "-4"),
        routes(net, "-6"),
        nft,
        iptables(net),
        sysctls(net));
  }

  /**
   * The snapshot in {@code file}, written by an earlier run of the agent in this bootstrap; else
   * one taken now and written there.
   */
  static NetworkSnapshot loadOrTake(Path file, NetworkCommands net) {
    if (Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
      try {
        NetworkSnapshot s = JSON.readValue(file.toFile(), NetworkSnapshot.class);
        LOG.debugf("network snapshot from %s (an earlier run of the agent)", file);
        return s;
      } catch (IOException | RuntimeException e) {
        LOG.warnf("%s is unreadable (%s): taking a new network snapshot", file, e.getMessage());
      }
    }
    NetworkSnapshot s = take(net);
    try {
      Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
      JSON.writeValue(tmp.toFile(), s);
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      LOG.warnf("cannot keep the network snapshot in %s: %s", file, e.getMessage());
    }
    return s;
  }

  /**
   * The part of the restore before the lease is applied again: interfaces, link states, nftables,
   * legacy iptables and rules.
   *
   * @param boot the boot interface (its link and addresses are the lease's business)
   * @param failed collects what could not be done
   */
  void restoreBeforeLease(NetworkCommands net, Optional<String> boot, List<String> failed) {
    // Interfaces first: their routes, addresses and sysctls go with them.
    Map<String, Boolean> now = links(net);
    for (String name : now.keySet()) {
      if (!links.containsKey(name) && !isDevice(name)) {
        net.run(new ArrayList<>(), "ip", List.of("link", "delete", "dev", name));
      }
    }
    Map<String, Boolean> after = links(net);
    for (String name : after.keySet()) {
      if (!links.containsKey(name) && !isDevice(name)) {
        failed.add("ip link delete dev " + name + ": still there");
      }
    }
    for (Map.Entry<String, Boolean> link : links.entrySet()) {
      String name = link.getKey();
      Boolean up = after.get(name);
      if (up != null && !up.equals(link.getValue()) && !boot.filter(name::equals).isPresent()) {
        net.run(failed, "ip", List.of("link", "set", "dev", name, link.getValue() ? "up" : "down"));
      }
    }
    if (nftables.isEmpty()) {
      try {
        Optional<Nftables> socket = Nftables.open(net.netns());
        if (socket.isPresent()) {
          try (Nftables n = socket.get()) {
            List<String> tables = n.tables();
            if (!tables.isEmpty()) {
              n.flush();
              LOG.infof("deleted the nftables tables a target left: %s", String.join(", ", tables));
            }
          }
        }
      } catch (SyscallException e) {
        failed.add("nftables: " + e.getMessage());
      }
    }
    // Legacy iptables tables a target made stay registered; emptied, they hold no rule, no chain
    // of their own and accept everything, as a namespace without them does.
    for (String table : iptables(net)) {
      if (iptables.contains(table)) {
        continue;
      }
      String[] familyAndName = table.split(" ", 2);
      Optional<LegacyIptables.Family> family = LegacyIptables.Family.named(familyAndName[0]);
      if (family.isEmpty()) {
        failed.add("legacy " + table + " table remains: a family the agent cannot empty");
        continue;
      }
      try {
        LegacyIptables.empty(net.netns(), family.get(), familyAndName[1]);
        LOG.infof("emptied the legacy iptables table a target left: %s", table);
      } catch (SyscallException | RuntimeException e) {
        failed.add("legacy iptables " + table + ": " + e.getMessage());
      }
    }
    restoreRules(net, "-4", rules4, failed);
    restoreRules(net, "-6", rules6, failed);
  }

  /**
   * The part after the lease is applied again: the addresses of the other interfaces, the routes of
   * every table but the lease's, and the sysctls.
   */
  void restoreAfterLease(
      NetworkCommands net, Optional<NetworkRestore.Lease> lease, List<String> failed) {
    Optional<String> boot = lease.map(NetworkRestore.Lease::iface);
    Map<String, List<String>> now = addresses(net);
    for (Map.Entry<String, List<String>> entry : now.entrySet()) {
      String dev = entry.getKey();
      if (boot.filter(dev::equals).isPresent() || !addresses.containsKey(dev)) {
        continue;
      }
      for (String a : entry.getValue()) {
        if (!addresses.get(dev).contains(a)) {
          net.run(failed, "ip", List.of("addr", "del", a, "dev", dev));
        }
      }
      for (String a : addresses.get(dev)) {
        if (!entry.getValue().contains(a)) {
          net.run(failed, "ip", List.of("addr", "add", a, "dev", dev));
        }
      }
    }
    restoreRoutes(net, "-4", routes4, lease, failed);
    restoreRoutes(net, "-6", routes6, lease, failed);
    // Last: some follow the links (the boot interface's MTU bounds net.ipv6.conf.eth0.mtu).
    restoreSysctls(net, failed);
  }

  private static void restoreRules(
      NetworkCommands net, String family, List<String> wanted, List<String> failed) {
    List<String> now = rules(net, family);
    for (String rule : now) {
      if (!wanted.contains(rule)) {
        net.run(failed, "ip", ruleArgs(family, "del", rule));
      }
    }
    for (String rule : wanted) {
      if (!now.contains(rule)) {
        net.run(failed, "ip", ruleArgs(family, "add", rule));
      }
    }
  }

  /**
   * {@code -4 rule del pref 100 from 10.1.0.0/16 lookup 100} for {@code 100: from … lookup 100}.
   */
  private static List<String> ruleArgs(String family, String verb, String rule) {
    Matcher m = RULE.matcher(rule);
    List<String> args = new ArrayList<>(List.of(family, "rule", verb));
    if (m.matches()) {
      args.addAll(List.of("pref", m.group(1)));
      args.addAll(List.of(m.group(2).split(" ")));
    } else {
      args.addAll(List.of(rule.split(" ")));
    }
    return args;
  }

  private static void restoreRoutes(
      NetworkCommands net,
      String family,
      List<String> wanted,
      Optional<NetworkRestore.Lease> lease,
      List<String> failed) {
    List<String> now = routes(net, family);
    for (String route : now) {
      if (!wanted.contains(route) && !leaseOwns(family, route, lease, true)) {
        net.run(failed, "ip", routeArgs(family, "del", route));
      }
    }
    List<String> after = routes(net, family);
    for (String route : wanted) {
      if (!after.contains(route) && !leaseOwns(family, route, lease, false)) {
        net.run(failed, "ip", routeArgs(family, "add", route));
      }
    }
  }

  /**
   * Whether the lease's restore, or the kernel after it, decides about {@code route}: IPv4 routes
   * of the main table through the boot interface ({@link NetworkRestore}), the IPv4 local table's
   * routes through it (the kernel derives them from its address: only those of other addresses go
   * when {@code deleting}), and IPv6's local table.
   */
  private static boolean leaseOwns(
      String family, String route, Optional<NetworkRestore.Lease> lease, boolean deleting) {
    List<String> words = List.of(route.split(" "));
    String table = after(words, "table").orElse("main");
    if (family.equals("-6")) {
      // The kernel's own IPv6 routes (link-local, multicast, router advertisements) come and go
      // with the links: only the tables of policy routing are the restore's.
      return table.equals("local") || table.equals("main");
    }
    if (lease.isEmpty() || !after(words, "dev").equals(Optional.of(lease.get().iface()))) {
      return false;
    }
    if (table.equals("main")) {
      return true;
    }
    if (!table.equals("local")) {
      return false;
    }
    if (!deleting) {
      return true;
    }
    NetworkRestore.Lease l = lease.get();
    String subnet = l.subnet();
    String network = subnet.substring(0, subnet.indexOf('/'));
    Set<String> own = Set.of(l.address(), network, broadcast(l));
    return words.size() > 1
        && (words.get(0).equals("local") || words.get(0).equals("broadcast"))
        && own.contains(words.get(1));
  }

  private static String broadcast(NetworkRestore.Lease l) {
    long a = 0;
    for (String octet : l.address().split("\\.")) {
      a = a << 8 | Integer.parseInt(octet);
    }
    long host = l.prefix() == 32 ? 0 : (0xffffffffL >>> l.prefix());
    long b = (a | host) & 0xffffffffL;
    return (b >> 24 & 255) + "." + (b >> 16 & 255) + "." + (b >> 8 & 255) + "." + (b & 255);
  }

  private static List<String> routeArgs(String family, String verb, String route) {
    List<String> args = new ArrayList<>(List.of(family, "route", verb));
    for (String w : route.split(" ")) {
      if (!ROUTE_FLAGS.contains(w)) {
        args.add(w);
      }
    }
    return args;
  }

  private void restoreSysctls(NetworkCommands net, List<String> failed) {
    // Some settings move others (net.ipv4.ip_forward sets every conf.*.forwarding): a second pass
    // puts back what the first one moved.
    Map<String, String> wrong = Map.of();
    for (int pass = 0; pass < 3; pass++) {
      Map<String, String> now = sysctls(net);
      wrong = new TreeMap<>();
      for (Map.Entry<String, String> s : sysctls.entrySet()) {
        String value = now.get(s.getKey());
        if (value != null && !value.equals(s.getValue())) {
          wrong.put(s.getKey(), s.getValue());
        }
      }
      if (wrong.isEmpty()) {
        return;
      }
      for (Map.Entry<String, String> s : wrong.entrySet()) {
        net.run(new ArrayList<>(), "sysctl", List.of("-w", s.getKey() + "=" + s.getValue()));
      }
    }
    Map<String, String> now = sysctls(net);
    for (String key : wrong.keySet()) {
      if (now.containsKey(key) && !now.get(key).equals(sysctls.get(key))) {
        failed.add("sysctl " + key + ": " + now.get(key) + ", not " + sysctls.get(key));
      }
    }
  }

  // ---- reading the namespace --------------------------------------------------------------

  /** Interface name -> administratively up, from {@code ip link show}. */
  static Map<String, Boolean> links(NetworkCommands net) {
    Map<String, Boolean> links = new LinkedHashMap<>();
    for (String line : net.output("ip", List.of("link", "show")).orElse("").split("\n")) {
      Matcher m = LINK.matcher(line);
      if (m.find()) {
        links.put(m.group(1), List.of(m.group(2).split(",")).contains("UP"));
      }
    }
    return links;
  }

  /** Interface name -> its addresses but link-local IPv6, from {@code ip addr show}. */
  static Map<String, List<String>> addresses(NetworkCommands net) {
    Map<String, List<String>> result = new LinkedHashMap<>();
    String dev = null;
    for (String line : net.output("ip", List.of("addr", "show")).orElse("").split("\n")) {
      Matcher link = LINK.matcher(line);
      if (link.find()) {
        dev = link.group(1);
        result.put(dev, new ArrayList<>());
        continue;
      }
      Matcher a = ADDRESS.matcher(line);
      if (dev != null && a.find() && !a.group(1).toLowerCase().startsWith("fe80:")) {
        result.get(dev).add(a.group(1));
      }
    }
    result.replaceAll((k, v) -> List.copyOf(v));
    return result;
  }

  private static List<String> rules(NetworkCommands net, String family) {
    Set<String> rules = new LinkedHashSet<>();
    for (String line : net.output("ip", List.of(family, "rule")).orElse("").split("\n")) {
      String l = line.strip().replaceAll("\\s+", " ");
      if (RULE.matcher(l).matches()) {
        rules.add(l);
      }
    }
    return List.copyOf(rules);
  }

  private static List<String> routes(NetworkCommands net, String family) {
    Set<String> routes = new LinkedHashSet<>();
    String out = net.output("ip", List.of(family, "route", "show", "table", "all")).orElse("");
    for (String line : out.split("\n")) {
      if (line.isBlank() || Character.isWhitespace(line.charAt(0))) {
        continue; // a multipath route's next hops
      }
      routes.add(line.strip().replaceAll("\\s+expires\\s+\\S+", "").replaceAll("\\s+", " "));
    }
    return List.copyOf(routes);
  }

  private static List<String> iptables(NetworkCommands net) {
    List<String> tables = new ArrayList<>();
    for (String file : IPTABLES) {
      String family = file.substring(0, file.indexOf('_')).replace("tables", "");
      try {
        for (String name : Files.readAllLines(net.procNet().resolve(file))) {
          if (!name.isBlank()) {
            tables.add(family + " " + name.strip());
          }
        }
      } catch (IOException absent) {
        // x_tables not loaded: no legacy tables of this family
      }
    }
    return List.copyOf(tables);
  }

  /** The writable sysctls under {@code net.}, from {@code sysctl net} (busybox: recursive). */
  static Map<String, String> sysctls(NetworkCommands net) {
    Map<String, String> values = new TreeMap<>();
    for (String line : net.outputAnyway("sysctl", List.of("net")).split("\n")) {
      Matcher m = SYSCTL.matcher(line);
      if (m.matches() && writable(m.group(1))) {
        values.put(m.group(1), m.group(2));
      }
    }
    return values;
  }

  /**
   * Whether the sysctl's file has an owner write bit (the same in every namespace); true when the
   * agent's own namespace has no such file (an interface only the other namespace has).
   */
  private static boolean writable(String key) {
    Path file = Path.of("/proc/sys", key.replace('.', '/'));
    try {
      return Files.getPosixFilePermissions(file).contains(PosixFilePermission.OWNER_WRITE);
    } catch (IOException | UnsupportedOperationException e) {
      return true;
    }
  }

  private static boolean isDevice(String name) {
    return Files.exists(Path.of("/sys/class/net", name, "device"));
  }

  private static Optional<String> after(List<String> words, String key) {
    int i = words.indexOf(key);
    return i >= 0 && i + 1 < words.size() ? Optional.of(words.get(i + 1)) : Optional.empty();
  }
}
