package io.chrootbooter.operator.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.operator.image.SourcePolicy.Cidr;
import io.chrootbooter.operator.image.SourcePolicy.Rule;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which source addresses the operator refuses, as a table of address, lists and verdict. */
class SourcePolicyTest {

  /** One row: the address, the allowed and denied CIDRs, the operator's addresses, the verdict. */
  record Row(String address, String allowed, String denied, String own, Rule expected) {}

  private static final Rule OK = null;

  private static final ClusterNetworks NO_CLUSTER =
      new ClusterNetworks(null, false, java.time.Clock.systemUTC());

  /** The cluster's networks among the other rules: address, allowed, cluster, denied, verdict. */
  record ClusterRow(String address, String allowed, String cluster, String denied, Rule expected) {}

  private static final List<ClusterRow> CLUSTER_TABLE =
      List.of(
          new ClusterRow("10.244.3.9", "", "10.244.0.0/16,10.96.0.0/12", "", Rule.CLUSTER),
          new ClusterRow("10.96.0.1", "", "10.244.0.0/16,10.96.0.0/12", "", Rule.CLUSTER),
          new ClusterRow("10.245.0.1", "", "10.244.0.0/16,10.96.0.0/12", "", OK),
          new ClusterRow("fd00:10:96::1", "", "fd00:10:96::/112", "", Rule.CLUSTER),
          // The cluster rule comes before denied-sources, after the fixed rules...
          new ClusterRow("10.96.0.1", "", "10.96.0.0/12", "10.96.0.0/12", Rule.CLUSTER),
          new ClusterRow("127.0.0.1", "", "127.0.0.0/8", "", Rule.LOOPBACK),
          // ...and allowed-sources opens an address in it, as it opens every other rule.
          new ClusterRow("10.244.3.9", "10.244.3.9", "10.244.0.0/16", "", OK));

  @Test
  void theClusterTable() throws UnknownHostException {
    for (ClusterRow row : CLUSTER_TABLE) {
      Optional<Rule> verdict =
          SourcePolicy.refusal(
              InetAddress.getByName(row.address()),
              cidrs(row.allowed()),
              cidrs(row.cluster()),
              cidrs(row.denied()),
              Set.of());
      assertThat(verdict).as(row.toString()).isEqualTo(Optional.ofNullable(row.expected()));
    }
  }

  private static final List<Row> TABLE =
      List.of(
          // The fixed rules.
          new Row("127.0.0.1", "", "", "", Rule.LOOPBACK),
          new Row("127.255.3.4", "", "", "", Rule.LOOPBACK),
          new Row("::1", "", "", "", Rule.LOOPBACK),
          new Row("::ffff:127.0.0.1", "", "", "", Rule.LOOPBACK),
          new Row("::127.0.0.1", "", "", "", Rule.LOOPBACK),
          new Row("169.254.169.254", "", "", "", Rule.LINK_LOCAL),
          new Row("169.254.0.1", "", "", "", Rule.LINK_LOCAL),
          new Row("fe80::1", "", "", "", Rule.LINK_LOCAL),
          new Row("febf::1", "", "", "", Rule.LINK_LOCAL),
          new Row("0.0.0.0", "", "", "", Rule.UNSPECIFIED),
          new Row("0.1.2.3", "", "", "", Rule.UNSPECIFIED),
          new Row("::", "", "", "", Rule.UNSPECIFIED),
          new Row("224.0.0.1", "", "", "", Rule.MULTICAST),
          new Row("239.255.255.250", "", "", "", Rule.MULTICAST),
          new Row("ff02::1", "", "", "", Rule.MULTICAST),
          // Private and public addresses are allowed by default.
          new Row("10.1.2.3", "", "", "", OK),
          new Row("172.16.0.1", "", "", "", OK),
          new Row("192.168.1.10", "", "", "", OK),
          new Row("fd00::1", "", "", "", OK),
          new Row("93.184.216.34", "", "", "", OK),
          new Row("2001:db8::1", "", "", "", OK),
          new Row("fec0::1", "", "", "", OK),
          // The operator's own addresses.
          new Row("10.244.1.7", "", "", "10.244.1.7", Rule.OPERATOR),
          new Row("10.244.1.8", "", "", "10.244.1.7", OK),
          new Row("fd00::7", "", "", "10.244.1.7,fd00::7", Rule.OPERATOR),
          // cb.store.denied-sources.
          new Row("10.96.0.1", "", "10.96.0.0/12", "", Rule.DENIED),
          new Row("10.111.255.255", "", "10.96.0.0/12", "", Rule.DENIED),
          new Row("10.112.0.1", "", "10.96.0.0/12", "", OK),
          new Row("10.244.3.9", "", "10.96.0.0/12,10.244.0.0/16", "", Rule.DENIED),
          new Row("fd12:3456::1", "", "fd12:3456::/32", "", Rule.DENIED),
          new Row("192.0.2.7", "", "192.0.2.7", "", Rule.DENIED),
          new Row("192.0.2.8", "", "192.0.2.7", "", OK),
          new Row("8.8.8.8", "", "0.0.0.0/0", "", Rule.DENIED),
          // An IPv4 block holds no IPv6 address, and the other way round; an IPv4-compatible
          // ::a.b.c.d is judged as a.b.c.d.
          new Row("fd00::1", "", "0.0.0.0/0", "", OK),
          new Row("10.0.0.1", "", "::/0", "", OK),
          new Row("::a00:1", "", "10.0.0.0/8", "", Rule.DENIED),
          new Row("::ffff:10.0.0.1", "", "10.0.0.0/8", "", Rule.DENIED),
          // A fixed rule names itself even when denied-sources holds the address too.
          new Row("127.0.0.1", "", "127.0.0.0/8", "", Rule.LOOPBACK),
          // cb.store.allowed-sources opens exactly what it names, over every other rule.
          new Row("127.0.0.2", "127.0.0.2/32", "", "", OK),
          new Row("127.0.0.1", "127.0.0.2/32", "", "", Rule.LOOPBACK),
          new Row("169.254.169.254", "169.254.169.254", "", "", OK),
          new Row("10.88.0.1", "10.88.0.1/32", "", "10.88.0.1", OK),
          new Row("10.96.0.10", "10.96.0.10/32", "10.96.0.0/12", "", OK),
          new Row("10.96.0.11", "10.96.0.10/32", "10.96.0.0/12", "", Rule.DENIED),
          new Row("::1", "127.0.0.0/8", "", "", Rule.LOOPBACK));

  @Test
  void theTable() throws UnknownHostException {
    for (Row row : TABLE) {
      Optional<Rule> verdict =
          SourcePolicy.refusal(
              InetAddress.getByName(row.address()),
              cidrs(row.allowed()),
              List.of(),
              cidrs(row.denied()),
              addresses(row.own()));
      assertThat(verdict).as(row.toString()).isEqualTo(Optional.ofNullable(row.expected()));
    }
  }

  @Test
  void cidrsAreLiteralAndExact() {
    assertThat(Cidr.parse("10.0.0.0/8").prefix()).isEqualTo(8);
    assertThat(Cidr.parse(" fe80::/10 ").prefix()).isEqualTo(10);
    assertThat(Cidr.parse("192.0.2.7").prefix()).isEqualTo(32);
    assertThat(Cidr.parse("2001:db8::1").prefix()).isEqualTo(128);
    assertThat(Cidr.parse("0.0.0.0/0").prefix()).isZero();
    Map<String, String> bad =
        Map.of(
            "10.0.0.0/33", "the prefix length is more than 32",
            "fe80::/129", "the prefix length is more than 128",
            "10.0.0.1/8", "the address has bits set beyond the prefix /8",
            "images.example", "is not a CIDR",
            "10.0.0/8", "is not a CIDR",
            "", "is not a CIDR",
            "10.0.0.0/", "is not a CIDR",
            "300.0.0.0/8", "is not a CIDR",
            "1:2:3:4:5:6:7:8:9/64", "is not a CIDR");
    bad.forEach(
        (text, message) ->
            assertThatThrownBy(() -> Cidr.parse(text))
                .as(text)
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(message));
  }

  @Test
  void aHostIsRefusedWhenAnyOfItsAddressesIs() throws IOException {
    Map<String, String[]> names =
        Map.of(
            "images.example", new String[] {"93.184.216.34", "2001:db8::1"},
            "rebound.example", new String[] {"93.184.216.34", "127.0.0.1"},
            "metadata.example", new String[] {"169.254.169.254"});
    SourcePolicy policy =
        new SourcePolicy(
            List.of(),
            cidrs("10.96.0.0/12"),
            List::of,
            host -> {
              String[] found = names.get(host);
              if (found == null) {
                throw new UnknownHostException(host);
              }
              InetAddress[] addresses = new InetAddress[found.length];
              for (int i = 0; i < found.length; i++) {
                addresses[i] = InetAddress.getByName(found[i]);
              }
              return addresses;
            });
    assertThat(policy.check("images.example")).isEmpty();
    assertThat(policy.check("rebound.example")).contains(Rule.LOOPBACK);
    assertThat(policy.check("metadata.example")).contains(Rule.LINK_LOCAL);
    assertThatThrownBy(() -> policy.check("nowhere.example"))
        .isInstanceOf(IOException.class)
        .hasMessage("the host nowhere.example cannot be resolved");
  }

  @Test
  void theOperatorsOwnAddressesAreRefused() throws IOException {
    Set<InetAddress> own = SourcePolicy.ownAddresses();
    InetAddress loopback = InetAddress.getByName("127.0.0.1");
    assertThat(own).contains(loopback);
    for (InetAddress a : own) {
      assertThat(SourcePolicy.refusal(a, List.of(), List.of(), List.of(), own))
          .as(a.toString())
          .isPresent();
    }
  }

  @Test
  void aBadCidrStopsTheOperatorNamingTheSetting(@TempDir Path dir) {
    assertThatThrownBy(
            () ->
                new SourcePolicy(
                    ImageStoreTest.config(dir, "cb.store.denied-sources", "10.96.0.0/12,pods"),
                    NO_CLUSTER))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "cb.store.denied-sources: \"pods\" is not a CIDR (such as 10.0.0.0/8, fd00::/8 or"
                + " 192.0.2.7)");
    assertThatThrownBy(
            () ->
                new SourcePolicy(
                    ImageStoreTest.config(dir, "cb.store.allowed-sources", "10.88.0.1/24"),
                    NO_CLUSTER))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "cb.store.allowed-sources: \"10.88.0.1/24\": the address has bits set beyond the"
                + " prefix /24");
  }

  @Test
  void settingsAreReadAsCommaSeparatedLists(@TempDir Path dir) throws IOException {
    SourcePolicy policy =
        new SourcePolicy(
            ImageStoreTest.config(
                dir,
                "cb.store.allowed-sources",
                "127.0.0.2/32,169.254.169.254",
                "cb.store.denied-sources",
                "192.0.2.0/24"),
            NO_CLUSTER);
    assertThat(policy.check("127.0.0.2")).isEmpty();
    assertThat(policy.check("169.254.169.254")).isEmpty();
    assertThat(policy.check("127.0.0.1")).contains(Rule.LOOPBACK);
    assertThat(policy.check("192.0.2.9")).contains(Rule.DENIED);
    assertThat(policy.check("198.51.100.1")).isEmpty();
  }

  private static List<Cidr> cidrs(String list) {
    return list.isEmpty() ? List.of() : Arrays.stream(list.split(",")).map(Cidr::parse).toList();
  }

  private static Set<InetAddress> addresses(String list) throws UnknownHostException {
    Set<InetAddress> set = new java.util.HashSet<>();
    for (String a : list.isEmpty() ? new String[0] : list.split(",")) {
      set.add(InetAddress.getByName(a));
    }
    return set;
  }
}
