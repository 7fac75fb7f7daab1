package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.pivot.Pty;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The whole agent with its console relay: a target's console output, recorded while it runs and up
 * to its power-off, reaches the operator over the agent's own connection ({@code POST …/console}),
 * one boot's log after the other.
 */
class ConsoleStreamingTest {
  @RegisterExtension
  static final TargetImages images =
      new TargetImages(
          "cb-stream-images",
          Map.of(
              "chatty",
              """
              trap 'echo "chatty init: powering off"; exit 0' USR2 TERM
              echo "chatty init: hello from $(cat /etc/marker)"
              echo "<4>WARNING: CPU: 0 PID: 1 at $(cat /etc/marker)" > /dev/kmsg
              echo ok > /run/booted
              while :; do sleep 1 & wait $!; done
              """));

  @RegisterExtension final AgentFixture agent = new AgentFixture("cb-stream");

  @Test
  void aBootsConsoleIsStreamedToTheOperatorUpToItsPowerOff() throws Exception {
    Pty console = agent.own(Pty.open());
    agent.targetConsole(console.slave());
    // The agent reads the kernel's log where its --dev says: the machine's own /dev/kmsg.
    Path kmsg = Path.of("/dev/kmsg");
    org.junit.jupiter.api.Assumptions.assumeTrue(
        Files.isReadable(kmsg), "/dev/kmsg is not readable here");
    Files.createSymbolicLink(
        Files.createDirectories(agent.temp().resolve("dev")).resolve("kmsg"), kmsg);
    String one = agent.serve("one.squashfs", images.squashfs());
    agent.start(StandInOperator.MAC, null, Duration.ofSeconds(5), null);
    agent.push(
        "{\"action\":\"Run\",\"generation\":1,\"image\":{\"name\":\"one\",\"url\":\""
            + one
            + "\",\"sha256\":\""
            + images.squashfsSha()
            + "\",\"format\":\"squashfs\",\"init\":\"/sbin/init-chatty\"},\"overlay\":\"tmpfs\"}",
        1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    List<JsonNode> chunks = agent.operator().consoleChunks;
    await()
        .atMost(Duration.ofSeconds(20))
        .untilAsserted(
            () -> assertThat(text(chunks)).contains("chatty init: hello from chroot-booter"));

    agent.push("{\"action\":\"Bootstrap\",\"generation\":2}", 2);
    await()
        .atMost(Duration.ofSeconds(20))
        .until(() -> !chunks.isEmpty() && chunks.get(chunks.size() - 1).path("ended").asBoolean());
    String bootId = Files.readString(Path.of("/proc/sys/kernel/random/boot_id")).strip();
    assertThat(chunks)
        .allSatisfy(
            c ->
                assertThat(c.path("boot").asText())
                    .isEqualTo(bootId + "-" + ProcessHandle.current().pid() + "-1"));
    assertThat(chunks).allSatisfy(c -> assertThat(c.path("image").asText()).isEqualTo(one));
    // Offsets follow each other: nothing lost, nothing sent twice.
    long next = 0;
    for (JsonNode c : chunks) {
      assertThat(c.path("offset").asLong()).isEqualTo(next);
      next += Base64.getDecoder().decode(c.path("data").asText()).length;
    }
    assertThat(text(chunks))
        .contains("chatty init: hello from chroot-booter-test-image\r\n")
        .containsPattern("\\] WARNING: CPU: 0 PID: 1 at chroot-booter-test-image\r\n")
        .endsWith("chatty init: powering off\r\n");
    // The kernel warning went out once (other lines of this machine's kernel may come too).
    List<String> warnings = new java.util.ArrayList<>();
    for (JsonNode c : chunks) {
      c.path("warnings").forEach(w -> warnings.add(w.asText()));
    }
    assertThat(warnings)
        .filteredOn(w -> w.contains("chroot-booter-test-image"))
        .containsExactly("WARNING: CPU: 0 PID: 1 at chroot-booter-test-image");
  }

  private static String text(List<JsonNode> chunks) {
    StringBuilder sb = new StringBuilder();
    for (JsonNode c : chunks) {
      sb.append(
          new String(Base64.getDecoder().decode(c.path("data").asText()), StandardCharsets.UTF_8));
    }
    return sb.toString();
  }
}
