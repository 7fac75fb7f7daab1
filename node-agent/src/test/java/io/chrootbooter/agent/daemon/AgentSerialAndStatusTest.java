package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.pivot.Pty;
import io.chrootbooter.agent.pivot.TestTarget;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The whole agent daemon against the stand-in operator, as root on this host (as {@link
 * AgentDaemonTest}), for two promises of the agent: the serial trigger follows the MachineBoot's
 * spec once one arrives, {@code cb.serial=} only being the default before that (the port a real pty
 * pair, the agent reading its slave side as it would read {@code ttyS1}); and every status report
 * names the image that is in the reported phase, through a switch from one image to another.
 */
class AgentSerialAndStatusTest {
  private static final String MAGIC = "RETURN_TO_BOOTSTRAP";

  @RegisterExtension static final TargetImages images = new TargetImages("cb-serial-images");
  @RegisterExtension final AgentFixture agent = new AgentFixture("cb-serial");
  private Pty pty;

  // ---- the serial trigger ---------------------------------------------------------------------

  /**
   * {@code cb.serial=ttyCB0} watches the port from the start; a spec with {@code serial.enabled:
   * false} lets it go (closed, its terminal settings as they were, the magic string left unread for
   * whoever uses the port); a {@code Hold} changes nothing; a spec that enables the trigger without
   * naming a port watches {@code cb.serial}'s port again, and the magic string returns the machine.
   */
  @Test
  void aSpecThatTurnsTheSerialTriggerOffWinsOverTheCommandLine() throws Exception {
    pty = agent.own(Pty.open());
    String settings = stty();
    Path dev = Files.createDirectories(agent.temp().resolve("dev"));
    Files.createSymbolicLink(dev.resolve("ttyCB0"), pty.slave());
    String one = agent.serve("one.squashfs", images.squashfs());
    startDaemon("ttyCB0");

    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(agentHolds(pty.slave())).as("cb.serial before any spec").isTrue());

    agent.push(run(1, "one", one, "{\"serial\":{\"enabled\":false}}"), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(agentHolds(pty.slave())).as("the port is let go").isFalse());
    assertThat(stty()).as("the port's settings as before the agent").isEqualTo(settings);

    pty.type(MAGIC + "\n");
    await()
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(5))
        .until(
            () ->
                "Running".equals(agent.operator().last().path("phase").asText())
                    && !agent.operator().last().has("lastReturn"));
    assertThat(pty.pendingInput()).as("what a target reading the port gets").contains(MAGIC);

    agent.push("{\"action\":\"Hold\",\"generation\":2,\"reason\":\"image not Ready\"}", 2);
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(() -> assertThat(agent.console()).contains("holds"));
    await()
        .during(Duration.ofMillis(500))
        .atMost(Duration.ofSeconds(2))
        .until(() -> !agentHolds(pty.slave()));

    agent.push(run(2, "one", one, "{\"serial\":{\"enabled\":true}}"), 2);
    agent.awaitReport(
        r ->
            "Running".equals(r.path("phase").asText())
                && r.path("appliedGeneration").asLong() == 2);
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(agentHolds(pty.slave())).as("cb.serial's port again").isTrue());
    pty.type(MAGIC + "\n");
    JsonNode back = agent.awaitReport(r -> "ConsoleOverride".equals(r.path("phase").asText()));
    assertThat(back.path("lastReturn").path("trigger").asText()).isEqualTo("Serial");
  }

  /** Without {@code cb.serial} and with the trigger off in the spec, no port is ever opened. */
  @Test
  void aSpecThatTurnsTheSerialTriggerOffOpensNoPort() throws Exception {
    pty = agent.own(Pty.open());
    Path dev = Files.createDirectories(agent.temp().resolve("dev"));
    Files.createSymbolicLink(dev.resolve("ttyS1"), pty.slave());
    String one = agent.serve("one.squashfs", images.squashfs());
    startDaemon(null);

    agent.push(run(1, "one", one, "{\"serial\":{\"enabled\":false}}"), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()));
    assertThat(agentHolds(pty.slave())).isFalse();
    pty.type(MAGIC + "\n");
    await()
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(5))
        .until(() -> !agent.operator().last().has("lastReturn") && !agentHolds(pty.slave()));
    assertThat(pty.pendingInput()).contains(MAGIC);
  }

  // ---- currentImage through a switch ----------------------------------------------------------

  /**
   * A switch from image {@code one} (whose init ignores the graceful signal, so its return lasts
   * the 2 s grace period, ten report intervals) to {@code two}: while {@code one} returns the
   * reports name {@code one}; no report before {@code two} is entered names it; after the switch
   * none names {@code one}.
   */
  @Test
  void everyReportOfASwitchNamesTheImageInItsPhase() throws Exception {
    String one = agent.serve("one.squashfs", images.squashfs());
    String two = agent.serve("two.tar.zst", images.tarZst());
    startDaemon(null);
    agent.push(
        runJson(1, "one", one, images.squashfsSha(), "squashfs", "/sbin/init-deaf", null), 1);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()) && "one".equals(image(r)));
    int before = agent.operator().reports().size();

    agent.push(
        runJson(2, "two", two, images.tarZstSha(), "tar.zst", "/sbin/init-friendly", null), 2);
    agent.awaitReport(r -> "Running".equals(r.path("phase").asText()) && "two".equals(image(r)));
    List<JsonNode> reports =
        List.copyOf(agent.operator().reports().subList(before, agent.operator().reports().size()));

    List<String> seen = reports.stream().map(r -> phase(r) + " " + image(r)).toList();
    assertThat(seen).as("the reports of the switch").contains("Returning one");
    int twoEntered = seen.indexOf("Running two");
    for (int i = 0; i < seen.size(); i++) {
      String s = seen.get(i);
      assertThat(s).as("report %d of %s", i, seen).isNotEqualTo("Returning two");
      if (i < twoEntered) {
        assertThat(image(reports.get(i))).as("report %d of %s", i, seen).isNotEqualTo("two");
      } else {
        assertThat(image(reports.get(i))).as("report %d of %s", i, seen).isNotEqualTo("one");
      }
      if (s.startsWith("Bootstrap ")) {
        assertThat(reports.get(i).has("currentImage")).as("report %d of %s", i, seen).isFalse();
      }
    }
  }

  // ---- helpers --------------------------------------------------------------------------------

  /** A {@code Run} desired state; {@code triggers} is its {@code returnTriggers}, or null. */
  private static String runJson(
      long gen, String name, String url, String sha, String format, String init, String triggers) {
    return String.format(
        "{\"action\":\"Run\",\"generation\":%d,\"image\":{\"name\":\"%s\",\"url\":\"%s\","
            + "\"sha256\":\"%s\",\"format\":\"%s\",\"init\":\"%s\"},\"overlay\":\"tmpfs\"%s}",
        gen,
        name,
        url,
        sha,
        format,
        init,
        triggers == null ? "" : ",\"returnTriggers\":" + triggers);
  }

  private static String run(long gen, String name, String url, String triggers) {
    return runJson(
        gen, name, url, images.squashfsSha(), "squashfs", "/sbin/init-friendly", triggers);
  }

  private static String phase(JsonNode report) {
    return report.path("phase").asText();
  }

  private static String image(JsonNode report) {
    return report.has("currentImage") ? report.path("currentImage").asText() : "-";
  }

  private void startDaemon(String serial) throws IOException {
    Files.createDirectories(agent.temp().resolve("dev"));
    agent.start(StandInOperator.MAC, serial, Duration.ofSeconds(2), null);
  }

  /**
   * Whether this JVM (the agent) has {@code tty} open beyond the test's own descriptor: the {@link
   * Pty} keeps one slave descriptor for the pty's life.
   */
  private static boolean agentHolds(Path tty) throws IOException {
    int open = 0;
    try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
      for (Path fd : fds.toList()) {
        try {
          if (Files.readSymbolicLink(fd).equals(tty)) {
            open++;
          }
        } catch (IOException gone) {
          // closed while listed
        }
      }
    }
    return open > 1;
  }

  /** The pty's terminal settings, as {@code stty -g} prints them. */
  private String stty() throws Exception {
    return TestTarget.run(TestTarget.BUSYBOX.toString(), "stty", "-F", pty.slave().toString(), "-g")
        .strip();
  }
}
