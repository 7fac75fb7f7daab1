package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.pivot.TestTarget;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A BootTest's commands through the whole agent daemon, for real on this host (as root, in the test
 * JVM's private mount namespace): the desired state on the stream carries them, the agent boots the
 * image, runs them once the target reports healthy and reports their results, which go with the
 * target at the next switch. Everything it mounts or starts is gone after each test.
 */
class AgentCommandChecksTest {
  @RegisterExtension static final TargetImages images = new TargetImages("cb-command-images");
  @RegisterExtension final AgentFixture agent = new AgentFixture("cb-commands");

  private static String run(long generation, String init, String url, String sha, String commands) {
    return String.format(
        "{\"action\":\"Run\",\"generation\":%d,\"image\":{\"name\":\"one\",\"url\":\"%s\","
            + "\"sha256\":\"%s\",\"format\":\"squashfs\",\"init\":\"%s\"},\"overlay\":\"tmpfs\""
            + "%s}",
        generation, url, sha, init, commands == null ? "" : ",\"commands\":" + commands);
  }

  @Test
  void theCommandsOfTheDesiredStateRunOnceHealthyAndTheirResultsAreReported() throws Exception {
    String url = agent.serve("one.squashfs", images.squashfs());
    agent.start(StandInOperator.MAC.toUpperCase(), null, Duration.ofSeconds(2), null);
    agent.push(
        run(
            1,
            "/sbin/init-healthy",
            url,
            images.squashfsSha(),
            "[{\"name\":\"marker\",\"run\":[\"cat\",\"/etc/marker\"],\"timeout\":\"10s\"},"
                + "{\"name\":\"fails\",\"run\":[\"sh\",\"-c\",\"echo no >&2; exit 4\"]}]"),
        1);
    JsonNode report =
        agent.awaitReport(
            r -> "Running".equals(r.path("phase").asText()) && r.path("commands").size() == 2);
    assertThat(report.path("healthy").asBoolean()).isTrue();
    JsonNode marker = report.path("commands").get(0);
    assertThat(marker.path("name").asText()).isEqualTo("marker");
    assertThat(marker.path("exitCode").asInt()).isZero();
    assertThat(marker.path("stdout").asText()).isEqualTo(TestTarget.MARKER + "\n");
    assertThat(marker.path("timedOut").asBoolean()).isFalse();
    JsonNode fails = report.path("commands").get(1);
    assertThat(fails.path("exitCode").asInt()).isEqualTo(4);
    assertThat(fails.path("stderr").asText()).isEqualTo("no\n");

    // A boot without commands reports none: the results went with the target.
    agent.push(run(2, "/sbin/init-healthy", url, images.squashfsSha(), null), 2);
    JsonNode next =
        agent.awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && r.path("appliedGeneration").asLong() == 2
                    && r.path("healthy").asBoolean());
    assertThat(next.has("commands")).isFalse();
  }
}
