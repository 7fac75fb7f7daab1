package io.chrootbooter.agent.daemon;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * Puts the bootstrap's network back after a target ran. The target shares the machine's network
 * namespace (it owns the real NIC), so it may have flushed or added addresses, taken the link down,
 * changed its MTU, deleted the subnet or default route or added routes of its own. The bootstrap
 * must reach the operator again, so the boot interface gets back exactly what the bootstrap's DHCP
 * client gave it ({@code udhcpc.script} records the lease as {@code CB_NET_*} in {@code
 * /run/bootstrap/net.env}):
 *
 * <ul>
 *   <li>the link up, with the MTU it had when the agent started;
 *   <li>the leased IPv4 address and its subnet route; every other IPv4 address on the interface is
 *       removed (a target's static address must not answer for the machine, nor clash with the
 *       address a DHCP server hands out next);
 *   <li>the lease's default route; every other IPv4 route of the main table through the interface
 *       is removed (a target's more specific route could send the operator's traffic elsewhere).
 * </ul>
 *
 * <p>What is right is left alone: {@code ip … replace} changes nothing that is as leased. The lease
 * is read again from {@code net.env} at each restore: udhcpc keeps running in the bootstrap while a
 * target runs and rewrites the file when it renews or gets a new lease. Everything else the target
 * may have changed (interfaces it created, policy rules, other routing tables, nftables, sysctls
 * under {@code net.}) goes back to the {@link NetworkSnapshot} taken before the first target.
 *
 * @param net how busybox's ip and sysctl reach the namespace: the agent's own on the bootstrap;
 *     tests enter a namespace of their own with {@code nsenter}
 * @param lease the lease when the agent started; empty when udhcpc had none yet (it goes on trying
 *     in the background and writes {@code net.env} once it has one)
 * @param leaseFile where the DHCP client records the current lease, read at each restore
 * @param mtu the boot interface's MTU when the agent started, before any target ran; empty when
 *     there was no lease then
 * @param snapshot the rest of the network before any target ran, taken in the background while the
 *     agent connects ({@link #awaitSnapshot} before the first target); empty outside the bootstrap
 */
record NetworkRestore(
    NetworkCommands net,
    Optional<Lease> lease,
    Optional<Path> leaseFile,
    OptionalInt mtu,
    CompletableFuture<Optional<NetworkSnapshot>> snapshot) {
  private static final Logger LOG = Logger.getLogger(NetworkRestore.class);

  /** Where {@code udhcpc.script} writes the lease (a fixed path there, whatever the agent's). */
  static final Path LEASE_FILE = Path.of("/run/bootstrap/net.env");

  /** How long the first target waits for the snapshot at most (it takes well under a second). */
  private static final Duration SNAPSHOT_WAIT = Duration.ofSeconds(60);

  private static final Pattern OCTET = Pattern.compile("25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]");
  private static final Pattern IPV4 =
      Pattern.compile("(?:" + OCTET + ")(?:\\.(?:" + OCTET + ")){3}");
  private static final Pattern INET = Pattern.compile("\\binet ([0-9.]+/[0-9]{1,2})\\b");
  private static final Pattern MTU = Pattern.compile("\\bmtu ([0-9]{2,6})\\b");
  private static final Pattern ENV_LINE = Pattern.compile("(CB_NET_[A-Z]+)='([^']*)'");

  /**
   * A DHCP lease as {@code udhcpc.script} records it.
   *
   * @param address the leased address, e.g. {@code 10.77.0.50}
   * @param prefix its prefix length, e.g. 24
   * @param router the default gateway, empty when the lease had none
   */
  record Lease(String iface, String address, int prefix, Optional<String> router) {
    /** From the {@code CB_NET_*} variables; empty when they hold no usable lease. */
    static Optional<Lease> of(Map<String, String> env) {
      String iface = env.getOrDefault("CB_NET_IFACE", "");
      String address = env.getOrDefault("CB_NET_IP", "");
      String mask = env.getOrDefault("CB_NET_MASK", "24");
      if (!iface.matches("[A-Za-z0-9_.:-]{1,15}") || !IPV4.matcher(address).matches()) {
        return Optional.empty();
      }
      int prefix = mask.matches("[0-9]{1,2}") ? Integer.parseInt(mask) : 24;
      String router = env.getOrDefault("CB_NET_ROUTER", "");
      return Optional.of(
          new Lease(
              iface,
              address,
              prefix > 32 ? 24 : prefix,
              IPV4.matcher(router).matches() ? Optional.of(router) : Optional.empty()));
    }

    /** {@code 10.77.0.50/24}. */
    String cidr() {
      return address + "/" + prefix;
    }

    /** The subnet, {@code 10.77.0.0/24}. */
    String subnet() {
      long a = 0;
      for (String octet : address.split("\\.")) {
        a = a << 8 | Integer.parseInt(octet);
      }
      long net = prefix == 0 ? 0 : a & (0xffffffffL << (32 - prefix)) & 0xffffffffL;
      return (net >> 24 & 255)
          + "."
          + (net >> 16 & 255)
          + "."
          + (net >> 8 & 255)
          + "."
          + (net & 255)
          + "/"
          + prefix;
    }
  }

  /**
   * For the bootstrap: busybox's ip and sysctl, the lease of {@code env}, {@link #LEASE_FILE} and
   * the {@link NetworkSnapshot} of {@link NetworkSnapshot#FILE} (taken now, in the background, if
   * no earlier run of the agent took it: it costs a fraction of a second under emulation, which the
   * agent's first report need not wait for). Where there is no lease at any return (a host that is
   * no bootstrap), the boot interface is not touched. Only in the bootstrap ({@code
   * CB_NETWORK_READY} set, as {@code agent.conf} does) is the rest of the network snapshotted and
   * restored: an agent run on a workstation must not delete the interfaces or firewall tables its
   * host made meanwhile.
   */
  static Optional<NetworkRestore> fromLease(Path busybox, Map<String, String> env) {
    NetworkCommands net = NetworkCommands.own(busybox);
    boolean bootstrap = !env.getOrDefault("CB_NETWORK_READY", "").isBlank();
    CompletableFuture<Optional<NetworkSnapshot>> snapshot =
        bootstrap
            ? CompletableFuture.supplyAsync(
                () -> Optional.of(NetworkSnapshot.loadOrTake(NetworkSnapshot.FILE, net)),
                r -> {
                  Thread t = new Thread(r, "cb-network-snapshot");
                  t.setDaemon(true);
                  t.start();
                })
            : CompletableFuture.completedFuture(Optional.empty());
    return fromLease(net, env, Optional.of(LEASE_FILE), snapshot);
  }

  /** The same with a snapshot taken already (or none). */
  static Optional<NetworkRestore> fromLease(
      NetworkCommands net,
      Map<String, String> env,
      Optional<Path> leaseFile,
      Optional<NetworkSnapshot> snapshot) {
    return fromLease(net, env, leaseFile, CompletableFuture.completedFuture(snapshot));
  }

  /**
   * With the lease of {@code env} and its interface's MTU now; empty when there is neither a lease
   * nor a lease file to read one from later.
   */
  static Optional<NetworkRestore> fromLease(
      NetworkCommands net,
      Map<String, String> env,
      Optional<Path> leaseFile,
      CompletableFuture<Optional<NetworkSnapshot>> snapshot) {
    Optional<Lease> lease = Lease.of(env);
    if (lease.isEmpty() && leaseFile.isEmpty()) {
      return Optional.empty();
    }
    OptionalInt mtu = OptionalInt.empty();
    if (lease.isPresent()) {
      Optional<String> link = net.output("ip", List.of("link", "show", "dev", lease.get().iface()));
      Matcher m = MTU.matcher(link.orElse(""));
      if (m.find()) {
        mtu = OptionalInt.of(Integer.parseInt(m.group(1)));
      }
    }
    return Optional.of(new NetworkRestore(net, lease, leaseFile, mtu, snapshot));
  }

  /** The lease recorded in {@code file}, if it holds one. */
  static Optional<Lease> readLease(Path file) {
    try {
      return Lease.of(readEnv(file));
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /** The {@code CB_NET_*='value'} lines of {@code net.env}. */
  static Map<String, String> readEnv(Path file) throws IOException {
    Map<String, String> env = new HashMap<>();
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      Matcher m = ENV_LINE.matcher(line.strip());
      if (m.matches()) {
        env.put(m.group(1), m.group(2));
      }
    }
    return env;
  }

  /**
   * Applies the snapshot and the lease again; a failing command is logged and the rest still run.
   *
   * @return the commands that failed, with what they printed; empty when all went well
   */
  List<String> restore() {
    Optional<Lease> current = leaseFile.flatMap(NetworkRestore::readLease).or(() -> lease);
    List<String> failed = new ArrayList<>();
    Optional<NetworkSnapshot> snapshot = awaitSnapshot();
    snapshot.ifPresent(s -> s.restoreBeforeLease(net, current.map(Lease::iface), failed));
    if (current.isEmpty()) {
      LOG.debug("no DHCP lease: the boot interface is not restored");
    } else {
      restoreLease(current.get(), failed);
    }
    snapshot.ifPresent(s -> s.restoreAfterLease(net, current, failed));
    if (!failed.isEmpty()) {
      LOG.warnf(
          "restoring the network of %s: %s",
          current.map(Lease::iface).orElse("the machine"), String.join("; ", failed));
    }
    return List.copyOf(failed);
  }

  /**
   * The snapshot, once taken: the agent waits for it before it enters the first target, so that it
   * holds nothing a target did.
   */
  Optional<NetworkSnapshot> awaitSnapshot() {
    try {
      return snapshot.get(SNAPSHOT_WAIT.toSeconds(), TimeUnit.SECONDS);
    } catch (ExecutionException | TimeoutException e) {
      LOG.warnf(
          "no network snapshot (%s): a return restores the boot interface only",
          e instanceof TimeoutException ? "not taken within " + SNAPSHOT_WAIT : e.getCause());
      return Optional.empty();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Optional.empty();
    }
  }

  /** The boot interface: link, MTU, the lease's address and main-table routes. */
  private void restoreLease(Lease l, List<String> failed) {
    String dev = l.iface();
    List<String> link = new ArrayList<>(List.of("link", "set", "dev", dev));
    if (lease.map(Lease::iface).filter(dev::equals).isPresent()) {
      // The MTU was read from this interface at start.
      mtu.ifPresent(m -> link.addAll(List.of("mtu", Integer.toString(m))));
    }
    link.add("up");
    run(link, failed);
    for (String address : addresses(dev)) {
      if (!address.equals(l.cidr())) {
        run(List.of("addr", "del", address, "dev", dev), failed);
      }
    }
    run(List.of("addr", "replace", l.cidr(), "broadcast", "+", "dev", dev), failed);
    // Not implied by the address: a target may have deleted the subnet route and left the
    // address, and without it the gateway is unreachable.
    run(
        List.of(
            "route",
            "replace",
            l.subnet(),
            "dev",
            dev,
            "proto",
            "kernel",
            "scope",
            "link",
            "src",
            l.address()),
        failed);
    for (List<String> route : foreignRoutes(l)) {
      run(route, failed);
    }
    l.router()
        .ifPresent(r -> run(List.of("route", "replace", "default", "via", r, "dev", dev), failed));
  }

  /** The IPv4 addresses on {@code dev}, as {@code a.b.c.d/n}. */
  private List<String> addresses(String dev) {
    List<String> addresses = new ArrayList<>();
    Matcher m =
        INET.matcher(net.output("ip", List.of("-4", "addr", "show", "dev", dev)).orElse(""));
    while (m.find()) {
      addresses.add(m.group(1));
    }
    return addresses;
  }

  /** {@code ip route del …} for every main-table IPv4 route through the interface not leased. */
  private List<List<String>> foreignRoutes(Lease l) {
    List<List<String>> deletes = new ArrayList<>();
    String routes = net.output("ip", List.of("-4", "route", "show", "dev", l.iface())).orElse("");
    for (String line : routes.split("\n")) {
      if (line.isBlank() || Character.isWhitespace(line.charAt(0))) {
        continue; // a multipath route's next hops
      }
      List<String> words = List.of(line.strip().split("\\s+"));
      String dest = words.get(0);
      Optional<String> via = after(words, "via");
      boolean leased =
          (dest + (dest.contains("/") || dest.equals("default") ? "" : "/32")).equals(l.subnet())
              || (dest.equals("default") && via.isPresent() && via.equals(l.router()));
      if (leased || !(dest.equals("default") || dest.matches("[0-9./]+"))) {
        continue;
      }
      List<String> delete = new ArrayList<>(List.of("route", "del", dest));
      via.ifPresent(v -> delete.addAll(List.of("via", v)));
      after(words, "metric").ifPresent(m -> delete.addAll(List.of("metric", m)));
      delete.addAll(List.of("dev", l.iface()));
      deletes.add(delete);
    }
    return deletes;
  }

  private static Optional<String> after(List<String> words, String key) {
    int i = words.indexOf(key);
    return i >= 0 && i + 1 < words.size() ? Optional.of(words.get(i + 1)) : Optional.empty();
  }

  private void run(List<String> args, List<String> failed) {
    net.run(failed, "ip", args);
  }
}
