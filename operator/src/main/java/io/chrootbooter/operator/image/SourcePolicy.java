package io.chrootbooter.operator.image;

import io.chrootbooter.operator.OperatorConfig;
import io.quarkus.runtime.Startup;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;

/**
 * Which addresses image sources may be fetched from. A source host is resolved before every request
 * — the first one and every redirect hop — and refused when any of its addresses is refused: an
 * address in {@code cb.store.allowed-sources} is allowed; otherwise loopback, link-local,
 * unspecified and multicast addresses, the operator's own addresses, the cluster's pod and Service
 * networks ({@link ClusterNetworks}) and the CIDRs of {@code cb.store.denied-sources} are refused,
 * and everything else (public and private addresses alike) is allowed.
 *
 * <p>The decision ({@link #refusal(InetAddress, List, List, List, Set)}) is a pure function of the
 * address and the lists; this class adds the resolution, the operator's addresses and the cluster's
 * networks. What a refusal says names the rule, never the address a host name resolved to.
 */
@Startup
@ApplicationScoped
public class SourcePolicy {
  private static final Logger LOG = Logger.getLogger(SourcePolicy.class);

  /** Why an address is refused; {@link #toString()} is what a status message says. */
  public enum Rule {
    LOOPBACK("loopback"),
    LINK_LOCAL("link-local"),
    UNSPECIFIED("unspecified"),
    MULTICAST("multicast"),
    OPERATOR("an address of the operator itself"),
    CLUSTER("the cluster's pod or Service network"),
    DENIED("cb.store.denied-sources");

    private final String text;

    Rule(String text) {
      this.text = text;
    }

    @Override
    public String toString() {
      return text;
    }
  }

  /** A block of addresses: {@code 10.0.0.0/8}, {@code fd00::/8}, or one address. */
  public record Cidr(byte[] network, int prefix, String text) {
    private static final Pattern SHAPE =
        Pattern.compile("^(\\d{1,3}(\\.\\d{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)(/\\d{1,3})?$");

    /**
     * Parses {@code 10.0.0.0/8}, {@code fe80::/10} or a lone address (its own /32 or /128); the
     * host bits must be zero. Only literal addresses: nothing is looked up.
     */
    public static Cidr parse(String text) {
      String t = text.strip();
      if (!SHAPE.matcher(t).matches()) {
        throw new IllegalArgumentException(
            "\"" + text + "\" is not a CIDR (such as 10.0.0.0/8, fd00::/8 or 192.0.2.7)");
      }
      int slash = t.indexOf('/');
      String literal = slash < 0 ? t : t.substring(0, slash);
      byte[] network;
      if (literal.contains(":")) {
        try {
          // In brackets, InetAddress takes it as an IPv6 literal or fails: it never looks it up.
          network = InetAddress.getByName("[" + literal + "]").getAddress();
        } catch (UnknownHostException e) {
          throw new IllegalArgumentException(
              "\"" + text + "\" is not a CIDR (such as 10.0.0.0/8, fd00::/8 or 192.0.2.7)", e);
        }
      } else {
        String[] octets = literal.split("\\.");
        network = new byte[4];
        for (int i = 0; i < 4; i++) {
          int octet = Integer.parseInt(octets[i]);
          if (octet > 255) {
            throw new IllegalArgumentException(
                "\"" + text + "\" is not a CIDR (such as 10.0.0.0/8, fd00::/8 or 192.0.2.7)");
          }
          network[i] = (byte) octet;
        }
      }
      int bits = network.length * 8;
      int prefix = slash < 0 ? bits : Integer.parseInt(t.substring(slash + 1));
      if (prefix > bits) {
        throw new IllegalArgumentException(
            "\"" + text + "\": the prefix length is more than " + bits);
      }
      for (int i = prefix; i < bits; i++) {
        if ((network[i / 8] & (0x80 >>> (i % 8))) != 0) {
          throw new IllegalArgumentException(
              "\"" + text + "\": the address has bits set beyond the prefix /" + prefix);
        }
      }
      return new Cidr(network, prefix, t);
    }

    /** Whether {@code address} is in the block; IPv4 blocks hold only IPv4 addresses. */
    public boolean contains(InetAddress address) {
      byte[] a = address.getAddress();
      if (a.length != network.length) {
        return false;
      }
      for (int i = 0; i < prefix; i++) {
        int mask = 0x80 >>> (i % 8);
        if ((a[i / 8] & mask) != (network[i / 8] & mask)) {
          return false;
        }
      }
      return true;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Cidr c && prefix == c.prefix && Arrays.equals(network, c.network);
    }

    @Override
    public int hashCode() {
      return 31 * Arrays.hashCode(network) + prefix;
    }

    @Override
    public String toString() {
      return text;
    }
  }

  /** Resolves a host name to all of its addresses. */
  @FunctionalInterface
  interface Resolver {
    InetAddress[] resolve(String host) throws UnknownHostException;
  }

  private final List<Cidr> allowed;
  private final List<Cidr> denied;
  private final Supplier<List<Cidr>> cluster;
  private final Resolver resolver;

  @Inject
  SourcePolicy(OperatorConfig config, ClusterNetworks cluster) {
    this(
        parse("cb.store.allowed-sources", config.store().allowedSources().orElse(List.of())),
        parse("cb.store.denied-sources", config.store().deniedSources().orElse(List.of())),
        cluster::current,
        InetAddress::getAllByName);
    if (!allowed.isEmpty() || !denied.isEmpty()) {
      LOG.infof(
          "Image sources: allowed besides the defaults %s (cb.store.allowed-sources), refused"
              + " besides the defaults %s (cb.store.denied-sources)",
          allowed, denied);
    }
  }

  SourcePolicy(
      List<Cidr> allowed, List<Cidr> denied, Supplier<List<Cidr>> cluster, Resolver resolver) {
    this.allowed = List.copyOf(allowed);
    this.denied = List.copyOf(denied);
    this.cluster = cluster;
    this.resolver = resolver;
  }

  /**
   * Why an address is refused, or empty when it is allowed: {@code allowed} first, then the fixed
   * rules, then {@code own} (the operator's addresses), then {@code cluster} (the pod and Service
   * networks), then {@code denied}.
   */
  public static Optional<Rule> refusal(
      InetAddress address,
      List<Cidr> allowed,
      List<Cidr> cluster,
      List<Cidr> denied,
      Set<InetAddress> own) {
    if (address instanceof Inet6Address v6 && embeddedIpv4(v6) != null) {
      // ::a.b.c.d (IPv4-compatible) reaches the IPv4 address on some stacks: judge that one.
      // (::ffff:a.b.c.d is an Inet4Address already.)
      return refusal(embeddedIpv4(v6), allowed, cluster, denied, own);
    }
    if (allowed.stream().anyMatch(c -> c.contains(address))) {
      return Optional.empty();
    }
    Optional<Rule> fixed = fixedRule(address);
    if (fixed.isPresent()) {
      return fixed;
    }
    if (own.contains(address)) {
      return Optional.of(Rule.OPERATOR);
    }
    if (cluster.stream().anyMatch(c -> c.contains(address))) {
      return Optional.of(Rule.CLUSTER);
    }
    if (denied.stream().anyMatch(c -> c.contains(address))) {
      return Optional.of(Rule.DENIED);
    }
    return Optional.empty();
  }

  private static Optional<Rule> fixedRule(InetAddress address) {
    if (address.isLoopbackAddress()) {
      return Optional.of(Rule.LOOPBACK);
    }
    if (address.isLinkLocalAddress()) {
      return Optional.of(Rule.LINK_LOCAL);
    }
    // 0.0.0.0/8 ("this network"): a connection to 0.0.0.0 reaches the local host on Linux.
    if (address.isAnyLocalAddress()
        || (address instanceof Inet4Address && address.getAddress()[0] == 0)) {
      return Optional.of(Rule.UNSPECIFIED);
    }
    if (address.isMulticastAddress()) {
      return Optional.of(Rule.MULTICAST);
    }
    return Optional.empty();
  }

  /**
   * The IPv4 address of an IPv4-compatible {@code ::a.b.c.d}, except {@code ::} and {@code ::1}.
   */
  private static InetAddress embeddedIpv4(Inet6Address v6) {
    byte[] b = v6.getAddress();
    for (int i = 0; i < 12; i++) {
      if (b[i] != 0) {
        return null;
      }
    }
    if (b[12] == 0 && b[13] == 0 && b[14] == 0 && (b[15] & 0xff) <= 1) {
      return null;
    }
    try {
      return InetAddress.getByAddress(Arrays.copyOfRange(b, 12, 16));
    } catch (UnknownHostException e) {
      throw new IllegalStateException("four bytes are an IPv4 address", e);
    }
  }

  /**
   * Resolves {@code host} (a name, or a literal address) and judges each of its addresses: the rule
   * that refuses one of them, or empty when all are allowed. A name that does not resolve is an
   * IOException, retried like a connection that failed.
   */
  Optional<Rule> check(String host) throws IOException {
    InetAddress[] addresses;
    try {
      addresses = resolver.resolve(host);
    } catch (UnknownHostException e) {
      throw new IOException("the host " + host + " cannot be resolved", e);
    }
    Set<InetAddress> own = ownAddresses();
    List<Cidr> clusterNetworks = cluster.get();
    for (InetAddress a : addresses) {
      Optional<Rule> rule = refusal(a, allowed, clusterNetworks, denied, own);
      if (rule.isPresent()) {
        return rule;
      }
    }
    return Optional.empty();
  }

  /** The addresses of the operator's network interfaces (in a pod: the pod's addresses). */
  static Set<InetAddress> ownAddresses() {
    try {
      return NetworkInterface.networkInterfaces()
          .flatMap(NetworkInterface::inetAddresses)
          .collect(Collectors.toCollection(HashSet::new));
    } catch (SocketException e) {
      LOG.warnf("Cannot list the operator's own addresses: %s", e.getMessage());
      return Set.of();
    }
  }

  private static List<Cidr> parse(String setting, List<String> values) {
    List<Cidr> cidrs = new ArrayList<>();
    for (String v : values) {
      if (v.isBlank()) {
        continue;
      }
      try {
        cidrs.add(Cidr.parse(v));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(setting + ": " + e.getMessage(), e);
      }
    }
    return cidrs;
  }
}
