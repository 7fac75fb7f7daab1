package io.chrootbooter.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Real namespaces, bridge, veth and processes; needs root and iproute2, skips otherwise. */
class LabNetworkTest {
  private static final String ID = Long.toString(ProcessHandle.current().pid());

  @TempDir Path dir;

  @BeforeEach
  void needsNamespaces() {
    Optional<String> why = Host.cannotMakeNamespaces();
    assumeTrue(why.isEmpty(), why.orElse(""));
  }

  private static List<String> namespaces() throws IOException {
    return Host.run("ip", "netns", "list").lines().map(l -> l.split(" ")[0]).toList();
  }

  @Test
  void aJoinedNamespaceReachesTheBridgeAndCloseRemovesEverything() throws Exception {
    assumeTrue(Host.onPath("busybox"), "busybox is not on the PATH (Debian: busybox-static)");
    String lan = "cbtk-lan-" + ID;
    String srv = "cbtk-srv-" + ID;
    Process pinger;
    try (LabNetwork net = LabNetwork.create(lan, "10.79.0", "fd79::", dir)) {
      net.join(srv, "eth-srv", "10.79.0.2/24");
      assertThat(net.tap("m1")).isEqualTo("tap-m1");
      assertThat(Host.run("ip", "-n", lan, "link", "show", "tap-m1")).contains("master br0");

      Process ping =
          net.spawn("ping", srv, List.of("busybox", "ping", "-c", "1", "-W", "5", net.gateway()));
      assertThat(ping.waitFor(20, TimeUnit.SECONDS)).isTrue();
      assertThat(LabNetwork.read(net.log("ping"))).contains("1 packets received");
      assertThat(ping.exitValue()).isZero();

      pinger = net.spawn("pinger", srv, List.of("busybox", "ping", net.gateway()));
      assertThat(namespaces()).contains(lan, srv);
    }

    assertThat(pinger.isAlive()).as("a process the lab started, after close").isFalse();
    assertThat(namespaces()).doesNotContain(lan, srv);
  }

  @Test
  void aLabThatFailsHalfWayLeavesNothing() throws Exception {
    String lan = "cbtk-bad-" + ID;

    assertThatThrownBy(() -> LabNetwork.create(lan, "10.79.300", "fd79::", dir))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("10.79.300.1/24");
    assertThat(namespaces()).doesNotContain(lan);
  }

  @Test
  void aLabItsJvmLeftWithoutClosingIsRemovedByTheShutdownHook() throws Exception {
    String lan = "cbtk-gone-" + ID;
    String seconds = Long.toString(100_000 + ProcessHandle.current().pid() % 100_000);
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Process child =
        new ProcessBuilder(
                java,
                "-cp",
                System.getProperty("java.class.path"),
                AbandonedLab.class.getName(),
                lan,
                dir.toString(),
                seconds)
            .redirectErrorStream(true)
            .start();
    String out = new String(child.getInputStream().readAllBytes());
    assertThat(child.waitFor(60, TimeUnit.SECONDS)).isTrue();

    assertThat(out).contains("lab " + lan + " up");
    assertThat(namespaces()).doesNotContain(lan);
    assertThat(Host.run("ps", "-eo", "args").lines()).doesNotContain("sleep " + seconds);
  }

  @Test
  void dnsmasqServesTheBridgeWithTheLabsFixedAddresses() throws Exception {
    assumeTrue(Host.onPath("dnsmasq"), "dnsmasq is not on the PATH (Debian: dnsmasq)");
    try (LabNetwork net = LabNetwork.create("cbtk-dhcp-" + ID, "10.79.0", "fd79::", dir)) {
      MachineDescription m = net.description();
      Process dnsmasq = net.startDhcp(Map.of(m.mac(1), net.address(1)));
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (!LabNetwork.read(net.log("dnsmasq")).contains("DHCP, IP range")
          && dnsmasq.isAlive()
          && System.nanoTime() < end) {
        Thread.sleep(100);
      }
      assertThat(LabNetwork.read(net.log("dnsmasq")))
          .contains("DHCP, IP range 10.79.0.100 -- 10.79.0.199");
    }
  }
}
