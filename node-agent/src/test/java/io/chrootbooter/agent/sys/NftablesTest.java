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
 * The nftables netlink client against the kernel, in a throw-away network namespace held by an
 * {@code unshare --net sleep} of this test: the tables iptables-nft makes are listed as nft names
 * them and one flush deletes them all. Only the namespace's socket is made in it: the host's
 * ruleset is not touched.
 */
class NftablesTest {
  private Process holder;
  private Path netns;

  @BeforeEach
  void namespace() throws Exception {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")), "needs root: network namespaces");
    for (String tool : List.of("unshare", "nsenter", "iptables-nft")) {
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
  void listsTheTablesAndOneFlushDeletesThemAll() throws Exception {
    try (Nftables nft = Nftables.open(Optional.of(netns)).orElseThrow()) {
      assertThat(nft.tables()).as("a new namespace has no ruleset").isEmpty();
      nft.flush(); // nothing to delete: no error

      iptables(
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
      iptables("-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP");
      assertThat(nft.tables()).containsExactlyInAnyOrder("ip nat", "ip filter");
      if (onPath("ip6tables-nft")) {
        run("ip6tables-nft", "-A", "OUTPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP");
        assertThat(nft.tables()).contains("ip6 filter");
      }

      nft.flush();

      assertThat(nft.tables()).isEmpty();
      assertThat(run("iptables-nft-save")).doesNotContain("-A ");
    }
  }

  @Test
  void aNamespaceThatCannotBeEnteredIsAClearError() {
    Path notANamespace = Path.of("/proc/self/status");
    assertThatThrownBy(() -> Nftables.open(Optional.of(notANamespace)))
        .isInstanceOf(SyscallException.class)
        .hasMessage("setns(\"/proc/self/status\", CLONE_NEWNET): EINVAL");
  }

  private void iptables(String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of("iptables-nft"));
    command.addAll(List.of(args));
    run(command.toArray(String[]::new));
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
