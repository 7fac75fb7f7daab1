package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.pivot.Pty;
import io.chrootbooter.agent.pivot.TestTarget;
import io.chrootbooter.agent.unpack.Mounts;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole agent daemon against the stand-in operator, as root on this host (as {@link
 * AgentDaemonTest}), for two promises of issue 4: the serial trigger follows the MachineBoot's spec
 * once one arrives, {@code cb.serial=} only being the default before that (the port a real pty
 * pair, the agent reading its slave side as it would read {@code ttyS1}); and every status report
 * names the image that is in the reported phase, through a switch from one image to another.
 */
class AgentSerialAndStatusTest {
  private static final String MAGIC = "RETURN_TO_BOOTSTRAP";
  private static Path imageDir;
  private static Path squashfs;
  private static Path tarZst;
  private static String squashfsSha;
  private static String tarZstSha;

  @TempDir Path temp;
  private StandInOperator operator;
  private Daemon daemon;
  private Pty pty;
  private Path cgroup;
  private final ByteArrayOutputStream consoleBytes = new ByteArrayOutputStream();

  @BeforeAll
  static void buildImages() throws Exception {
    TestTarget.assumeHost();
    imageDir = Files.createTempDirectory("cb-serial-images");
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
    operator = new StandInOperator();
    cgroup = TestTarget.newCgroup("cb-serial");
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
      if (pty != null) {
        pty.close();
      }
      TestTarget.umountAllBelow(temp);
    }
  }

  // ---- the serial trigger ---------------------------------------------------------------------

  /**
   * {@code cb.serial=ttyCB0} watches the port from the start; a spec with {@code serial.enabled:
   * false} lets it go (closed, its terminal settings as they were, the magic string left unread for
   * whoever uses the port); a {@code Hold} changes nothing; a spec that enables the trigger without
   * naming a port watches {@code cb.serial}'s port again, and the magic string returns the machine.
   */
  @Test
  void aSpecThatTurnsTheSerialTriggerOffWinsOverTheCommandLine() throws Exception {
    pty = Pty.open();
    String settings = stty();
    Path dev = Files.createDirectories(temp.resolve("dev"));
    Files.createSymbolicLink(dev.resolve("ttyCB0"), pty.slave());
    String one = operator.serve("one.squashfs", squashfs);
    startDaemon("ttyCB0");

    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(agentHolds(pty.slave())).as("cb.serial before any spec").isTrue());

    operator.push(run(1, "one", one, "{\"serial\":{\"enabled\":false}}"), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()));
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
                "Running".equals(operator.last().path("phase").asText())
                    && !operator.last().has("lastReturn"));
    assertThat(pty.pendingInput()).as("what a target reading the port gets").contains(MAGIC);

    operator.push("{\"action\":\"Hold\",\"generation\":2,\"reason\":\"image not Ready\"}", 2);
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(consoleBytes.toString(StandardCharsets.UTF_8)).contains("holds"));
    await()
        .during(Duration.ofMillis(500))
        .atMost(Duration.ofSeconds(2))
        .until(() -> !agentHolds(pty.slave()));

    operator.push(run(2, "one", one, "{\"serial\":{\"enabled\":true}}"), 2);
    awaitReport(
        r ->
            "Running".equals(r.path("phase").asText())
                && r.path("appliedGeneration").asLong() == 2);
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(agentHolds(pty.slave())).as("cb.serial's port again").isTrue());
    pty.type(MAGIC + "\n");
    JsonNode back = awaitReport(r -> "ConsoleOverride".equals(r.path("phase").asText()));
    assertThat(back.path("lastReturn").path("trigger").asText()).isEqualTo("Serial");
  }

  /** Without {@code cb.serial} and with the trigger off in the spec, no port is ever opened. */
  @Test
  void aSpecThatTurnsTheSerialTriggerOffOpensNoPort() throws Exception {
    pty = Pty.open();
    Path dev = Files.createDirectories(temp.resolve("dev"));
    Files.createSymbolicLink(dev.resolve("ttyS1"), pty.slave());
    String one = operator.serve("one.squashfs", squashfs);
    startDaemon(null);

    operator.push(run(1, "one", one, "{\"serial\":{\"enabled\":false}}"), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()));
    assertThat(agentHolds(pty.slave())).isFalse();
    pty.type(MAGIC + "\n");
    await()
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(5))
        .until(() -> !operator.last().has("lastReturn") && !agentHolds(pty.slave()));
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
    String one = operator.serve("one.squashfs", squashfs);
    String two = operator.serve("two.tar.zst", tarZst);
    startDaemon(null);
    operator.push(runJson(1, "one", one, squashfsSha, "squashfs", "/sbin/init-deaf", null), 1);
    awaitReport(r -> "Running".equals(r.path("phase").asText()) && "one".equals(image(r)));
    int before = operator.reports().size();

    operator.push(runJson(2, "two", two, tarZstSha, "tar.zst", "/sbin/init-friendly", null), 2);
    awaitReport(r -> "Running".equals(r.path("phase").asText()) && "two".equals(image(r)));
    List<JsonNode> reports =
        List.copyOf(operator.reports().subList(before, operator.reports().size()));

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
    return runJson(gen, name, url, squashfsSha, "squashfs", "/sbin/init-friendly", triggers);
  }

  private static String phase(JsonNode report) {
    return report.path("phase").asText();
  }

  private static String image(JsonNode report) {
    return report.has("currentImage") ? report.path("currentImage").asText() : "-";
  }

  private void startDaemon(String serial) throws IOException {
    Path work = Files.createDirectories(temp.resolve("work"));
    Mounts.mount("tmpfs", "mode=0755", "cb-test-work", work);
    Path console0 = temp.resolve("target-console.log");
    Files.writeString(console0, "");
    Files.createDirectories(temp.resolve("dev"));
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
                serial,
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
            null,
            new PrintStream(consoleBytes, true, StandardCharsets.UTF_8));
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

  /** The first last-report that meets {@code condition}; on timeout, says what came instead. */
  private JsonNode awaitReport(Predicate<JsonNode> condition) {
    return operator.awaitReport(condition, () -> consoleBytes.toString(StandardCharsets.UTF_8));
  }
}
