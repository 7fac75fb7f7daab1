package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.pivot.LastReturn;
import io.chrootbooter.agent.pivot.TestTarget;
import io.chrootbooter.agent.unpack.Mounts;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
      #!/bin/sh
      trap '' HUP INT QUIT USR1 USR2 TERM
      trap 'echo pwr init: powering off; exit 0' PWR
      echo ok > /run/booted
      while :; do sleep 1 & wait $!; done
      """;

  /** The agent's {@code --grace} in these tests: the default, which a BootImage overrides. */
  private static final Duration AGENT_GRACE = Duration.ofSeconds(10);

  private static Path imageDir;
  private static Path squashfs;
  private static Path tarZst;
  private static String squashfsSha;
  private static String tarZstSha;

  @TempDir Path temp;
  private StandInOperator operator;
  private Daemon daemon;
  private Path cgroup;
  private final ByteArrayOutputStream consoleBytes = new ByteArrayOutputStream();

  @BeforeAll
  static void buildImages() throws Exception {
    TestTarget.assumeHost();
    imageDir = Files.createTempDirectory("cb-stop-images");
    TestTarget.build(imageDir);
    Path tree = imageDir.resolve("tree");
    Path init = tree.resolve("sbin/init-pwr");
    Files.writeString(init, PWR_INIT);
    Files.setPosixFilePermissions(init, PosixFilePermissions.fromString("rwxr-xr-x"));
    squashfs = imageDir.resolve("target.squashfs");
    TestTarget.run(
        "mksquashfs", tree.toString(), squashfs.toString(), "-quiet", "-noappend", "-comp", "gzip");
    tarZst = TestTarget.packTarZst(imageDir);
    squashfsSha = TestTarget.sha256(squashfs);
    tarZstSha = TestTarget.sha256(tarZst);
  }

  @AfterAll
  static void removeImages() throws IOException {
    TestTarget.deleteTree(imageDir);
  }

  @BeforeEach
  void start() throws IOException {
    operator = new StandInOperator();
    cgroup = TestTarget.newCgroup("cb-stop");
  }

  @AfterEach
  void stop() throws Exception {
    try {
      if (daemon != null) {
        daemon.close();
      }
    } finally {
      operator.close();
      TestTarget.removeCgroup(cgroup);
      TestTarget.umountAllBelow(temp);
    }
  }

  private void startDaemon() throws IOException {
    Path work = Files.createDirectories(temp.resolve("work"));
    Mounts.mount("tmpfs", "mode=0755", "cb-test-work", work);
    Files.writeString(targetConsole(), "");
    daemon =
        Daemon.start(
            new Daemon.Options(
                operator.url(),
                StandInOperator.TOKEN,
                StandInOperator.MAC,
                null,
                null,
                null,
                null,
                null,
                null,
                115200,
                null,
                work,
                temp.resolve("state"),
                cgroup,
                TestTarget.BUSYBOX,
                temp.resolve("dev"),
                targetConsole(),
                AGENT_GRACE,
                OptionalLong.of(512),
                OptionalLong.empty(),
                Duration.ofMillis(200),
                Map.of()),
            null,
            new PrintStream(consoleBytes, true, StandardCharsets.UTF_8));
  }

  // ---- spec.stop ------------------------------------------------------------------------------

  /**
   * The BootImage's signal reaches an init that answers only to it, which powers off gracefully;
   * the same init told SIGTERM ignores it and is killed at the BootImage's grace period of 1 s, far
   * sooner than the agent's 10 s.
   */
  @Test
  void theBootImagesSignalAndGracePeriodDecideHowTheTargetEnds() throws Exception {
    String one = operator.serve("one.squashfs", squashfs);
    startDaemon();

    operator.push(run(1, one, squashfsSha, "squashfs", "/sbin/init-pwr", stop("SIGPWR", "8s")), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()));
    long firstPid = initPid();
    operator.push(bootstrap(2), 2);
    JsonNode back = awaitBootstrap(2);
    LastReturn graceful = daemon.agent().controller().lastReturn().orElseThrow();
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

    operator.push(run(3, one, squashfsSha, "squashfs", "/sbin/init-pwr", stop("SIGTERM", "1s")), 3);
    awaitReport(
        r ->
            "Running".equals(r.path("phase").asText())
                && r.path("appliedGeneration").asLong() == 3);
    long secondPid = initPid();
    long asked = System.nanoTime();
    operator.push(bootstrap(4), 4);
    JsonNode killed = awaitBootstrap(4);
    Duration took = Duration.ofNanos(System.nanoTime() - asked);
    LastReturn forced = daemon.agent().controller().lastReturn().orElseThrow();
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
    assertThat(Mounts.mountsBelow(temp.resolve("work"))).as("only the work tmpfs").hasSize(1);
  }

  /**
   * A stop setting the operator would never send (the schema and the reconciler refuse it) is
   * refused by the agent as well: the load fails naming the field, the value and the rule, nothing
   * is mounted, and the next valid state boots.
   */
  @Test
  void aBadStopSettingFromTheStreamIsRefusedAndTheNextStateBoots() throws Exception {
    String one = operator.serve("one.squashfs", squashfs);
    startDaemon();

    operator.push(run(1, one, squashfsSha, "squashfs", "/sbin/init-pwr", stop("SIGKILL", null)), 1);
    JsonNode refused = awaitReport(r -> "Failed".equals(r.path("phase").asText()));
    assertThat(refused.path("error").asText())
        .startsWith("image.stop.signal: \"SIGKILL\" is not a power-off signal")
        .contains("SIGRTMIN+n");

    operator.push(
        run(2, one, squashfsSha, "squashfs", "/sbin/init-pwr", stop("SIGTERM", "9999h")), 2);
    JsonNode tooLong =
        awaitReport(
            r ->
                "Failed".equals(r.path("phase").asText())
                    && r.path("error").asText().contains("gracePeriod"));
    assertThat(tooLong.path("error").asText())
        .isEqualTo(
            "image.stop.gracePeriod: \"9999h\" is longer than the longest grace period, 10m;"
                + " the image is not booted");

    operator.push(
        run(3, one, squashfsSha, "squashfs", "/sbin/init-pwr", stop("SIGTERM\\n", "1s")), 3);
    awaitReport(
        r ->
            "Failed".equals(r.path("phase").asText())
                && r.path("error").asText().startsWith("image.stop.signal: \"SIGTERM?\""));
    assertThat(Mounts.mountsBelow(temp.resolve("work"))).as("nothing was mounted").hasSize(1);
    assertThat(daemon.agent().loader().cache().list())
        .as("refused before anything was downloaded")
        .isEmpty();

    operator.push(run(4, one, squashfsSha, "squashfs", "/sbin/init-pwr", stop("SIGPWR", "2s")), 4);
    JsonNode running = awaitReport(r -> "Running".equals(r.path("phase").asText()));
    assertThat(running.has("error")).isFalse();
    assertThat(daemon.agent().controller().session().orElseThrow().spec().gracefulSignal())
        .isEqualTo(30);
    assertThat(daemon.agent().controller().session().orElseThrow().spec().grace())
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
    String one = operator.serve("one.squashfs", squashfs);
    String rebuilt = operator.serve("rebuilt.tar.zst", tarZst);
    startDaemon();

    operator.push(run(1, one, squashfsSha, "squashfs", "/sbin/init-friendly", null), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()));
    long firstPid = initPid();

    operator.push(hold(1, "BootImage one is not Ready"), 1);
    operator.push(run(1, rebuilt, tarZstSha, "tar.zst", "/sbin/init-friendly", null), 1);
    JsonNode switched =
        awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && "SpecChange".equals(r.path("lastReturn").path("trigger").asText()));
    assertThat(switched.path("appliedGeneration").asLong()).isEqualTo(1);
    assertThat(switched.path("lastReturn").path("reason").asText()).contains(rebuilt);
    long secondPid = initPid();
    assertThat(secondPid).isNotEqualTo(firstPid);
    assertThat(Path.of("/proc", Long.toString(firstPid))).doesNotExist();
    assertThat(Files.readString(temp.resolve("state/last_image_url")).strip()).isEqualTo(rebuilt);

    // The same image at another URL (the operator reached at another address) is the same image.
    String sameBytes = operator.serve("elsewhere.tar.zst", tarZst);
    operator.push(run(1, rebuilt, tarZstSha, "tar.zst", "/sbin/init-friendly", null), 1);
    operator.push(run(1, sameBytes, tarZstSha, "tar.zst", "/sbin/init-friendly", null), 1);
    await()
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(5))
        .until(
            () ->
                initPid() == secondPid
                    && "Running".equals(operator.last().path("phase").asText())
                    && daemon
                        .agent()
                        .controller()
                        .lastReturn()
                        .orElseThrow()
                        .trigger()
                        .name()
                        .equals("SpecChange"));
    assertThat(consoleBytes.toString(StandardCharsets.UTF_8))
        .containsOnlyOnce("chrootbooter: loading one <" + rebuilt + ">")
        .doesNotContain("elsewhere");
  }

  /**
   * A console override taken under a generation holds when the BootImage is re-mirrored under that
   * generation, as the issue says: only a new generation (or {@code resume}) ends it.
   */
  @Test
  void aConsoleOverrideHoldsAcrossAReMirroredImageUntilTheGenerationChanges() throws Exception {
    String one = operator.serve("one.squashfs", squashfs);
    String rebuilt = operator.serve("rebuilt.tar.zst", tarZst);
    startDaemon();

    operator.push(run(1, one, squashfsSha, "squashfs", "/sbin/init-helper", null), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()));
    Files.writeString(Path.of("/proc", Long.toString(initPid()), "root/run/go"), "go");
    awaitReport(r -> "ConsoleOverride".equals(r.path("phase").asText()));

    operator.push(run(1, rebuilt, tarZstSha, "tar.zst", "/sbin/init-helper", null), 1);
    await()
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(5))
        .until(
            () ->
                "ConsoleOverride".equals(operator.last().path("phase").asText())
                    && daemon.agent().controller().session().isEmpty());
    assertThat(consoleBytes.toString(StandardCharsets.UTF_8)).doesNotContain("rebuilt");

    operator.push(run(2, rebuilt, tarZstSha, "tar.zst", "/sbin/init-helper", null), 2);
    JsonNode running =
        awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && r.path("appliedGeneration").asLong() == 2);
    assertThat(running.path("lastReturn").path("trigger").asText()).isEqualTo("Helper");
    assertThat(Files.readString(temp.resolve("state/last_image_url")).strip()).isEqualTo(rebuilt);
  }

  // ---- helpers --------------------------------------------------------------------------------

  private Path targetConsole() {
    return temp.resolve("target-console.log");
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
    return awaitReport(
        r ->
            "Bootstrap".equals(r.path("phase").asText())
                && r.path("appliedGeneration").asLong() == generation
                && r.has("lastReturn"));
  }

  /** The first last-report that meets {@code condition}; on timeout, says what came instead. */
  private JsonNode awaitReport(Predicate<JsonNode> condition) {
    return operator.awaitReport(condition, () -> consoleBytes.toString(StandardCharsets.UTF_8));
  }

  private long initPid() throws IOException {
    return Long.parseLong(Files.readString(temp.resolve("state/pid_in_target")).strip());
  }
}
