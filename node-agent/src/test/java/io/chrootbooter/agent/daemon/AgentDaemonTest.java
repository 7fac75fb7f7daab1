package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.pivot.TestTarget;
import io.chrootbooter.agent.unpack.Mounts;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
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
 * The whole agent daemon, for real on this host (as root, in the test JVM's private mount
 * namespace): it follows a desired-state stream on loopback, downloads real squashfs and tar.zst
 * images, enters them as PID 1 of new namespaces, returns on spec change and on the in-target
 * helper, holds a console override, keeps a running target through the operator's {@code Hold},
 * fails cleanly on a wrong digest, reconnects after the stream drops, and reports each step.
 * Everything it mounts or starts is gone after each test.
 */
class AgentDaemonTest {
  private static Path imageDir;
  private static Path squashfs;
  private static Path tarZst;
  private static String squashfsSha;
  private static String tarZstSha;

  @TempDir Path temp;
  private StandInOperator operator;
  private Daemon daemon;
  private Path cgroup;
  private List<String> mountsBefore;
  private final ByteArrayOutputStream consoleBytes = new ByteArrayOutputStream();

  @BeforeAll
  static void buildImages() throws Exception {
    TestTarget.assumeHost();
    imageDir = Files.createTempDirectory("cb-daemon-images");
    squashfs = TestTarget.build(imageDir);
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
    mountsBefore = TestTarget.mountTable();
    operator = new StandInOperator();
    cgroup = TestTarget.newCgroup("cb-daemon");
  }

  private Daemon startDaemon(PipedInputStream console) throws IOException {
    Path work = Files.createDirectories(temp.resolve("work"));
    Mounts.mount("tmpfs", "mode=0755", "cb-test-work", work);
    Path console0 = temp.resolve("target-console.log");
    Files.writeString(console0, "");
    daemon =
        Daemon.start(
            new Daemon.Options(
                operator.url(),
                StandInOperator.TOKEN,
                StandInOperator.MAC.toUpperCase(),
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
                console0,
                Duration.ofSeconds(2),
                OptionalLong.of(512),
                OptionalLong.empty(),
                Duration.ofMillis(200),
                Map.of()),
            console,
            new PrintStream(consoleBytes, true, StandardCharsets.UTF_8));
    return daemon;
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

  // ---- scenarios ------------------------------------------------------------------------------

  @Test
  void aSwitchReportsReturningWhileTheOldTargetIsEnded() throws Exception {
    String one = operator.serve("one.squashfs", squashfs);
    String two = operator.serve("two.tar.zst", tarZst);
    startDaemon(null);
    // A target that ignores the graceful signal: its return lasts the whole grace period (2 s),
    // ten report intervals, after the next image was already fetched and mounted.
    operator.push(run(1, "one", one, squashfsSha, "squashfs", "/sbin/init-deaf"), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()));

    operator.push(run(2, "two", two, tarZstSha, "tar.zst", "/sbin/init-friendly"), 2);
    awaitReport(r -> "Returning".equals(r.path("phase").asText()));
    JsonNode switched =
        awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && "two".equals(r.path("currentImage").asText()));
    assertThat(switched.path("lastReturn").path("trigger").asText()).isEqualTo("SpecChange");
  }

  @Test
  void followsTheStreamThroughLoadSwitchAndBackToTheBootstrap() throws Exception {
    String one = operator.serve("one.squashfs", squashfs);
    String two = operator.serve("two.tar.zst", tarZst);
    startDaemon(null);

    operator.push(run(1, "one", one, squashfsSha, "squashfs", "/sbin/init-friendly"), 1);
    JsonNode running = awaitReport(r -> "Running".equals(r.path("phase").asText()));
    assertThat(running.path("currentImage").asText()).isEqualTo("one");
    assertThat(running.path("appliedGeneration").asLong()).isEqualTo(1);
    assertThat(running.path("agent").path("kernel").asText()).isNotEmpty();
    assertThat(consoleBytes.toString(StandardCharsets.UTF_8))
        .as("the console shows the download and the entry")
        .contains("chrootbooter: loading one <" + one + ">")
        .contains("100%")
        .contains("chrootbooter: entering one");
    long firstPid = initPid();
    assertThat(Files.readString(Path.of("/proc", Long.toString(firstPid), "root/etc/marker")))
        .contains(TestTarget.MARKER);

    operator.push(run(2, "two", two, tarZstSha, "tar.zst", "/sbin/init-friendly"), 2);
    JsonNode switched =
        awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && "two".equals(r.path("currentImage").asText()));
    assertThat(switched.path("lastReturn").path("trigger").asText()).isEqualTo("SpecChange");
    long secondPid = initPid();
    assertThat(secondPid).isNotEqualTo(firstPid);
    assertThat(Path.of("/proc", Long.toString(firstPid))).doesNotExist();

    // The same generation again (a replay): nothing happens.
    String lastReturnTime = switched.path("lastReturn").path("time").asText();
    operator.push(run(2, "two", two, tarZstSha, "tar.zst", "/sbin/init-friendly"), 2);
    Thread.sleep(500);
    assertThat(initPid()).isEqualTo(secondPid);

    operator.push("{\"action\":\"Bootstrap\",\"generation\":3}", 3);
    JsonNode back =
        awaitReport(
            r ->
                "Bootstrap".equals(r.path("phase").asText())
                    && r.path("appliedGeneration").asLong() == 3);
    assertThat(back.path("lastReturn").path("time").asText()).isNotEqualTo(lastReturnTime);
    assertThat(back.has("currentImage")).isFalse();
    assertThat(Files.readString(temp.resolve("state/current_phase")).strip())
        .isEqualTo("Bootstrap");
    assertThat(mountsBelowWork()).as("only the work tmpfs remains mounted").hasSize(1);
  }

  @Test
  void helperReturnHoldsAConsoleOverrideUntilResume() throws Exception {
    String one = operator.serve("one.squashfs", squashfs);
    PipedOutputStream typing = new PipedOutputStream();
    startDaemon(new PipedInputStream(typing, 4096));

    operator.push(run(1, "one", one, squashfsSha, "squashfs", "/sbin/init-helper"), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()));
    Files.writeString(Path.of("/proc", Long.toString(initPid()), "root/run/go"), "go");
    JsonNode held = awaitReport(r -> "ConsoleOverride".equals(r.path("phase").asText()));
    assertThat(held.path("lastReturn").path("trigger").asText()).isEqualTo("Helper");
    assertThat(held.path("lastReturn").path("reason").asText()).isEqualTo("please go back");

    // A replay of the same generation does not end the override.
    operator.dropStreams();
    await().atMost(Duration.ofSeconds(10)).until(() -> operator.connections() >= 2);
    assertThat(operator.lastEventIds()).last().isEqualTo("gen-1");
    Thread.sleep(500);
    assertThat(daemon.agent().phase().name()).isEqualTo("ConsoleOverride");

    typing.write("status\nresume\n".getBytes(StandardCharsets.US_ASCII));
    typing.flush();
    awaitReport(
        r ->
            "Running".equals(r.path("phase").asText())
                && r.path("lastReturn").path("trigger").asText().equals("Helper"));
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(consoleBytes.toString(StandardCharsets.UTF_8))
                    .contains("phase: ConsoleOverride")
                    .contains("console override ended; booting one"));
  }

  @Test
  void wrongDigestFailsNamingBothDigestsAndLeavesNothingMounted() throws Exception {
    String one = operator.serve("one.squashfs", squashfs);
    startDaemon(null);
    String wrong = "0".repeat(64);

    operator.push(run(1, "one", one, wrong, "squashfs", "/sbin/init-friendly"), 1);
    JsonNode failed = awaitReport(r -> "Failed".equals(r.path("phase").asText()));
    assertThat(failed.path("error").asText()).contains(wrong).contains(squashfsSha);
    assertThat(mountsBelowWork()).hasSize(1);
    assertThat(daemon.agent().loader().cache().list()).as("a bad image is not cached").isEmpty();

    operator.push(run(2, "one", one, squashfsSha, "squashfs", "/sbin/init-friendly"), 2);
    JsonNode running = awaitReport(r -> "Running".equals(r.path("phase").asText()));
    assertThat(running.has("error")).isFalse();
  }

  @Test
  void resumesTheStreamAfterTheOperatorDropsItAndActsOnTheNewGeneration() throws Exception {
    String one = operator.serve("one.squashfs", squashfs);
    startDaemon(null);
    operator.push(run(1, "one", one, squashfsSha, "squashfs", "/sbin/init-friendly"), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()));

    operator.dropStreams();
    operator.push("{\"action\":\"Bootstrap\",\"generation\":2}", 2); // while disconnected
    await().atMost(Duration.ofSeconds(10)).until(() -> operator.connections() >= 2);
    assertThat(operator.lastEventIds()).last().isEqualTo("gen-1");
    awaitReport(
        r ->
            "Bootstrap".equals(r.path("phase").asText())
                && r.path("appliedGeneration").asLong() == 2);
  }

  /**
   * {@code Hold} (the operator's answer to an invalid edit, or to a spec naming an image that is
   * not Ready yet) keeps a running target running: the status still says Running with the old image
   * and the old applied generation. The {@code Run} of that generation, once the image is Ready,
   * then switches. A Hold of a newer generation cancels a download in progress; {@code resume}
   * while held boots nothing.
   */
  @Test
  void holdKeepsTheRunningTargetAndCancelsADownloadOfAnOlderGeneration() throws Exception {
    String one = operator.serve("one.squashfs", squashfs);
    String two = operator.serve("two.tar.zst", tarZst);
    String slow = operator.serveStalled("slow.tar.zst", tarZst);
    PipedOutputStream typing = new PipedOutputStream();
    startDaemon(new PipedInputStream(typing, 4096));

    operator.push(run(1, "one", one, squashfsSha, "squashfs", "/sbin/init-friendly"), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()));
    long firstPid = initPid();

    operator.push(hold(2, "BootImage two is not Ready"), 2);
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(consoleBytes.toString(StandardCharsets.UTF_8))
                    .contains(
                        "chrootbooter: the operator holds generation 2 (BootImage two is not"
                            + " Ready); <"
                            + one
                            + "> keeps running"));
    await()
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(5))
        .until(
            () ->
                Files.exists(Path.of("/proc", Long.toString(firstPid)))
                    && "Running".equals(operator.last().path("phase").asText())
                    && "one".equals(operator.last().path("currentImage").asText())
                    && operator.last().path("appliedGeneration").asLong() == 1
                    && !operator.last().has("lastReturn"));

    // The image is Ready now: the same generation, as Run.
    operator.push(run(2, "two", two, tarZstSha, "tar.zst", "/sbin/init-friendly"), 2);
    JsonNode switched =
        awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && "two".equals(r.path("currentImage").asText()));
    assertThat(switched.path("lastReturn").path("trigger").asText()).isEqualTo("SpecChange");
    assertThat(switched.path("appliedGeneration").asLong()).isEqualTo(2);
    assertThat(Path.of("/proc", Long.toString(firstPid))).doesNotExist();

    // Generation 3 downloads an image whose server stalls half-way; generation 4 is held.
    operator.push(run(3, "slow", slow, tarZstSha, "tar.zst", "/sbin/init-friendly"), 3);
    awaitReport(
        r ->
            "Downloading".equals(r.path("phase").asText())
                && r.path("progress").path("bytes").asLong() > 0);
    await().atMost(Duration.ofSeconds(10)).until(() -> operator.stalledRequests() >= 1);
    operator.push(hold(4, "the MachineBoot's spec is invalid"), 4);
    JsonNode cancelled = awaitReport(r -> "Bootstrap".equals(r.path("phase").asText()));
    assertThat(cancelled.has("progress")).as("no download in progress").isFalse();
    assertThat(cancelled.has("error")).as("a cancel is no failure").isFalse();
    assertThat(consoleBytes.toString(StandardCharsets.UTF_8))
        .contains("chrootbooter: the operator holds generation 4")
        .doesNotContain("chrootbooter: failed");
    assertThat(mountsBelowWork())
        .as("the half-extracted root's tmpfs is gone; only the work tmpfs remains")
        .hasSize(1);

    typing.write("resume\n".getBytes(StandardCharsets.US_ASCII));
    typing.flush();
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(consoleBytes.toString(StandardCharsets.UTF_8))
                    .contains(
                        "the operator holds generation 4 (the MachineBoot's spec is invalid):"
                            + " nothing to boot"));
    assertThat(operator.last().path("phase").asText()).isEqualTo("Bootstrap");
    assertThat(consoleBytes.toString(StandardCharsets.UTF_8))
        .doesNotContain("chrootbooter: failed");
  }

  /**
   * {@code reboot -f} inside the target ends only its PID namespace (its init dies of SIGHUP): the
   * agent boots the same image again, as a machine that reboots comes back up; {@code poweroff -f}
   * leaves the machine in the bootstrap.
   */
  @Test
  void aTargetThatRebootsIsBootedAgainAndOneThatPowersOffStaysOff() throws Exception {
    String one = operator.serve("one.squashfs", squashfs);
    startDaemon(null);
    operator.push(run(1, "one", one, squashfsSha, "squashfs", "/sbin/init-rebooter"), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()));
    long firstPid = initPid();

    Files.writeString(Path.of("/proc", Long.toString(firstPid), "root/run/go"), "reboot\n");
    JsonNode again =
        awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && "TargetExit".equals(r.path("lastReturn").path("trigger").asText()));
    assertThat(again.path("currentImage").asText()).isEqualTo("one");
    long secondPid = initPid();
    assertThat(secondPid).isNotEqualTo(firstPid);
    assertThat(Path.of("/proc", Long.toString(firstPid))).doesNotExist();

    Files.writeString(Path.of("/proc", Long.toString(secondPid), "root/run/go"), "poweroff\n");
    awaitReport(
        r ->
            "Bootstrap".equals(r.path("phase").asText())
                && "TargetExit".equals(r.path("lastReturn").path("trigger").asText()));
    await()
        .during(Duration.ofSeconds(1))
        .atMost(Duration.ofSeconds(5))
        .until(() -> daemon.agent().controller().session().isEmpty());
    assertThat(mountsBelowWork()).as("only the work tmpfs remains mounted").hasSize(1);
  }

  // ---- helpers --------------------------------------------------------------------------------

  private static String run(
      long gen, String name, String url, String sha, String format, String init) {
    return String.format(
        "{\"action\":\"Run\",\"generation\":%d,\"image\":{\"name\":\"%s\",\"url\":\"%s\","
            + "\"sha256\":\"%s\",\"format\":\"%s\",\"init\":\"%s\"},\"overlay\":\"tmpfs\"}",
        gen, name, url, sha, format, init);
  }

  private static String hold(long gen, String reason) {
    return String.format("{\"action\":\"Hold\",\"generation\":%d,\"reason\":\"%s\"}", gen, reason);
  }

  /** The first last-report that meets {@code condition}; on timeout, says what came instead. */
  private JsonNode awaitReport(Predicate<JsonNode> condition) {
    return operator.awaitReport(condition, () -> consoleBytes.toString(StandardCharsets.UTF_8));
  }

  private long initPid() throws IOException {
    return Long.parseLong(Files.readString(temp.resolve("state/pid_in_target")).strip());
  }

  private List<Path> mountsBelowWork() throws IOException {
    return Mounts.mountsBelow(temp.resolve("work"));
  }
}
