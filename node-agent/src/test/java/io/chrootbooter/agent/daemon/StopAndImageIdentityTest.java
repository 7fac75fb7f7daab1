package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.pivot.LastReturn;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What the BootImage says reaching the agent, for real on this host (as root, in the test JVM's
 * private mount namespace, busybox targets as PID 1 of new namespaces): its {@code stop} settings
 * decide how a return ends the target, a bad one from the stream is refused without harm, and a
 * BootImage re-mirrored under the same MachineBoot generation is booted while a replay is not and a
 * console override still holds.
 */
class StopAndImageIdentityTest {
  /**
   * An init that powers off on SIGPWR only: SIGTERM and SIGUSR2, what the agent would choose for
   * it, are ignored. {@code wait} lets the trap run at once instead of after the sleep.
   */
  private static final String PWR_INIT =
      """
      trap '' HUP INT QUIT USR1 USR2 TERM
      trap 'echo pwr init: powering off; exit 0' PWR
      echo ok > /run/booted
      while :; do sleep 1 & wait $!; done
      """;

  /** The agent's {@code --grace} in these tests: the default, which a BootImage overrides. */
  private static final Duration AGENT_GRACE = Duration.ofSeconds(10);

  @RegisterExtension
  static final TargetImages images = new TargetImages("cb-stop-images", Map.of("pwr", PWR_INIT));

  @RegisterExtension final AgentFixture agent = new AgentFixture("cb-stop");

  private void startDaemon() throws IOException {
    agent.start(StandInOperator.MAC, null, AGENT_GRACE, null);
  }

  // ---- spec.stop ------------------------------------------------------------------------------

  /**
   * The BootImage's signal reaches an init that answers only to it, which powers off gracefully;
   * the same init told SIGTERM ignores it and is killed at the BootImage's grace period of 1 s, far
   * sooner than the agent's 10 s.
   */
  @Test
  void theBootImagesSignalAndGracePeriodDecideHowTheTargetEnds() throws Exception {
    String one = agent.serve("one.squashfs", images.squashfs());
    startDaemon();

    agent.push(
        run(1, one, images.squashfsSha(), "squashfs", "/sbin/init-pwr", stop("SIGPWR", "8s")), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    long firstPid = agent.initPid();
    agent.push(bootstrap(2), 2);
    JsonNode back = awaitBootstrap(2);
    LastReturn graceful = agent.daemon().agent().controller().lastReturn().orElseThrow();
    assertThat(graceful.forced()).as("ended by its own init, not killed").isFalse();
    assertThat(graceful.initExit()).isEqualTo("exit 0");
    assertThat(back.path("lastReturn").path("durationMillis").asLong())
        .as("a graceful return does not wait out the grace period")
        .isLessThan(8000);
    assertThat(back.path("lastReturn").path("forced").asBoolean(true))
        .as("the report says the return was graceful")
        .isFalse();
    assertThat(Files.readString(targetConsole())).contains("pwr init: powering off");
    assertThat(Path.of("/proc", Long.toString(firstPid))).doesNotExist();

    agent.push(
        run(3, one, images.squashfsSha(), "squashfs", "/sbin/init-pwr", stop("SIGTERM", "1s")), 3);
    agent.awaitReport(
        r ->
            "Running".equals(r.path("phase").asText())
                && r.path("appliedGeneration").asLong() == 3);
    long secondPid = agent.initPid();
    long asked = System.nanoTime();
    agent.push(bootstrap(4), 4);
    JsonNode killed = awaitBootstrap(4);
    Duration took = Duration.ofNanos(System.nanoTime() - asked);
    LastReturn forced = agent.daemon().agent().controller().lastReturn().orElseThrow();
    assertThat(forced.forced()).as("SIGTERM is ignored: killed after the grace period").isTrue();
    assertThat(forced.duration()).isGreaterThanOrEqualTo(Duration.ofSeconds(1));
    assertThat(killed.path("lastReturn").path("durationMillis").asLong())
        .as("killed at the BootImage's 1 s, not the agent's 10 s")
        .isBetween(1000L, 5000L);
    assertThat(killed.path("lastReturn").path("forced").asBoolean(false))
        .as("the report says the target was killed")
        .isTrue();
    assertThat(took).as("back in the bootstrap, seen from the operator").isLessThan(AGENT_GRACE);
    assertThat(Path.of("/proc", Long.toString(secondPid))).doesNotExist();
    assertThat(agent.mountsBelowWork()).as("only the work tmpfs").hasSize(1);
  }

  /**
   * A stop setting the operator would never send (the schema and the reconciler refuse it) is
   * refused by the agent as well: the load fails naming the field, the value and the rule, nothing
   * is mounted, and the next valid state boots.
   */
  @Test
  void aBadStopSettingFromTheStreamIsRefusedAndTheNextStateBoots() throws Exception {
    String one = agent.serve("one.squashfs", images.squashfs());
    startDaemon();

    agent.push(
        run(1, one, images.squashfsSha(), "squashfs", "/sbin/init-pwr", stop("SIGKILL", null)), 1);
    JsonNode refused = agent.awaitReport(r -> "Failed".equals(r.path("phase").asText()));
    assertThat(refused.path("error").asText())
        .startsWith("image.stop.signal: \"SIGKILL\" is not a power-off signal")
        .contains("SIGRTMIN+n");

    agent.push(
        run(2, one, images.squashfsSha(), "squashfs", "/sbin/init-pwr", stop("SIGTERM", "9999h")),
        2);
    JsonNode tooLong =
        agent.awaitReport(
            r ->
                "Failed".equals(r.path("phase").asText())
                    && r.path("error").asText().contains("gracePeriod"));
    assertThat(tooLong.path("error").asText())
        .isEqualTo(
            "image.stop.gracePeriod: \"9999h\" is longer than the longest grace period, 10m;"
                + " the image is not booted");

    agent.push(
        run(3, one, images.squashfsSha(), "squashfs", "/sbin/init-pwr", stop("SIGTERM\\n", "1s")),
        3);
    agent.awaitReport(
        r ->
            "Failed".equals(r.path("phase").asText())
                && r.path("error").asText().startsWith("image.stop.signal: \"SIGTERM?\""));
    assertThat(agent.mountsBelowWork()).as("nothing was mounted").hasSize(1);
    assertThat(agent.daemon().agent().loader().cache().list())
        .as("refused before anything was downloaded")
        .isEmpty();

    agent.push(
        run(4, one, images.squashfsSha(), "squashfs", "/sbin/init-pwr", stop("SIGPWR", "2s")), 4);
    JsonNode running = agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    assertThat(running.has("error")).isFalse();
    assertThat(agent.daemon().agent().controller().session().orElseThrow().spec().gracefulSignal())
        .isEqualTo(30);
    assertThat(agent.daemon().agent().controller().session().orElseThrow().spec().grace())
        .isEqualTo(Duration.ofSeconds(2));
  }

  // ---- the image a generation boots -----------------------------------------------------------

  /**
   * The operator re-mirrors the BootImage (new source, new digest) while the MachineBoot's
   * generation stays: the agent boots the new image, returning the old target; the same state
   * again, as after a reconnect, boots nothing.
   */
  @Test
  void aReMirroredImageUnderTheSameGenerationIsBootedAndAReplayIsNot() throws Exception {
    bootOne("/sbin/init-friendly");
    String rebuilt = agent.serve("rebuilt.tar.zst", images.tarZst());
    long firstPid = agent.initPid();

    agent.push(hold(1, "BootImage one is not Ready"), 1);
    agent.push(run(1, rebuilt, images.tarZstSha(), "tar.zst", "/sbin/init-friendly", null), 1);
    JsonNode switched =
        agent.awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && "SpecChange".equals(r.path("lastReturn").path("trigger").asText()));
    assertThat(switched.path("appliedGeneration").asLong()).isEqualTo(1);
    assertThat(switched.path("lastReturn").path("reason").asText()).contains(rebuilt);
    long secondPid = agent.initPid();
    assertThat(secondPid).isNotEqualTo(firstPid);
    assertThat(Path.of("/proc", Long.toString(firstPid))).doesNotExist();
    assertThat(Files.readString(agent.temp().resolve("state/last_image_url")).strip())
        .isEqualTo(rebuilt);

    // The same image at another URL (the operator reached at another address) is the same image.
    String sameBytes = agent.serve("elsewhere.tar.zst", images.tarZst());
    agent.push(run(1, rebuilt, images.tarZstSha(), "tar.zst", "/sbin/init-friendly", null), 1);
    agent.push(run(1, sameBytes, images.tarZstSha(), "tar.zst", "/sbin/init-friendly", null), 1);
    await()
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(5))
        .until(
            () ->
                agent.initPid() == secondPid
                    && "Running".equals(agent.operator().last().path("phase").asText())
                    && agent
                        .daemon()
                        .agent()
                        .controller()
                        .lastReturn()
                        .orElseThrow()
                        .trigger()
                        .name()
                        .equals("SpecChange"));
    assertThat(agent.console())
        .containsOnlyOnce("chrootbooter: loading one <" + rebuilt + ">")
        .doesNotContain("elsewhere");
  }

  /**
   * A console override taken under a generation holds when the BootImage is re-mirrored under that
   * generation, as the issue says: only a new generation (or {@code resume}) ends it.
   */
  @Test
  void aConsoleOverrideHoldsAcrossAReMirroredImageUntilTheGenerationChanges() throws Exception {
    bootOne("/sbin/init-helper");
    String rebuilt = agent.serve("rebuilt.tar.zst", images.tarZst());
    Files.writeString(Path.of("/proc", Long.toString(agent.initPid()), "root/run/go"), "go");
    agent.awaitReport(r -> "ConsoleOverride".equals(r.path("phase").asText()));

    agent.push(run(1, rebuilt, images.tarZstSha(), "tar.zst", "/sbin/init-helper", null), 1);
    await()
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(5))
        .until(
            () ->
                "ConsoleOverride".equals(agent.operator().last().path("phase").asText())
                    && agent.daemon().agent().controller().session().isEmpty());
    assertThat(agent.console()).doesNotContain("rebuilt");

    agent.push(run(2, rebuilt, images.tarZstSha(), "tar.zst", "/sbin/init-helper", null), 2);
    JsonNode running =
        agent.awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && r.path("appliedGeneration").asLong() == 2);
    assertThat(running.path("lastReturn").path("trigger").asText()).isEqualTo("Helper");
    assertThat(Files.readString(agent.temp().resolve("state/last_image_url")).strip())
        .isEqualTo(rebuilt);
  }

  // ---- helpers --------------------------------------------------------------------------------

  /**
   * Serves image {@code one} (the squashfs), starts the daemon and boots {@code one} with {@code
   * init} as generation 1, until it reports Running.
   */
  private void bootOne(String init) throws IOException {
    String one = agent.serve("one.squashfs", images.squashfs());
    startDaemon();
    agent.push(run(1, one, images.squashfsSha(), "squashfs", init, null), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
  }

  private Path targetConsole() {
    return agent.temp().resolve("target-console.log");
  }

  private static String run(
      long gen, String url, String sha, String format, String init, String stop) {
    return String.format(
        "{\"action\":\"Run\",\"generation\":%d,\"image\":{\"name\":\"one\",\"url\":\"%s\","
            + "\"sha256\":\"%s\",\"format\":\"%s\",\"init\":\"%s\"%s},\"overlay\":\"tmpfs\"}",
        gen, url, sha, format, init, stop == null ? "" : ",\"stop\":" + stop);
  }

  private static String stop(String signal, String gracePeriod) {
    return "{\"signal\":\""
        + signal
        + "\""
        + (gracePeriod == null ? "" : ",\"gracePeriod\":\"" + gracePeriod + "\"")
        + "}";
  }

  private static String bootstrap(long gen) {
    return "{\"action\":\"Bootstrap\",\"generation\":" + gen + "}";
  }

  private static String hold(long gen, String reason) {
    return String.format("{\"action\":\"Hold\",\"generation\":%d,\"reason\":\"%s\"}", gen, reason);
  }

  private JsonNode awaitBootstrap(long generation) {
    return agent.awaitReport(
        r ->
            "Bootstrap".equals(r.path("phase").asText())
                && r.path("appliedGeneration").asLong() == generation
                && r.has("lastReturn"));
  }
}
