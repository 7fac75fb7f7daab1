package io.chrootbooter.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.operator.statuspage.HeadlessChromium;
import io.chrootbooter.operator.statuspage.StatusView;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.Progress;
import io.chrootbooter.protocol.Timeline;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.common.http.TestHTTPResource;
import jakarta.inject.Inject;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The live status page at {@code /} as an operator of the cluster sees it: machines in several
 * phases and images being mirrored, read over plain HTTP and in headless Chromium, and updated live
 * when a status changes.
 */
public abstract class StatusPageScenarios {
  private static final Duration TIMEOUT = Duration.ofSeconds(30);
  private static final long MIB = 1024 * 1024;

  /** What an agent could put into an error: markup, and a token that must never be shown. */
  static final String HOSTILE_ERROR =
      "fetch /images/debian-12 failed <script>window.pwned=1</script> with cb.token=SECRETTOKEN42";

  @Inject KubernetesClient client;

  /** The machine port, where the iPXE scripts are. */
  @TestHTTPResource("/")
  URL base;

  /** The management interface's root path ({@code /q/}) on the admin port. */
  @TestHTTPResource(value = "/", management = true)
  URL management;

  static ImageServer images;
  String ns;
  String debianSha;

  @BeforeAll
  static void startImageServer() throws IOException {
    images = new ImageServer();
  }

  @AfterAll
  static void stopImageServer() {
    images.close();
  }

  @BeforeEach
  void createNamespace() {
    ns = "lab-" + UUID.randomUUID().toString().substring(0, 6);
    client
        .namespaces()
        .resource(new NamespaceBuilder().withNewMetadata().withName(ns).endMetadata().build())
        .create();
  }

  @AfterEach
  void deleteNamespace() {
    images.release();
    client.resources(io.chrootbooter.api.v1alpha1.BootTest.class).inNamespace(ns).delete();
    client.resources(MachineBoot.class).inNamespace(ns).delete();
    client.resources(BootImage.class).inNamespace(ns).delete();
    client.namespaces().withName(ns).delete();
  }

  @Test
  void pageOverPlainHttpEscapesEverythingAndShowsNoToken() throws Exception {
    createLab();
    HttpResponse<String> response = await().atMost(TIMEOUT).until(this::getPage, this::showsLab);
    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.headers().firstValue("Content-Type")).hasValue("text/html; charset=utf-8");
    assertThat(response.headers().firstValue("Content-Security-Policy").orElseThrow())
        .contains("script-src 'nonce-")
        .contains("default-src 'none'");
    String html = response.body();

    // The hostile error is text: in the machine's row and in the event the operator recorded.
    String escaped = "&lt;script&gt;window.pwned=1&lt;/script&gt;";
    assertThat(html).doesNotContain("<script>window.pwned");
    assertThat(count(html, "<script")).as("only the page's own script").isEqualTo(1);
    await()
        .atMost(TIMEOUT)
        .untilAsserted(
            () -> assertThat(count(getPage().body(), escaped)).as("error and event").isEqualTo(2));

    // No token of any kind: not the one in the error, not a machine's, not the Secret's key.
    assertThat(html).doesNotContain("SECRETTOKEN42").contains("cb.token=[redacted]");
    String script =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(URI.create(base + "boot/52:54:00:10:00:01.ipxe")).build(),
                HttpResponse.BodyHandlers.ofString())
            .body();
    assertThat(script).doesNotContain("cb.token=");
    String nonce = script.replaceAll("(?s).* cb\\.nonce=([^ \\n]+).*", "$1");
    assertThat(nonce).matches("[A-Za-z0-9_-]{76}");
    // The machine enrols with it: neither the nonce nor its session reaches the page.
    String enrolled = enrol(nonce, "b1").body();
    String session = enrolled.replaceAll("(?s).*\"session\":\"([A-Za-z0-9_-]+)\".*", "$1");
    assertThat(session).matches("[A-Za-z0-9_-]{84}");
    Secret secret =
        client
            .secrets()
            .inNamespace(client.getNamespace())
            .withName("chrootbooter-machine-token")
            .get();
    assertThat(secret).as("the token Secret").isNotNull();
    String page = getPage().body();
    assertThat(page).doesNotContain(nonce).doesNotContain(session);
    // The nonce replayed: refused, and the Warning shows in the machine's recent events.
    int replayed = enrol(nonce, "b2").statusCode();
    assertThat(replayed).isEqualTo(409);
    await()
        .atMost(TIMEOUT)
        .untilAsserted(
            () ->
                assertThat(getPage().body())
                    .contains("EnrolmentReplayed")
                    .contains("was presented again from 127.0.0.1 (boot b2)")
                    .doesNotContain(nonce));
    for (String value : secret.getData().values()) {
      assertThat(page).doesNotContain(value);
      assertThat(page)
          .doesNotContain(
              new String(Base64.getDecoder().decode(value), StandardCharsets.ISO_8859_1));
    }

    // The machine port, which every machine on the network reaches, has no page and no stream.
    for (String path : List.of("", "status/events")) {
      HttpResponse<String> onMachinePort =
          HttpClient.newHttpClient()
              .send(
                  HttpRequest.newBuilder(URI.create(base + path)).build(),
                  HttpResponse.BodyHandlers.ofString());
      assertThat(onMachinePort.statusCode()).as("/%s on the machine port", path).isEqualTo(404);
      assertThat(onMachinePort.body()).doesNotContain("rack1-node01", "52:54:00:10:00:01");
    }

    // What a user reads in the rows.
    assertThat(page)
        .contains("rack1-node01", "10.20.0.11", "Serial", "took 4.2 s, forced", "running debian-12")
        .contains("<progress value=\"" + 400 * MIB + "\" max=\"" + 1000 * MIB + "\">")
        .contains("40% · 400.0 MiB of 1000.0 MiB · 50.0 MiB/s")
        .contains("title=\"" + debianSha + "\"")
        .contains("256.0 KiB");
  }

  @Test
  void eventStreamPushesChangedRowsCoalescedAndResyncsOnReconnect() throws Exception {
    createLab();
    await().atMost(TIMEOUT).until(this::getPage, this::showsLab);
    try (EventStream stream = new EventStream(null)) {
      assertThat(stream.contentType).startsWith("text/event-stream");
      SseEvent reset = stream.next(e -> e.name().equals("reset"));
      assertThat(reset.data()).contains("rack1-node02").contains("id=\"machines\"");
      assertThat(reset.id()).isNotBlank();

      setStatus("rack1-node02", s -> downloading(s, 800 * MIB));
      SseEvent row =
          stream.next(e -> e.name().equals("row") && e.data().contains("value=\"" + 800 * MIB));
      assertThat(row.data())
          .startsWith("<tr id=\"" + StatusView.rowId("m", ns, "rack1-node02") + "\"")
          .contains("80% · 800.0 MiB of 1000.0 MiB");
      SseEvent summary = stream.next(e -> e.name().equals("summary"));
      assertThat(summary.id()).as("the last event of a batch carries its id").isNotBlank();

      // A burst of changes arrives in a few batches, not one per change.
      stream.events.clear();
      int before = stream.seen.size();
      long started = System.nanoTime();
      for (int i = 1; i <= 20; i++) {
        long bytes = (800 + i) * MIB;
        setStatus("rack1-node02", s -> downloading(s, bytes));
      }
      stream.next(e -> e.name().equals("row") && e.data().contains("value=\"" + 820 * MIB));
      SseEvent last = stream.next(e -> e.name().equals("summary"));
      long elapsedMillis = (System.nanoTime() - started) / 1_000_000;
      long batches =
          stream.seen.subList(before, stream.seen.indexOf(last) + 1).stream()
              .filter(e -> e.name().equals("summary"))
              .count();
      assertThat(batches)
          .as("batches in %d ms of 20 status changes", elapsedMillis)
          .isLessThanOrEqualTo(elapsedMillis / 250 + 2);

      // A deleted machine's row goes.
      client.resources(MachineBoot.class).inNamespace(ns).withName("rack2-node01").delete();
      SseEvent removed = stream.next(e -> e.name().equals("remove"));
      assertThat(removed.data()).isEqualTo(StatusView.rowId("m", ns, "rack2-node01"));
      stream.next(e -> e.name().equals("summary"));
      // Once nothing else is on its way, the newest id is the one a reconnect needs.
      int[] seen = {-1};
      await()
          .atMost(TIMEOUT)
          .pollInterval(Duration.ofMillis(750))
          .until(
              () -> {
                int now = stream.seen.size();
                boolean quiet = now == seen[0];
                seen[0] = now;
                return quiet;
              });
      String lastId =
          stream.seen.stream().filter(e -> e.id() != null).reduce((a, b) -> b).orElseThrow().id();

      // Reconnecting with the last id seen starts with nothing to catch up on; with another,
      // with the whole content.
      try (EventStream again = new EventStream(lastId)) {
        setStatus("rack1-node02", s -> downloading(s, 900 * MIB));
        SseEvent first = again.next(e -> true);
        assertThat(first.name()).isEqualTo("row");
      }
      try (EventStream stale = new EventStream(last.id())) {
        SseEvent again = stale.next(e -> true);
        assertThat(again.name()).isEqualTo("reset");
        assertThat(again.data()).contains("cb.token=[redacted]").doesNotContain("SECRETTOKEN42");
      }
      assertThat(stream.seen).noneMatch(e -> e.data().contains("SECRETTOKEN42"));
    }
  }

  @Test
  void pageInHeadlessChromiumShowsTheMachinesAndFollowsChangesLive() throws Exception {
    Path chromium = chromium();
    createLab();
    await().atMost(TIMEOUT).until(this::getPage, this::showsLab);

    try (HeadlessChromium browser =
        HeadlessChromium.start(chromium, Path.of("target/chromium-status-page.log"))) {
      HeadlessChromium.Tab tab = browser.open(admin().toString(), 1480, 900);
      await()
          .atMost(TIMEOUT)
          .untilAsserted(
              () ->
                  assertThat(tab.evaluate("document.getElementById('live')?.textContent").asText())
                      .as("the live indicator once the EventSource is open")
                      .isEqualTo("live"));

      JsonNode rows = rows(tab);
      assertThat(machine(rows, "rack1-node01").get("text").asText())
          .contains("Running", "debian-12", "10.20.0.11", "Serial", "took 4.2 s");
      // The last boot's and the last switch's timelines: each step with its duration, a bar each,
      // the target's text in them shown as text, credentials redacted.
      JsonNode node01 = machine(rows, "rack1-node01");
      assertThat(node01.get("text").asText())
          .contains(
              "last boot debian-12 · 21.5 s · Succeeded",
              "last switch debian-12 · 8.3 s · Succeeded",
              "script-served 500 ms",
              "download 12.0 s 1.00 GiB",
              "desired-state 250 ms",
              "download 1.5 s <img src=x onerror=window.pwned=3> cb.token=[redacted]",
              "verify 2.5 s",
              "healthy 4.0 s",
              "the image <script>window.pwned=2</script> was cached")
          .doesNotContain("SECRETTOKEN43");
      assertThat(node01.get("meters").asInt()).isEqualTo(8);
      assertThat(machine(rows, "rack1-node02").get("text").asText())
          .contains("Downloading", "40%")
          .doesNotContain("last switch");
      assertThat(machine(rows, "rack1-node02").get("progress").asDouble()).isEqualTo(0.4);
      assertThat(machine(rows, "rack1-node03").get("text").asText())
          .contains("Failed", "<script>window.pwned=1</script>", "cb.token=[redacted]")
          .doesNotContain("SECRETTOKEN42");
      assertThat(machine(rows, "rack2-node01").get("text").asText())
          .contains("Bootstrap", "10.20.0.21", "SpecChange");
      assertThat(tab.evaluate("typeof window.pwned").asText())
          .as("markup in an error or a timeline never runs")
          .isEqualTo("undefined");
      JsonNode imageRows = tab.evaluate(rowsOf("images"));
      JsonNode debian = row(imageRows, StatusView.rowId("i", ns, "debian-12"));
      assertThat(debian.get("text").asText()).contains("Ready", "squashfs", "256.0 KiB");
      assertThat(debian.get("digest").asText()).isEqualTo(debianSha);
      JsonNode ubuntu = row(imageRows, StatusView.rowId("i", ns, "ubuntu-24"));
      assertThat(ubuntu.get("text").asText()).contains("Downloading");
      assertThat(ubuntu.get("hasProgress").asBoolean()).isTrue();
      int machines = tab.evaluate("+document.querySelector('#summary b').textContent").asInt();

      // Changes through the API reach the open page without a reload.
      tab.evaluate("window.notReloaded = true");
      setStatus("rack1-node02", s -> downloading(s, 800 * MIB));
      createMachine("rack1-node04", "52:54:00:10:00:04", "debian-12");
      await()
          .atMost(TIMEOUT)
          .untilAsserted(
              () -> {
                JsonNode now = rows(tab);
                assertThat(machine(now, "rack1-node02").get("progress").asDouble()).isEqualTo(0.8);
                assertThat(machine(now, "rack1-node02").get("text").asText()).contains("80%");
                assertThat(ids(now))
                    .containsSubsequence(
                        StatusView.rowId("m", ns, "rack1-node03"),
                        StatusView.rowId("m", ns, "rack1-node04"),
                        StatusView.rowId("m", ns, "rack2-node01"));
              });
      assertThat(tab.evaluate("window.notReloaded === true").asBoolean()).isTrue();
      await()
          .atMost(TIMEOUT)
          .untilAsserted(
              () ->
                  assertThat(
                          tab.evaluate("+document.querySelector('#summary b').textContent").asInt())
                      .isEqualTo(machines + 1));

      tab.screenshot(Path.of("target/status-page.png"));
      assertThat(browser.problems()).as("errors in the browser").isEmpty();
    }
  }

  @Test
  void aBootTestShowsItsProgressAndTheMachinesItHoldsSayBy() throws Exception {
    createLab();
    await().atMost(TIMEOUT).until(this::getPage, this::showsLab);
    try (EventStream stream = new EventStream(null)) {
      stream.next(e -> e.name().equals("reset"));
      createSmokeTest();
      // The machine's row says which test holds it; the test's row what it holds and how far
      // it is. The machine has no agent here: the test waits for debian-12 to run on it.
      SseEvent held =
          stream.next(
              e ->
                  e.name().equals("row")
                      && e.data()
                          .startsWith("<tr id=\"" + StatusView.rowId("m", ns, "rack2-node01"))
                      && e.data().contains("held by bt/smoke"));
      assertThat(held.data()).contains("class=\"badge held\"");
      SseEvent testRow =
          stream.next(
              e ->
                  e.name().equals("row")
                      && e.data().startsWith("<tr id=\"" + StatusView.rowId("t", ns, "smoke"))
                      && e.data().contains("<code class=\"hold\">rack2-node01</code>"));
      assertThat(testRow.data())
          .contains(">Running</span>")
          .contains("0/1 promoted")
          .contains(">Waiting</span>")
          .contains("0 passed, 0 failed of 2 machines")
          .contains("href=\"tests/" + ns + "/smoke/junit.xml\"");

      String page = getPage().body();
      assertThat(page).contains("<h2>Boot tests</h2>").contains("held by bt/smoke");
      assertThat(count(page, "held by bt/smoke")).as("only the held machine").isEqualTo(1);

      // Deleted, the test releases the machine: its row loses the mark, the test's row goes.
      client
          .resources(io.chrootbooter.api.v1alpha1.BootTest.class)
          .inNamespace(ns)
          .withName("smoke")
          .delete();
      stream.next(
          e -> e.name().equals("remove") && e.data().equals(StatusView.rowId("t", ns, "smoke")));
      await()
          .atMost(TIMEOUT)
          .untilAsserted(
              () ->
                  assertThat(getPage().body())
                      .doesNotContain("held by bt/smoke")
                      .contains("No BootTests."));
    }
  }

  @Test
  void aBootTestInHeadlessChromiumShowsWhatItHoldsAndGoesWhenDeleted() throws Exception {
    Path chromium = chromium();
    createLab();
    await().atMost(TIMEOUT).until(this::getPage, this::showsLab);
    try (HeadlessChromium browser =
        HeadlessChromium.start(chromium, Path.of("target/chromium-boottest.log"))) {
      HeadlessChromium.Tab tab = browser.open(admin().toString(), 1480, 900);
      await()
          .atMost(TIMEOUT)
          .untilAsserted(
              () ->
                  assertThat(tab.evaluate("document.getElementById('live')?.textContent").asText())
                      .isEqualTo("live"));
      assertThat(tab.evaluate("document.querySelector('#tests tr.empty')?.innerText").asText())
          .isEqualTo("No BootTests.");
      tab.evaluate("window.notReloaded = true");
      createSmokeTest();
      await()
          .atMost(TIMEOUT)
          .untilAsserted(
              () -> {
                assertThat(machine(rows(tab), "rack2-node01").get("text").asText())
                    .contains("held by bt/smoke");
                assertThat(machine(rows(tab), "rack1-node01").get("text").asText())
                    .doesNotContain("held by bt/");
                JsonNode test =
                    row(tab.evaluate(rowsOf("tests")), StatusView.rowId("t", ns, "smoke"));
                assertThat(test.get("text").asText())
                    .contains("smoke", "Running", "debian-12", "0/1 promoted", "Waiting")
                    .contains("rack2-node01");
              });
      tab.screenshot(Path.of("target/status-page-boottest.png"));
      client
          .resources(io.chrootbooter.api.v1alpha1.BootTest.class)
          .inNamespace(ns)
          .withName("smoke")
          .delete();
      await()
          .atMost(TIMEOUT)
          .untilAsserted(
              () -> {
                assertThat(tab.evaluate(rowsOf("tests")).size()).isZero();
                assertThat(machine(rows(tab), "rack2-node01").get("text").asText())
                    .doesNotContain("held by bt/");
              });
      assertThat(tab.evaluate("window.notReloaded === true").asBoolean()).isTrue();
      assertThat(browser.problems()).as("errors in the browser").isEmpty();
    }
  }

  // --- the lab ---------------------------------------------------------------------------

  /**
   * Two images (one Ready, one stuck mirroring) and four machines: Running with an address and a
   * return, Downloading at 40%, Failed with a hostile error, and waiting in the bootstrap.
   */
  void createLab() {
    // Bytes of this namespace's own: an image mirrored by an earlier test is not Downloading.
    int seed = ns.hashCode();
    byte[] debian = ControlPlaneScenarios.fakeImage(new byte[] {'h', 's', 'q', 's'}, seed);
    debianSha = images.put("debian-12.squashfs", debian);
    createImage("debian-12", images.url("debian-12.squashfs"), debianSha);
    byte[] ubuntu = ControlPlaneScenarios.fakeImage(new byte[] {'h', 's', 'q', 's'}, seed + 1);
    String ubuntuSha = images.put("ubuntu-24.squashfs", ubuntu);
    images.holdStalls();
    images.behave("ubuntu-24.squashfs", new ImageServer.Behaviour(200, -1, 128 * 1024, false));
    // Still Downloading when the page is read, however long that takes: every resumed request
    // stalls again (the test profile's stall timeout is 3 s).
    images.stallEachTime("ubuntu-24.squashfs");
    createImage("ubuntu-24", images.url("ubuntu-24.squashfs"), ubuntuSha);

    createMachine("rack1-node01", "52:54:00:10:00:01", "debian-12");
    createMachine("rack1-node02", "52:54:00:10:00:02", "debian-12");
    createMachine("rack1-node03", "52:54:00:10:00:03", "debian-12");
    createRaw(
        "MachineBoot",
        "rack2-node01",
        Map.of("macAddress", "52:54:00:20:00:01", "state", "Bootstrap"));

    await().atMost(TIMEOUT).until(() -> phase("debian-12"), p -> p == BootImagePhase.Ready);
    await().atMost(TIMEOUT).until(() -> phase("ubuntu-24"), p -> p == BootImagePhase.Downloading);

    Instant returned = Instant.now().minus(3, ChronoUnit.MINUTES).truncatedTo(ChronoUnit.SECONDS);
    setStatus(
        "rack1-node01",
        s ->
            status(
                    s,
                    MachinePhase.Running,
                    "debian-12",
                    null,
                    new LastReturn("Serial", "break on ttyS0", returned.toString(), 4200L, true),
                    "10.20.0.11",
                    null)
                .withTimelines(lastBoot(returned), lastSwitch(returned), List.of()));
    setStatus("rack1-node02", s -> downloading(s, 400 * MIB));
    setStatus(
        "rack1-node03",
        s -> status(s, MachinePhase.Failed, null, null, null, "10.20.0.13", HOSTILE_ERROR));
    setStatus(
        "rack2-node01",
        s ->
            status(
                s,
                MachinePhase.Bootstrap,
                null,
                null,
                new LastReturn("SpecChange", "spec changed", returned.toString(), 2900L, false),
                "10.20.0.21",
                null));
  }

  /** The flight recorder's last boot of rack1-node01: a first boot of debian-12. */
  static Timeline lastBoot(Instant at) {
    Instant start = at.minus(10, ChronoUnit.MINUTES);
    return new Timeline(
        "debian-12",
        null,
        null,
        start.toString(),
        21.5,
        Timeline.SUCCEEDED,
        null,
        List.of(
            new Timeline.Step("script-served", start.toString(), 0.5, null),
            new Timeline.Step("agent-up", start.plusMillis(500).toString(), 6.0, null),
            new Timeline.Step("download", start.plusMillis(6500).toString(), 12.0, "1.00 GiB"),
            new Timeline.Step("healthy", start.plusMillis(18500).toString(), 3.0, null)));
  }

  /**
   * Its last switch, back to debian-12 after the Serial return: one step's detail and the message
   * are a target's hostile text.
   */
  static Timeline lastSwitch(Instant at) {
    return new Timeline(
        "debian-12",
        null,
        "Serial",
        at.toString(),
        8.25,
        Timeline.SUCCEEDED,
        "the image <script>window.pwned=2</script> was cached",
        List.of(
            new Timeline.Step("desired-state", at.toString(), 0.25, null),
            new Timeline.Step(
                "download",
                at.plusMillis(250).toString(),
                1.5,
                "<img src=x onerror=window.pwned=3> cb.token=SECRETTOKEN43"),
            new Timeline.Step("verify", at.plusMillis(1750).toString(), 2.5, null),
            new Timeline.Step("healthy", at.plusMillis(4250).toString(), 4.0, null)));
  }

  static MachineBootStatus downloading(MachineBootStatus s, long bytes) {
    return status(
        s,
        MachinePhase.Downloading,
        null,
        new Progress(bytes, 1000 * MIB, 50 * MIB),
        null,
        "10.20.0.12",
        null);
  }

  static MachineBootStatus status(
      MachineBootStatus old,
      MachinePhase phase,
      String current,
      Progress progress,
      LastReturn lastReturn,
      String ip,
      String error) {
    return MachineBootStatus.builder()
        .phase(phase)
        .currentImage(current)
        .observedGeneration(old.observedGeneration())
        .progress(progress)
        .lastReturn(lastReturn)
        .agent(new AgentInfo("0.1.0", UUID.randomUUID().toString(), ip, "6.1.0-28-amd64", "tiered"))
        .error(error)
        .lastReportTime(old.lastReportTime())
        .conditions(old.conditions())
        .build();
  }

  /** The BootTest {@code smoke}: debian-12 on rack2-node01, then promoted to rack1-node01. */
  private void createSmokeTest() {
    createRaw(
        "BootTest",
        "smoke",
        Map.of(
            "imageRef",
            "debian-12",
            "machines",
            Map.of("names", List.of("rack2-node01")),
            "checks",
            List.of(Map.of("healthy", Map.of("timeout", "5m"))),
            "promote",
            Map.of("promoteTo", Map.of("names", List.of("rack1-node01")))));
  }

  /** The Chromium to drive; the test is skipped, saying why, when there is none. */
  private static Path chromium() {
    Path chromium = HeadlessChromium.executable().orElse(null);
    Assumptions.assumeTrue(
        chromium != null,
        "chromium is not installed (Debian: apt-get install chromium); the status page's browser"
            + " test is skipped, its plain HTTP tests still run");
    return chromium;
  }

  /** Machine 52:54:00:10:00:01 enrols with {@code nonce}, as its agent in boot {@code bootId}. */
  private HttpResponse<String> enrol(String nonce, String bootId)
      throws IOException, InterruptedException {
    return HttpClient.newHttpClient()
        .send(
            HttpRequest.newBuilder(URI.create(base + "agent/v1/machines/52:54:00:10:00:01/enroll"))
                .header("Content-Type", "application/json")
                .POST(
                    HttpRequest.BodyPublishers.ofString(
                        "{\"nonce\":\"" + nonce + "\",\"bootId\":\"" + bootId + "\"}"))
                .build(),
            HttpResponse.BodyHandlers.ofString());
  }

  /** Writes a machine's status as its agent's reports would, once the reconciler wrote one. */
  void setStatus(String name, UnaryOperator<MachineBootStatus> change) {
    var resource = client.resources(MachineBoot.class).inNamespace(ns).withName(name);
    await()
        .atMost(TIMEOUT)
        .until(
            () -> resource.get(),
            m -> m.getStatus() != null && m.getStatus().observedGeneration() != null);
    resource.editStatus(
        m -> {
          m.setStatus(change.apply(m.getStatus()));
          return m;
        });
  }

  void createMachine(String name, String mac, String image) {
    createRaw("MachineBoot", name, Map.of("macAddress", mac, "imageRef", image));
  }

  void createImage(String name, String url, String sha256) {
    createRaw("BootImage", name, Map.of("source", Map.of("url", url), "sha256", sha256));
  }

  void createRaw(String kind, String name, Map<String, Object> spec) {
    GenericKubernetesResource raw = new GenericKubernetesResource();
    raw.setApiVersion(BootImage.GROUP + "/" + BootImage.VERSION);
    raw.setKind(kind);
    raw.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(ns).build());
    raw.setAdditionalProperty("spec", spec);
    client.resource(raw).inNamespace(ns).create();
  }

  BootImagePhase phase(String image) {
    BootImage i = client.resources(BootImage.class).inNamespace(ns).withName(image).get();
    return i == null || i.getStatus() == null ? null : i.getStatus().phase();
  }

  // --- what the user sees ----------------------------------------------------------------

  /** The status page: the root of the admin port. */
  URI admin() {
    return URI.create(management.toString()).resolve("/");
  }

  HttpResponse<String> getPage() throws IOException, InterruptedException {
    return HttpClient.newHttpClient()
        .send(
            HttpRequest.newBuilder(admin()).build(),
            HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
  }

  /** Whether the page shows every machine of the lab in the phase it was given. */
  boolean showsLab(HttpResponse<String> page) {
    String html = page.body();
    return List.of("Running", "Downloading", "Failed", "Bootstrap").stream()
            .allMatch(p -> html.contains(">" + p + "</span>"))
        && html.contains("10.20.0.21")
        && html.contains(ns);
  }

  /** The machine table's rows, as the browser has them now. */
  JsonNode rows(HeadlessChromium.Tab tab) {
    return tab.evaluate(rowsOf("machines"));
  }

  static String rowsOf(String table) {
    return "[...document.querySelectorAll('#"
        + table
        + " tr:not(.empty)')].map(tr => ({"
        + " id: tr.id,"
        + " text: tr.innerText,"
        + " progress: tr.querySelector('progress[max]') ?"
        + " tr.querySelector('progress').value / tr.querySelector('progress').max : null,"
        + " hasProgress: tr.querySelector('progress') !== null,"
        + " meters: tr.querySelectorAll('meter').length,"
        + " digest: tr.querySelector('code[title]')?.title ?? null }))";
  }

  JsonNode machine(JsonNode rows, String name) {
    return row(rows, StatusView.rowId("m", ns, name));
  }

  static JsonNode row(JsonNode rows, String id) {
    for (JsonNode row : rows) {
      if (row.get("id").asText().equals(id)) {
        return row;
      }
    }
    throw new AssertionError("no row " + id + " in " + rows);
  }

  static List<String> ids(JsonNode rows) {
    return java.util.stream.StreamSupport.stream(rows.spliterator(), false)
        .map(r -> r.get("id").asText())
        .toList();
  }

  static int count(String haystack, String needle) {
    Matcher m = Pattern.compile(Pattern.quote(needle)).matcher(haystack);
    int n = 0;
    while (m.find()) {
      n++;
    }
    return n;
  }

  /** One Server-Sent Event. */
  record SseEvent(String id, String name, String data) {}

  /** {@code GET /status/events}, read on a thread of its own as a browser's EventSource would. */
  final class EventStream implements AutoCloseable {
    final BlockingQueue<SseEvent> events = new LinkedBlockingQueue<>();
    final List<SseEvent> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
    final String contentType;
    private final InputStream body;

    EventStream(String lastEventId) throws Exception {
      HttpRequest.Builder request =
          HttpRequest.newBuilder(admin().resolve("/status/events"))
              .header("Accept", "text/event-stream");
      if (lastEventId != null) {
        request.header("Last-Event-ID", lastEventId);
      }
      HttpResponse<InputStream> response =
          HttpClient.newHttpClient()
              .send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
      assertThat(response.statusCode()).isEqualTo(200);
      contentType = response.headers().firstValue("Content-Type").orElse("");
      body = response.body();
      Thread reader = new Thread(this::read, "status-events");
      reader.setDaemon(true);
      reader.start();
    }

    /** The next event that matches, skipping others; fails after the timeout. */
    SseEvent next(java.util.function.Predicate<SseEvent> wanted) throws InterruptedException {
      long deadline = System.nanoTime() + TIMEOUT.toNanos();
      for (; ; ) {
        SseEvent e = events.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        if (e == null) {
          throw new AssertionError("no such event within " + TIMEOUT + "; seen " + names());
        }
        if (wanted.test(e)) {
          return e;
        }
      }
    }

    private List<String> names() {
      return seen.stream().map(SseEvent::name).toList();
    }

    private void read() {
      try (var in = new BufferedReader(new InputStreamReader(body, StandardCharsets.UTF_8))) {
        String id = null;
        String name = "message";
        StringBuilder data = null;
        for (String line; (line = in.readLine()) != null; ) {
          if (line.isEmpty()) {
            if (data != null) {
              SseEvent e = new SseEvent(id, name, data.toString());
              seen.add(e);
              events.add(e);
            }
            id = null;
            name = "message";
            data = null;
          } else if (line.startsWith("id: ")) {
            id = line.substring(4);
          } else if (line.startsWith("event: ")) {
            name = line.substring(7);
          } else if (line.startsWith("data: ")) {
            data = data == null ? new StringBuilder() : data.append('\n');
            data.append(line.substring(6));
          }
        }
      } catch (IOException e) {
        // The stream was closed by the test.
      }
    }

    @Override
    public void close() throws IOException {
      body.close();
    }
  }
}
