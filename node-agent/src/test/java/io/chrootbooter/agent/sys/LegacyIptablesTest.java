package io.chrootbooter.agent.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Emptying legacy iptables tables against the kernel, in a throw-away network namespace held by an
 * {@code unshare --net sleep} of this test; iptables-legacy-save tells what is left.
 */
class LegacyIptablesTest {
  private Process holder;
  private Path netns;

  @BeforeEach
  void namespace() throws Exception {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")), "needs root: network namespaces");
    for (String tool : List.of("unshare", "nsenter", "iptables-legacy", "ip6tables-legacy")) {
      Assumptions.assumeTrue(onPath(tool), tool + " is not installed (util-linux, iptables)");
    }
    holder = new ProcessBuilder("unshare", "--net", "sleep", "3600").start();
    String own = Files.readSymbolicLink(Path.of("/proc/self/ns/net")).toString();
    netns = Path.of("/proc", Long.toString(holder.pid()), "ns/net");
    await()
        .atMost(Duration.ofSeconds(10))
        .pollInterval(Duration.ofMillis(10))
        .until(
            () -> {
              assertThat(holder.isAlive()).as("unshare --net sleep").isTrue();
              return !Files.readSymbolicLink(netns).toString().equals(own);
            });
  }

  @AfterEach
  void end() throws InterruptedException {
    if (holder != null) {
      holder.destroyForcibly();
      holder.waitFor(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void rulesChainsAndPoliciesOfBothFamiliesGo() throws Exception {
    run("iptables-legacy", "-N", "mine");
    run("iptables-legacy", "-A", "mine", "-p", "tcp", "--dport", "80", "-j", "DROP");
    run("iptables-legacy", "-A", "INPUT", "-j", "mine");
    run("iptables-legacy", "-P", "OUTPUT", "DROP");
    run(
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
    run("ip6tables-legacy", "-A", "OUTPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP");
    run("ip6tables-legacy", "-P", "INPUT", "DROP");

    LegacyIptables.empty(Optional.of(netns), LegacyIptables.Family.IPV4, "filter");
    LegacyIptables.empty(Optional.of(netns), LegacyIptables.Family.IPV4, "nat");
    LegacyIptables.empty(Optional.of(netns), LegacyIptables.Family.IPV6, "filter");

    for (String save : List.of(run("iptables-legacy-save"), run("ip6tables-legacy-save"))) {
      assertThat(save.lines().filter(l -> l.startsWith("-A") || l.startsWith(":mine")))
          .as("rules and chains of their own")
          .isEmpty();
      assertThat(save.lines().filter(l -> l.startsWith(":")))
          .isNotEmpty()
          .allMatch(l -> l.matches(":[A-Z]+ ACCEPT .*"), "every built-in chain accepts");
    }
    assertThat(run("iptables-legacy-save")).contains("*nat", "*filter");
  }

  @Test
  void arpRulesChainsAndPoliciesGo() throws Exception {
    Assumptions.assumeTrue(
        onPath("arptables-legacy"),
        "arptables-legacy is not installed (apt-get install arptables)");
    run("arptables-legacy", "-N", "mine");
    run("arptables-legacy", "-A", "mine", "-d", "10.0.0.1", "-j", "DROP");
    run("arptables-legacy", "-A", "INPUT", "-j", "mine");
    run("arptables-legacy", "-A", "OUTPUT", "-s", "10.0.0.2", "-j", "DROP");
    run("arptables-legacy", "-P", "FORWARD", "DROP");

    LegacyIptables.empty(Optional.of(netns), LegacyIptables.Family.ARP, "filter");

    // arptables-legacy-save lists through /usr/sbin/arptables, which may be the nft one.
    assertThat(run("arptables-legacy", "-L", "-n").lines().filter(l -> !l.isBlank()))
        .as("the ARP filter table: built-in chains accepting, nothing else")
        .containsExactly(
            "Chain INPUT (policy ACCEPT)",
            "Chain OUTPUT (policy ACCEPT)",
            "Chain FORWARD (policy ACCEPT)");
    assertThat(run("cat", "/proc/net/arp_tables_names").strip()).isEqualTo("filter");
  }

  @Test
  void aTableThatDoesNotExistIsAClearError() {
    assertThatThrownBy(
            () -> LegacyIptables.empty(Optional.of(netns), LegacyIptables.Family.IPV4, "cb-none"))
        .isInstanceOf(SyscallException.class)
        .hasMessage("getsockopt(ip cb-none, SO_GET_INFO): ENOENT");
    assertThatThrownBy(
            () ->
                LegacyIptables.empty(
                    Optional.of(netns), LegacyIptables.Family.IPV4, "x".repeat(32)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("1 to 31 bytes");
  }

  private String run(String... command) throws Exception {
    List<String> c = new ArrayList<>(List.of("nsenter", "--net=" + netns));
    c.addAll(List.of(command));
    Process p = new ProcessBuilder(c).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor()).as("%s: %s", String.join(" ", command), out).isZero();
    return out;
  }

  private static boolean onPath(String tool) {
    return Stream.of(System.getenv("PATH").split(":"))
        .anyMatch(dir -> Files.isExecutable(Path.of(dir, tool)));
  }
}
