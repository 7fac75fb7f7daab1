package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The boot flight recorder of a whole agent, for real on this host (as root, in the test JVM's
 * private mount namespace, targets in throw-away PID, mount and cgroup namespaces): a first boot, a
 * switch whose old image has to be killed after its grace period, and a return to the bootstrap,
 * each reported as a timeline in the agent's status reports; the switch's steps are all there, in
 * order, without a gap, and add up to the switch time the stand-in operator measured within 5 %.
 */
class FlightRecorderTest {
  @RegisterExtension static final TargetImages images = new TargetImages("cb-flight-images");
  @RegisterExtension final AgentFixture agent = new AgentFixture("cb-flight");

  @Test
  void aBootASwitchAndAReturnAreTimedStepByStep() throws Exception {
    String one = agent.serve("one.tar.zst", images.tarZst());
    String two = agent.serve("two.squashfs", images.squashfs());
    agent.start(StandInOperator.MAC.toUpperCase(), null, Duration.ofSeconds(2), null);

    // The first boot: an init that ignores the graceful signal and never reports healthy.
    agent.push(
        run(1, "one", one, images.tarZstSha(), "tar.zst", "/sbin/init-deaf", "SIGTERM", "10s"), 1);
    JsonNode booted =
        agent.awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && names(r.path("timelines").path(0)).contains("healthy"));
    JsonNode boot = booted.path("timelines").path(0);
    assertThat(names(boot)).containsExactlyElementsOf(FlightSteps.FIRST_BOOT);
    assertThat(boot.path("image").asText()).isEqualTo("one");
    assertThat(boot.has("trigger")).as("a first boot has no trigger").isFalse();
    assertThat(boot.has("result")).as("in progress until healthy").isFalse();
    assertThat(boot.path("steps").path(0).path("detail").asText()).startsWith("boot id ");
    assertThat(last(boot).has("seconds")).as("the step in progress").isFalse();

    // The switch: the new generation ends the old image, which is given its grace period and
    // killed; then the next image is fetched, mounted and entered. The stand-in measures up to
    // the report that says so, which may wait up to one report interval (200 ms) after the
    // switch ended: a 10 s grace period keeps that well within 5 %.
    long pushed = System.nanoTime();
    agent.push(
        run(2, "two", two, images.squashfsSha(), "squashfs", "/sbin/init-healthy", "SIGUSR2", "3s"),
        2);
    JsonNode done =
        agent.awaitReport(
            r ->
                "two".equals(r.path("timelines").path(0).path("image").asText())
                    && r.path("timelines").path(0).has("result"));
    double measured = (agent.operator().receivedNanos(done) - pushed) / 1e9;
    JsonNode sw = done.path("timelines").path(0);
    assertThat(sw.path("result").asText()).isEqualTo("Succeeded");
    assertThat(names(sw)).containsExactlyElementsOf(FlightSteps.FORCED_SWITCH);
    assertThat(sw.path("trigger").asText()).isEqualTo("SpecChange");
    assertThat(sw.path("digest").asText()).isEqualTo(images.squashfsSha());
    assertContiguous(sw);
    double sum = sumOfSteps(sw);
    assertThat(sum).isCloseTo(sw.path("seconds").asDouble(), within(0.002));
    assertThat(sum)
        .as("the steps' sum against the switch time measured from the push to the report")
        .isCloseTo(measured, within(measured * 0.05));
    assertThat(step(sw, "grace").path("seconds").asDouble())
        .as("the deaf init's grace period")
        .isBetween(9.9, 10.8);
    assertThat(step(sw, "download").path("detail").asText()).matches("[0-9.]+ [KMG]?i?B at .*B/s");
    assertThat(step(sw, "return-trigger").path("detail").asText()).startsWith("SpecChange");
    assertThat(step(sw, "grace").path("detail").asText())
        .isEqualTo("SIGTERM, grace period 10000 ms");

    // The boot ended when the switch began: its image never said it was healthy.
    JsonNode bootEnded = done.path("timelines").path(1);
    assertThat(bootEnded.path("image").asText()).isEqualTo("one");
    assertThat(bootEnded.path("result").asText()).isEqualTo("Succeeded");
    assertThat(bootEnded.path("message").asText()).contains("before the image reported healthy");
    assertThat(names(bootEnded)).endsWith("init-exec").startsWith("agent-up");
    assertContiguous(bootEnded);

    // A return to the bootstrap: a timeline of its own, graceful this time.
    agent.push("{\"action\":\"Bootstrap\",\"generation\":3}", 3);
    JsonNode back =
        agent.awaitReport(
            r ->
                "Bootstrap".equals(r.path("phase").asText())
                    && r.path("timelines").path(0).has("result"));
    JsonNode ret = back.path("timelines").path(0);
    assertThat(names(ret))
        .containsExactly("return-trigger", "grace", "teardown", "bootstrap-ready");
    assertThat(ret.has("image")).isFalse();
    assertThat(ret.path("trigger").asText()).isEqualTo("SpecChange");
    assertThat(ret.path("result").asText()).isEqualTo("Succeeded");
    assertContiguous(ret);
    assertThat(back.path("timelines")).hasSize(3);
    assertThat(back.path("timelines").path(1)).isEqualTo(sw);

    System.out.println("flight recorder: switch measured " + measured + " s; timeline " + sw);
  }

  private static String run(
      long gen,
      String name,
      String url,
      String sha,
      String format,
      String init,
      String signal,
      String grace) {
    return String.format(
        "{\"action\":\"Run\",\"generation\":%d,\"image\":{\"name\":\"%s\",\"url\":\"%s\","
            + "\"sha256\":\"%s\",\"format\":\"%s\",\"init\":\"%s\","
            + "\"stop\":{\"signal\":\"%s\",\"gracePeriod\":\"%s\"}},\"overlay\":\"tmpfs\"}",
        gen, name, url, sha, format, init, signal, grace);
  }

  private static List<String> names(JsonNode timeline) {
    List<String> names = new ArrayList<>();
    timeline.path("steps").forEach(s -> names.add(s.path("name").asText()));
    return names;
  }

  private static JsonNode last(JsonNode timeline) {
    return timeline.path("steps").path(timeline.path("steps").size() - 1);
  }

  private static JsonNode step(JsonNode timeline, String name) {
    for (JsonNode s : timeline.path("steps")) {
      if (name.equals(s.path("name").asText())) {
        return s;
      }
    }
    throw new AssertionError("no step " + name + " in " + timeline);
  }

  private static double sumOfSteps(JsonNode timeline) {
    double sum = 0;
    for (JsonNode s : timeline.path("steps")) {
      sum += s.path("seconds").asDouble();
    }
    return sum;
  }

  /** Each step begins where the one before ended; the first at the timeline's start. */
  private static void assertContiguous(JsonNode timeline) {
    JsonNode steps = timeline.path("steps");
    assertThat(steps.path(0).path("at").asText()).isEqualTo(timeline.path("started").asText());
    for (int i = 0; i + 1 < steps.size(); i++) {
      Instant at = Instant.parse(steps.path(i).path("at").asText());
      Instant next = Instant.parse(steps.path(i + 1).path("at").asText());
      assertThat(next).as("step %d begins no earlier than step %d", i + 1, i).isAfterOrEqualTo(at);
      assertThat(steps.path(i).path("seconds").asDouble())
          .as("step %s lasts until the next begins", steps.path(i).path("name").asText())
          .isEqualTo(Duration.between(at, next).toMillis() / 1000.0);
    }
  }
}
