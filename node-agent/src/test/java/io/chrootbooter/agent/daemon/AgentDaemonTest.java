package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.pivot.TestTarget;
import java.io.IOException;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The whole agent daemon, for real on this host (as root, in the test JVM's private mount
 * namespace): it follows a desired-state stream on loopback, downloads real images.squashfs() and
 * tar.zst images, enters them as PID 1 of new namespaces, returns on spec change and on the
 * in-target helper, holds a console override, keeps a running target through the operator's {@code
 * Hold}, fails cleanly on a wrong digest, reconnects after the stream drops, and reports each step.
 * Everything it mounts or starts is gone after each test.
 */
class AgentDaemonTest {
  @RegisterExtension static final TargetImages images = new TargetImages("cb-daemon-images");
  @RegisterExtension final AgentFixture agent = new AgentFixture("cb-daemon");

  private void startDaemon(PipedInputStream console) throws IOException {
    agent.start(StandInOperator.MAC.toUpperCase(), null, Duration.ofSeconds(2), console);
  }

  // ---- scenarios ------------------------------------------------------------------------------

  @Test
  void aSwitchReportsReturningWhileTheOldTargetIsEnded() throws Exception {
    String one = agent.serve("one.squashfs", images.squashfs());
    String two = agent.serve("two.tar.zst", images.tarZst());
    startDaemon(null);
    // A target that ignores the graceful signal: its return lasts the whole grace period (2 s),
    // ten report intervals, after the next image was already fetched and mounted.
    agent.push(run(1, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-deaf"), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));

    agent.push(run(2, "two", two, images.tarZstSha(), "tar.zst", "/sbin/init-friendly"), 2);
    agent.awaitReport(r -> "Returning".equals(r.path("phase").asText()));
    JsonNode switched =
        agent.awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && "two".equals(r.path("currentImage").asText()));
    assertThat(switched.path("lastReturn").path("trigger").asText()).isEqualTo("SpecChange");
  }

  @Test
  void followsTheStreamThroughLoadSwitchAndBackToTheBootstrap() throws Exception {
    String one = agent.serve("one.squashfs", images.squashfs());
    String two = agent.serve("two.tar.zst", images.tarZst());
    startDaemon(null);

    agent.push(run(1, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-friendly"), 1);
    JsonNode running = agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    assertThat(running.path("currentImage").asText()).isEqualTo("one");
    assertThat(running.path("appliedGeneration").asLong()).isEqualTo(1);
    assertThat(running.path("agent").path("kernel").asText()).isNotEmpty();
    assertThat(agent.console())
        .as("the console shows the download and the entry")
        .contains("chrootbooter: loading one <" + one + ">")
        .contains("100%")
        .contains("chrootbooter: entering one");
    long firstPid = agent.initPid();
    assertThat(Files.readString(Path.of("/proc", Long.toString(firstPid), "root/etc/marker")))
        .contains(TestTarget.MARKER);
    // The agent enrolled with its nonce (the stand-in serves images only with the session) and
    // keeps the session root-only in its state directory, which is not in the target's mount
    // namespace: neither where the bootstrap has it nor at /run/bootstrap.
    Path session = agent.temp().resolve("state/agent-session");
    assertThat(Files.readString(session)).contains("session=" + StandInOperator.SESSION);
    assertThat(
            java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(session)))
        .isEqualTo("rw-------");
    Path targetRoot = Path.of("/proc", Long.toString(firstPid), "root");
    assertThat(targetRoot.resolve(session.toString().substring(1))).doesNotExist();
    assertThat(targetRoot.resolve("run/bootstrap/agent-session")).doesNotExist();
    assertThat(targetRoot.resolve("etc/marker")).as("the target's root is readable").exists();

    agent.push(run(2, "two", two, images.tarZstSha(), "tar.zst", "/sbin/init-friendly"), 2);
    JsonNode switched =
        agent.awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && "two".equals(r.path("currentImage").asText()));
    assertThat(switched.path("lastReturn").path("trigger").asText()).isEqualTo("SpecChange");
    long secondPid = agent.initPid();
    assertThat(secondPid).isNotEqualTo(firstPid);
    assertThat(Path.of("/proc", Long.toString(firstPid))).doesNotExist();

    // The same generation again (a replay): nothing happens.
    String lastReturnTime = switched.path("lastReturn").path("time").asText();
    agent.push(run(2, "two", two, images.tarZstSha(), "tar.zst", "/sbin/init-friendly"), 2);
    Thread.sleep(500);
    assertThat(agent.initPid()).isEqualTo(secondPid);

    agent.push("{\"action\":\"Bootstrap\",\"generation\":3}", 3);
    JsonNode back =
        agent.awaitReport(
            r ->
                "Bootstrap".equals(r.path("phase").asText())
                    && r.path("appliedGeneration").asLong() == 3);
    assertThat(back.path("lastReturn").path("time").asText()).isNotEqualTo(lastReturnTime);
    assertThat(back.has("currentImage")).isFalse();
    assertThat(Files.readString(agent.temp().resolve("state/current_phase")).strip())
        .isEqualTo("Bootstrap");
    assertThat(agent.mountsBelowWork()).as("only the work tmpfs remains mounted").hasSize(1);
  }

  @Test
  void helperReturnHoldsAConsoleOverrideUntilResume() throws Exception {
    String one = agent.serve("one.squashfs", images.squashfs());
    PipedOutputStream typing = new PipedOutputStream();
    startDaemon(new PipedInputStream(typing, 4096));

    agent.push(run(1, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-helper"), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    Files.writeString(Path.of("/proc", Long.toString(agent.initPid()), "root/run/go"), "go");
    JsonNode held = agent.awaitReport(r -> "ConsoleOverride".equals(r.path("phase").asText()));
    assertThat(held.path("lastReturn").path("trigger").asText()).isEqualTo("Helper");
    assertThat(held.path("lastReturn").path("reason").asText()).isEqualTo("please go back");

    // A replay of the same generation does not end the override.
    agent.operator().dropStreams();
    await().atMost(Duration.ofSeconds(10)).until(() -> agent.operator().connections() >= 2);
    assertThat(agent.operator().lastEventIds()).last().isEqualTo("gen-1");
    Thread.sleep(500);
    assertThat(agent.daemon().agent().phase().name()).isEqualTo("ConsoleOverride");

    typing.write("status\nresume\n".getBytes(StandardCharsets.US_ASCII));
    typing.flush();
    agent.awaitReport(
        r ->
            "Running".equals(r.path("phase").asText())
                && r.path("lastReturn").path("trigger").asText().equals("Helper"));
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(agent.console())
                    .contains("phase: ConsoleOverride")
                    .contains("console override ended; booting one"));
  }

  @Test
  void wrongDigestFailsNamingBothDigestsAndLeavesNothingMounted() throws Exception {
    String one = agent.serve("one.squashfs", images.squashfs());
    startDaemon(null);
    String wrong = "0".repeat(64);

    agent.push(run(1, "one", one, wrong, "squashfs", "/sbin/init-friendly"), 1);
    JsonNode failed = agent.awaitReport(r -> "Failed".equals(r.path("phase").asText()));
    assertThat(failed.path("error").asText()).contains(wrong).contains(images.squashfsSha());
    assertThat(agent.mountsBelowWork()).hasSize(1);
    assertThat(agent.daemon().agent().loader().cache().list())
        .as("a bad image is not cached")
        .isEmpty();

    agent.push(run(2, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-friendly"), 2);
    JsonNode running = agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    assertThat(running.has("error")).isFalse();
  }

  @Test
  void resumesTheStreamAfterTheOperatorDropsItAndActsOnTheNewGeneration() throws Exception {
    String one = agent.serve("one.squashfs", images.squashfs());
    startDaemon(null);
    agent.push(run(1, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-friendly"), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));

    agent.operator().dropStreams();
    agent.push("{\"action\":\"Bootstrap\",\"generation\":2}", 2); // while disconnected
    await().atMost(Duration.ofSeconds(10)).until(() -> agent.operator().connections() >= 2);
    assertThat(agent.operator().lastEventIds()).last().isEqualTo("gen-1");
    agent.awaitReport(
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
    String one = agent.serve("one.squashfs", images.squashfs());
    String two = agent.serve("two.tar.zst", images.tarZst());
    String slow = agent.operator().serveStalled("slow.tar.zst", images.tarZst());
    PipedOutputStream typing = new PipedOutputStream();
    startDaemon(new PipedInputStream(typing, 4096));

    agent.push(run(1, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-friendly"), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    long firstPid = agent.initPid();

    agent.push(hold(2, "BootImage two is not Ready"), 2);
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(agent.console())
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
                    && "Running".equals(agent.operator().last().path("phase").asText())
                    && "one".equals(agent.operator().last().path("currentImage").asText())
                    && agent.operator().last().path("appliedGeneration").asLong() == 1
                    && !agent.operator().last().has("lastReturn"));

    // The image is Ready now: the same generation, as Run.
    agent.push(run(2, "two", two, images.tarZstSha(), "tar.zst", "/sbin/init-friendly"), 2);
    JsonNode switched =
        agent.awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && "two".equals(r.path("currentImage").asText()));
    assertThat(switched.path("lastReturn").path("trigger").asText()).isEqualTo("SpecChange");
    assertThat(switched.path("appliedGeneration").asLong()).isEqualTo(2);
    assertThat(Path.of("/proc", Long.toString(firstPid))).doesNotExist();

    // Generation 3 downloads an image whose server stalls half-way; generation 4 is held.
    agent.push(run(3, "slow", slow, images.tarZstSha(), "tar.zst", "/sbin/init-friendly"), 3);
    agent.awaitReport(
        r ->
            "Downloading".equals(r.path("phase").asText())
                && r.path("progress").path("bytes").asLong() > 0);
    await().atMost(Duration.ofSeconds(10)).until(() -> agent.operator().stalledRequests() >= 1);
    agent.push(hold(4, "the MachineBoot's spec is invalid"), 4);
    JsonNode cancelled = agent.awaitReport(r -> "Bootstrap".equals(r.path("phase").asText()));
    assertThat(cancelled.has("progress")).as("no download in progress").isFalse();
    assertThat(cancelled.has("error")).as("a cancel is no failure").isFalse();
    assertThat(agent.console())
        .contains("chrootbooter: the operator holds generation 4")
        .doesNotContain("chrootbooter: failed");
    assertThat(agent.mountsBelowWork())
        .as("the half-extracted root's tmpfs is gone; only the work tmpfs remains")
        .hasSize(1);

    typing.write("resume\n".getBytes(StandardCharsets.US_ASCII));
    typing.flush();
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(agent.console())
                    .contains(
                        "the operator holds generation 4 (the MachineBoot's spec is invalid):"
                            + " nothing to boot"));
    assertThat(agent.operator().last().path("phase").asText()).isEqualTo("Bootstrap");
    assertThat(agent.console()).doesNotContain("chrootbooter: failed");
  }

  /**
   * {@code reboot -f} inside the target ends only its PID namespace (its init dies of SIGHUP): the
   * agent boots the same image again, as a machine that reboots comes back up; {@code poweroff -f}
   * leaves the machine in the bootstrap.
   */
  @Test
  void aTargetThatRebootsIsBootedAgainAndOneThatPowersOffStaysOff() throws Exception {
    String one = agent.serve("one.squashfs", images.squashfs());
    startDaemon(null);
    agent.push(run(1, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-rebooter"), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    long firstPid = agent.initPid();

    Files.writeString(Path.of("/proc", Long.toString(firstPid), "root/run/go"), "reboot\n");
    JsonNode again =
        agent.awaitReport(
            r ->
                "Running".equals(r.path("phase").asText())
                    && "TargetExit".equals(r.path("lastReturn").path("trigger").asText()));
    assertThat(again.path("currentImage").asText()).isEqualTo("one");
    long secondPid = agent.initPid();
    assertThat(secondPid).isNotEqualTo(firstPid);
    assertThat(Path.of("/proc", Long.toString(firstPid))).doesNotExist();

    Files.writeString(Path.of("/proc", Long.toString(secondPid), "root/run/go"), "poweroff\n");
    agent.awaitReport(
        r ->
            "Bootstrap".equals(r.path("phase").asText())
                && "TargetExit".equals(r.path("lastReturn").path("trigger").asText()));
    await()
        .during(Duration.ofSeconds(1))
        .atMost(Duration.ofSeconds(5))
        .until(() -> agent.daemon().agent().controller().session().isEmpty());
    assertThat(agent.mountsBelowWork()).as("only the work tmpfs remains mounted").hasSize(1);
  }

  // ---- helpers --------------------------------------------------------------------------------

  private static String run(
      long gen, String name, String url, String sha, String format, String init) {
    return String.format(
        "{\"action\":\"Run\",\"generation\":%d,\"image\":{\"name\":\"%s\",\"url\":\"%s\","
            + "\"sha256\":\"%s\",\"format\":\"%s\",\"init\":\"%s\"},\"overlay\":\"tmpfs\"}",
        gen, name, url, sha, format, init);
  }

  @Test
  void aTargetSeesTheRunningKernelsModulesUnlessItsImageSaysOtherwise() throws Exception {
    String release = Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip();
    Path tree = Files.createDirectories(agent.temp().resolve("modules-tree"));
    Files.createDirectories(tree.resolve("lib/modules/" + release + "/kernel"));
    Files.writeString(tree.resolve("lib/modules/" + release + "/modules.dep"), "kernel/x.ko:\n");
    Files.createDirectories(tree.resolve("lib/firmware"));
    Files.writeString(tree.resolve("lib/firmware/nic.bin"), "firmware");
    Path sqfs = agent.temp().resolve("modules.sqfs");
    Process mk =
        new ProcessBuilder(
                "mksquashfs", tree.toString(), sqfs.toString(), "-quiet", "-noappend", "-all-root")
            .inheritIO()
            .start();
    assertThat(mk.waitFor()).isZero();
    String sha =
        java.util.HexFormat.of()
            .formatHex(
                java.security.MessageDigest.getInstance("SHA-256")
                    .digest(Files.readAllBytes(sqfs)));
    // What the bootstrap build writes into the initramfs, and the operator serves.
    Files.writeString(agent.temp().resolve("modules.sha256"), sha + "\n");
    agent.operator().serveModules(sqfs);
    String one = agent.serve("one.squashfs", images.squashfs());
    String two = agent.serve("two.tar.zst", images.tarZst());
    startDaemon(null);

    // No kernelModules in the desired state (an older operator): the default, Bootstrap.
    agent.push(run(1, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-friendly"), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    Path root = Path.of("/proc", Long.toString(agent.initPid()), "root");
    assertThat(root.resolve("lib/modules/" + release + "/modules.dep")).content().contains("x.ko");
    assertThat(root.resolve("lib/firmware/nic.bin")).hasContent("firmware");

    String none =
        run(2, "two", two, images.tarZstSha(), "tar.zst", "/sbin/init-friendly")
            .replace("\"init\":", "\"kernelModules\":\"None\",\"init\":");
    agent.push(none, 2);
    agent.awaitReport(
        r ->
            "Running".equals(r.path("phase").asText())
                && "two".equals(r.path("currentImage").asText()));
    Path second = Path.of("/proc", Long.toString(agent.initPid()), "root");
    assertThat(second.resolve("lib/modules"))
        .as("kernelModules: None binds nothing")
        .doesNotExist();
    assertThat(agent.operator().modulesRequests()).as("fetched once per boot").isEqualTo(1);

    agent.push(run(3, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-friendly"), 3);
    agent.awaitReport(
        r ->
            "Running".equals(r.path("phase").asText())
                && r.path("appliedGeneration").asLong() == 3);
    Path third = Path.of("/proc", Long.toString(agent.initPid()), "root");
    assertThat(third.resolve("lib/modules/" + release + "/modules.dep")).exists();
    assertThat(agent.operator().modulesRequests()).isEqualTo(1);
  }

  @Test
  void aModulesImageThatDoesNotMatchTheInitramfsFailsTheLoadAndLeavesNothingMounted()
      throws Exception {
    Path bogus = agent.temp().resolve("bogus.sqfs");
    Files.write(bogus, new byte[8192]);
    Files.writeString(agent.temp().resolve("modules.sha256"), "0".repeat(64) + "\n");
    agent.operator().serveModules(bogus);
    String one = agent.serve("one.squashfs", images.squashfs());
    startDaemon(null);

    agent.push(run(1, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-friendly"), 1);
    JsonNode failed = agent.awaitReport(r -> "Failed".equals(r.path("phase").asText()));
    assertThat(failed.path("error").asText()).contains("modules image");
    assertThat(agent.mountsBelowWork()).as("only the work tmpfs remains mounted").hasSize(1);
  }

  private static String hold(long gen, String reason) {
    return String.format("{\"action\":\"Hold\",\"generation\":%d,\"reason\":\"%s\"}", gen, reason);
  }
}
