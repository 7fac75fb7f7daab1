package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The agent starts before the bootstrap's network is up and waits for rc.sysinit's marker. */
class NetworkWaitTest {

  @TempDir Path temp;

  @Test
  void anAgentInTheBootstrapWaitsForTheNetworkReadyFile() throws Exception {
    Path ready = temp.resolve("network-ready");
    Map<String, String> env = Map.of("CB_NETWORK_READY", ready.toString(), "CB_MAC", "x");
    CompletableFuture<Map<String, String>> waited =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return Daemon.awaitNetwork(env);
              } catch (Exception e) {
                throw new IllegalStateException(e);
              }
            });
    Thread.sleep(300);
    assertThat(waited).as("no marker yet: the agent waits").isNotDone();
    Files.createFile(ready);
    Map<String, String> after = waited.get(5, TimeUnit.SECONDS);
    assertThat(after).containsAllEntriesOf(env);
  }

  @Test
  void anAgentOutsideTheBootstrapDoesNotWait() throws Exception {
    Map<String, String> env = Map.of("CB_MAC", "x");
    assertThat(Daemon.awaitNetwork(env)).as("no marker named: env as it is").isSameAs(env);
  }
}
