package io.chrootbooter.operator;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImageSpec;
import io.chrootbooter.api.v1alpha1.ImageSource;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.protocol.MachinePhase;
import io.quarkus.test.common.http.TestHTTPResource;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The agent API as a machine uses it: the token from its iPXE script, the desired-state stream,
 * status reports. Runs on every backend with the control-plane scenarios.
 */
public abstract class AgentApiScenarios extends ControlPlaneScenarios {
  private static final String M1 = "52:54:00:12:34:56";
  private static final String M2 = "52:54:00:12:34:57";

  @TestHTTPResource("/")
  URL base;

  /** One Server-Sent Event. */
  record SseEvent(String id, String name, String data) {}

  /** A desired-state stream read on a thread of its own, as an agent reads it. */
  final class Stream implements AutoCloseable {
    final BlockingQueue<SseEvent> events = new LinkedBlockingQueue<>();
    final int status;
    private final Thread reader;
    private final HttpResponse<java.io.InputStream> response;

    Stream(String mac, String token, String lastEventId) throws Exception {
      HttpRequest.Builder request =
          HttpRequest.newBuilder(URI.create(base + "agent/v1/machines/" + mac + "/desired"))
              .header("Accept", "text/event-stream");
      if (token != null) {
        request.header("Authorization", "Bearer " + token);
      }
      if (lastEventId != null) {
        request.header("Last-Event-ID", lastEventId);
      }
      response =
          HttpClient.newHttpClient()
              .send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
      status = response.statusCode();
      reader = new Thread(this::read, "sse-" + mac);
      reader.setDaemon(true);
      reader.start();
    }

    private void read() {
      try (var in =
          new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
        String id = null;
        String name = null;
        StringBuilder data = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
          if (line.isEmpty()) {
            if (data.length() > 0) {
              events.add(new SseEvent(id, name, data.toString()));
            }
            id = null;
            name = null;
            data.setLength(0);
          } else if (line.startsWith("id:")) {
            id = line.substring(3).trim();
          } else if (line.startsWith("event:")) {
            name = line.substring(6).trim();
          } else if (line.startsWith("data:")) {
            data.append(line.substring(5).trim());
          }
        }
      } catch (java.io.IOException e) {
        // The stream was closed by the test.
      }
    }

    /** Whether the operator ended the stream. */
    boolean ended() {
      return !reader.isAlive();
    }

    SseEvent next(Duration within) throws InterruptedException {
      SseEvent event = events.poll(within.toMillis(), TimeUnit.MILLISECONDS);
      assertThat(event).as("an event within %s", within).isNotNull();
      return event;
    }

    @Override
    public void close() throws Exception {
      response.body().close();
      reader.join(2000);
    }
  }

  /** What a machine's agent does first: enrols with the nonce of its iPXE script. */
  String sessionFor(String mac) {
    String nonce = nonceOf(awaitScript(mac, s -> s.contains("cb.nonce=")));
    return enrol(mac, nonce, "boot-" + java.util.UUID.randomUUID())
        .then()
        .statusCode(200)
        .extract()
        .path("session");
  }

  io.restassured.response.Response enrol(String mac, String nonce, String bootId) {
    return given()
        .contentType("application/json")
        .body("{\"nonce\":\"" + nonce + "\",\"bootId\":\"" + bootId + "\"}")
        .post("/agent/v1/machines/" + mac + "/enroll");
  }

  /** An HTTP answer: status and body. */
  record Answer(int status, String body) {}

  /**
   * A POST from another loopback address ({@code 127.0.0.2}: Linux routes all of 127/8 to lo), so
   * that the operator sees a second source address.
   */
  Answer postFrom(String localAddress, String path, String json) throws Exception {
    try (var socket = new java.net.Socket()) {
      socket.bind(new java.net.InetSocketAddress(localAddress, 0));
      socket.connect(new java.net.InetSocketAddress(base.getHost(), base.getPort()), 5000);
      socket.setSoTimeout(10_000);
      byte[] body = json.getBytes(StandardCharsets.UTF_8);
      String head =
          "POST "
              + path
              + " HTTP/1.1\r\nHost: "
              + base.getHost()
              + ":"
              + base.getPort()
              + "\r\nContent-Type: application/json\r\nContent-Length: "
              + body.length
              + "\r\nConnection: close\r\n\r\n";
      var out = socket.getOutputStream();
      out.write(head.getBytes(StandardCharsets.US_ASCII));
      out.write(body);
      out.flush();
      String response = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      int status = Integer.parseInt(response.substring(9, 12));
      int split = response.indexOf("\r\n\r\n");
      return new Answer(status, split < 0 ? "" : response.substring(split + 4));
    }
  }

  @Test
  void specChangeReachesTheAgentWithinASecond() throws Exception {
    applyExamples();
    awaitScript(M1, s -> s.contains("cb.image="));
    try (Stream stream = new Stream(M1, sessionFor(M1), null)) {
      assertThat(stream.status).isEqualTo(200);
      SseEvent first = stream.next(Duration.ofSeconds(5));
      assertThat(first.name()).isEqualTo("desired");
      assertThat(first.data())
          .contains("\"action\":\"Run\"")
          .contains("/images/" + exampleSha("debian-12"));

      client
          .resources(MachineBoot.class)
          .inNamespace(ns)
          .withName("m1")
          .edit(
              m -> {
                m.setSpec(withImage(m.getSpec(), "busybox"));
                return m;
              });
      SseEvent second = stream.next(Duration.ofSeconds(1));
      assertThat(second.data())
          .contains("\"action\":\"Run\"")
          .contains("/images/" + exampleSha("busybox"))
          .contains("\"format\":\"tar.zst\"");
      assertThat(second.id()).isNotEqualTo(first.id());
    }
  }

  /**
   * A BootImage edit reaches the machines that run it although their MachineBoot's generation stays
   * the same: its stop settings, and a new source mirrored under a new digest (the agent tells them
   * apart by what it would boot, not by the generation).
   */
  @Test
  void bootImageEditsArePushedUnderTheSameMachineGeneration() throws Exception {
    applyExamples();
    awaitScript(M1, s -> s.contains("cb.image="));
    try (Stream stream = new Stream(M1, sessionFor(M1), null)) {
      SseEvent first = stream.next(Duration.ofSeconds(5));
      // The example's own stop settings (a grace period, no signal) before the edit.
      assertThat(first.data())
          .contains("\"action\":\"Run\"")
          .doesNotContain("\"stop\":{\"signal\":\"SIGTERM\",\"gracePeriod\":\"1s\"}");
      String generation = first.data().replaceAll(".*\"generation\":([0-9]+).*", "$1");

      editImage(s -> withStop(s, new io.chrootbooter.api.v1alpha1.StopSpec("SIGTERM", "1s")));
      SseEvent stopped = stream.next(Duration.ofSeconds(5));
      assertThat(stopped.data())
          .contains("\"generation\":" + generation + ",")
          .contains("\"stop\":{\"signal\":\"SIGTERM\",\"gracePeriod\":\"1s\"}")
          .contains("/images/" + exampleSha("debian-12"));

      byte[] fresh = fakeImage(new byte[] {'h', 's', 'q', 's'}, 41);
      String freshSha = images.put("debian-12-rebuilt.squashfs", fresh);
      editImage(
          s ->
              s.toBuilder()
                  .source(new ImageSource(images.url("debian-12-rebuilt.squashfs"), null))
                  .sha256(freshSha)
                  .build());
      SseEvent remirrored;
      do {
        remirrored = stream.next(Duration.ofSeconds(10));
      } while (!remirrored.data().contains("\"action\":\"Run\""));
      assertThat(remirrored.data())
          .contains("\"generation\":" + generation + ",")
          .contains("/images/" + freshSha)
          .contains("\"sha256\":\"" + freshSha + "\"");
      assertThat(remirrored.id()).isNotEqualTo(stopped.id());

      // An invalid edit of the image holds the machine; nothing of the invalid spec goes out.
      // (An API server that applies the schema refuses the edit itself.)
      try {
        editImage(s -> withStop(s, new io.chrootbooter.api.v1alpha1.StopSpec("SIGKILL", null)));
      } catch (io.fabric8.kubernetes.client.KubernetesClientException refused) {
        assertThat(refused.getCode()).isEqualTo(422);
        assertThat(refused.getMessage()).contains("spec.stop.signal");
        return;
      }
      // The re-mirrored image's verity tree may still be pushed (a Run) before the hold.
      SseEvent held;
      do {
        held = stream.next(Duration.ofSeconds(10));
        assertThat(held.data()).doesNotContain("SIGKILL");
      } while (!held.data().contains("\"action\":\"Hold\""));
      assertThat(held.data()).contains("BootImage debian-12");
    }
  }

  /**
   * Edits the example BootImage's spec as kubectl edit would, again after a conflict with the
   * operator's status patches; any other refusal is thrown.
   */
  private void editImage(java.util.function.UnaryOperator<BootImageSpec> change)
      throws InterruptedException {
    againOnConflict(
        () ->
            client
                .resources(BootImage.class)
                .inNamespace(ns)
                .withName("debian-12")
                .edit(
                    i -> {
                      i.setSpec(change.apply(i.getSpec()));
                      return i;
                    }));
  }

  /**
   * Runs a read-modify-write of an object the operator also writes, again after a 409 conflict (up
   * to 20 times); any other refusal is thrown.
   */
  private static void againOnConflict(Runnable edit) throws InterruptedException {
    for (int attempt = 1; ; attempt++) {
      try {
        edit.run();
        return;
      } catch (io.fabric8.kubernetes.client.KubernetesClientException e) {
        if (e.getCode() != 409 || attempt == 20) {
          throw e;
        }
        Thread.sleep(100);
      }
    }
  }

  private static BootImageSpec withStop(
      BootImageSpec s, io.chrootbooter.api.v1alpha1.StopSpec stop) {
    return s.toBuilder().stop(stop).build();
  }

  @Test
  void reconnectingWithTheLastEventIdGetsNoDuplicateButAnyNewerState() throws Exception {
    applyExamples();
    String token = sessionFor(M2);
    String lastId;
    try (Stream stream = new Stream(M2, token, null)) {
      SseEvent event = stream.next(Duration.ofSeconds(5));
      assertThat(event.data()).contains("\"action\":\"Bootstrap\"");
      lastId = event.id();
    }
    try (Stream again = new Stream(M2, token, lastId)) {
      assertThat(again.events.poll(1500, TimeUnit.MILLISECONDS))
          .as("a duplicate of the state already applied")
          .isNull();
    }
    client
        .resources(MachineBoot.class)
        .inNamespace(ns)
        .withName("m2")
        .edit(
            m -> {
              m.setSpec(withImage(m.getSpec(), "debian-12"));
              return m;
            });
    awaitScript(M2, s -> s.contains("cb.image="));
    try (Stream resumed = new Stream(M2, token, lastId)) {
      assertThat(resumed.next(Duration.ofSeconds(2)).data())
          .contains("\"action\":\"Run\"")
          .contains("debian-12");
    }
  }

  @Test
  void imageBecomingAvailableIsPushed() throws Exception {
    applyExample("machineboot-m1.yaml");
    String token = sessionFor(M1);
    try (Stream stream = new Stream(M1, token, null)) {
      assertThat(stream.next(Duration.ofSeconds(5)).data())
          .contains("\"action\":\"Hold\"")
          .contains("not Ready");
      applyExample("bootimage-debian-12.yaml");
      assertThat(stream.next(Duration.ofSeconds(10)).data()).contains("\"action\":\"Run\"");
    }
  }

  @Test
  void statusReportsShowInKubectlColumnsAndConditions() {
    applyExamples();
    String token = sessionFor(M1);
    given()
        .header("Authorization", "Bearer " + token)
        .contentType("application/json")
        .body(
            "{\"phase\":\"Running\",\"currentImage\":\"debian-12\",\"agent\":{\"version\":\"0.1.0\",\"bootId\":\"b1\",\"ip\":\"10.0.0.2\",\"kernel\":\"6.1.0\"}}")
        .post("/agent/v1/machines/" + M1 + "/status")
        .then()
        .statusCode(202);
    MachineBoot m1 = awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
    assertThat(columns(m1))
        .containsEntry("Phase", "Running")
        .containsEntry("IP", "10.0.0.2")
        .containsEntry("Image", "debian-12")
        .containsEntry("Running", "debian-12");
    awaitEvent("m1", "Normal", "Running", "running BootImage debian-12");

    // Back in the bootstrap the agent names no image, and the Running column is empty again.
    given()
        .header("Authorization", "Bearer " + token)
        .contentType("application/json")
        .body("{\"phase\":\"Bootstrap\"}")
        .post("/agent/v1/machines/" + M1 + "/status")
        .then()
        .statusCode(202);
    MachineBoot back =
        awaitMachine(
            "m1",
            m ->
                m.getStatus() != null
                    && "Bootstrap".equals(String.valueOf(columns(m).get("Phase"))));
    assertThat(back.getStatus().currentImage()).isNull();
    assertThat(columns(back)).containsEntry("Running", "").containsEntry("Image", "debian-12");
  }

  @Test
  void tokensAreCheckedAndNothingIsWrittenOnRefusal() {
    applyExamples();
    String m1Token = sessionFor(M1);
    sessionFor(M2);
    String report = "{\"phase\":\"Failed\",\"error\":\"forged\"}";
    given()
        .contentType("application/json")
        .body(report)
        .post("/agent/v1/machines/" + M2 + "/status")
        .then()
        .statusCode(401);
    given()
        .header("Authorization", "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .contentType("application/json")
        .body(report)
        .post("/agent/v1/machines/" + M2 + "/status")
        .then()
        .statusCode(401);
    given()
        .header("Authorization", "Bearer " + m1Token)
        .contentType("application/json")
        .body(report)
        .post("/agent/v1/machines/" + M2 + "/status")
        .then()
        .statusCode(403);
    given()
        .header("Authorization", "Bearer " + m1Token)
        .get("/agent/v1/machines/" + M2 + "/desired")
        .then()
        .statusCode(403);
    given().get("/agent/v1/machines/" + M2 + "/desired").then().statusCode(401);
    // A real report afterwards is the first and only thing written.
    given()
        .header("Authorization", "Bearer " + m1Token)
        .contentType("application/json")
        .body("{\"phase\":\"Downloading\"}")
        .post("/agent/v1/machines/" + M1 + "/status")
        .then()
        .statusCode(202);
    awaitMachine("m1", m -> m.getStatus().phase() == MachinePhase.Downloading);
    MachineBoot m2 = client.resources(MachineBoot.class).inNamespace(ns).withName("m2").get();
    assertThat(m2.getStatus().phase()).isEqualTo(MachinePhase.Pending);
    assertThat(m2.getStatus().error()).isNull();
  }

  @Test
  void malformedReportsAreRefusedWithAReason() {
    applyExamples();
    String token = sessionFor(M1);
    record Case(String body, String message) {}
    for (Case c :
        java.util.List.of(
            new Case("{\"phase\":\"Dancing\"}", "phase: \"Dancing\" is not one of"),
            new Case(
                "{\"phase\":\"Downloading\",\"progress\":{\"bytes\":-1}}",
                "progress.bytes: -1 is negative"),
            new Case(
                "{\"phase\":\"Running\",\"currentImage\":\"../etc\"}",
                "currentImage: \"../etc\" is not a BootImage name"),
            new Case(
                "{\"phase\":\"Failed\",\"error\":\"line\\nforged\"}",
                "error: \"line\\u000aforged\" holds characters other than printable ASCII"),
            new Case(
                "{\"phase\":\"Running\",\"surprise\":1}", "not valid JSON of the expected shape"),
            new Case("not json", "not valid JSON"),
            new Case(
                "{\"phase\":\"Running\",\"error\":\"" + "x".repeat(70_000) + "\"}",
                "more than 65536 bytes"))) {
      given()
          .header("Authorization", "Bearer " + token)
          .contentType("application/json")
          .body(c.body())
          .post("/agent/v1/machines/" + M1 + "/status")
          .then()
          .statusCode(400)
          .body(org.hamcrest.Matchers.containsString(c.message()));
    }
  }

  @Test
  void burstsOfProgressAreCoalescedAndTheFinalPhaseIsKept() {
    applyExamples();
    String token = sessionFor(M1);
    awaitMachine("m1", m -> m.getStatus().observedGeneration() != null);
    double before = patchesWritten();
    long start = System.nanoTime();
    for (int i = 1; i <= 50; i++) {
      given()
          .header("Authorization", "Bearer " + token)
          .contentType("application/json")
          .body(
              "{\"phase\":\"Downloading\",\"progress\":{\"bytes\":"
                  + (i * 1000)
                  + ",\"total\":50000,\"bytesPerSecond\":1000}}")
          .post("/agent/v1/machines/" + M1 + "/status")
          .then()
          .statusCode(202);
    }
    given()
        .header("Authorization", "Bearer " + token)
        .contentType("application/json")
        .body("{\"phase\":\"Running\",\"currentImage\":\"debian-12\"}")
        .post("/agent/v1/machines/" + M1 + "/status")
        .then()
        .statusCode(202);
    double postingSeconds = (System.nanoTime() - start) / 1e9;
    MachineBoot m1 = awaitMachine("m1", m -> m.getStatus().phase() == MachinePhase.Running);
    assertThat(m1.getStatus().progress().bytes()).isEqualTo(50_000L);
    await()
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(3))
        .until(
            () ->
                client
                        .resources(MachineBoot.class)
                        .inNamespace(ns)
                        .withName("m1")
                        .get()
                        .getStatus()
                        .phase()
                    == MachinePhase.Running);
    // At most one patch a second, plus the first, however fast the reports came.
    assertThat(patchesWritten() - before)
        .as("status patches for 51 reports posted in %.2f s", postingSeconds)
        .isBetween(1.0, 1.0 + Math.ceil(postingSeconds));
  }

  @Test
  void eachReturnIsRecordedOnceAsAnEventAndInTheHistogramByTrigger() {
    applyExamples();
    String token = sessionFor(M1);
    double hotkeys = metric("chrootbooter_return_seconds_count", "trigger=\"Hotkey\"");
    double fastHotkeys =
        metric("chrootbooter_return_seconds_bucket", "trigger=\"Hotkey\"", "le=\"0.25\"");
    double others = metric("chrootbooter_return_seconds_count", "trigger=\"Other\"");
    String hotkey =
        "{\"phase\":\"Bootstrap\",\"lastReturn\":{\"trigger\":\"Hotkey\",\"reason\":"
            + "\"Ctrl+Alt+F12 at the console\",\"time\":\"2026-01-01T10:00:00Z\","
            + "\"durationMillis\":159}}";
    String written = report(M1, token, hotkey);
    awaitEvent(
        "m1",
        "Normal",
        "Hotkey",
        "returned to the bootstrap in 159 ms: Ctrl+Alt+F12 at the console");
    // The agent repeats its last return in every report: a repetition records nothing.
    written = report(M1, token, hotkey.replace("Bootstrap", "Downloading"), written);
    report(M1, token, hotkey.replace("Bootstrap", "Running"), written);
    assertThat(metric("chrootbooter_return_seconds_count", "trigger=\"Hotkey\"") - hotkeys)
        .isEqualTo(1.0);
    assertThat(
            metric("chrootbooter_return_seconds_bucket", "trigger=\"Hotkey\"", "le=\"0.25\"")
                - fastHotkeys)
        .isEqualTo(1.0);
    assertThat(events("m1", "Hotkey")).hasSize(1);
    // Each phase the reports moved the machine to is an Event of its own.
    awaitEvent("m1", "Normal", "PhaseChanged", "phase Bootstrap → Downloading");
    awaitEvent("m1", "Normal", "PhaseChanged", "phase Downloading → Running");

    // A trigger the agent does not know is counted without a label of its own.
    report(
        M1,
        token,
        "{\"phase\":\"Bootstrap\",\"lastReturn\":{\"trigger\":\"Invented\","
            + "\"time\":\"2026-01-01T10:05:00Z\",\"durationMillis\":2000}}");
    awaitEvent("m1", "Normal", "Other", "returned to the bootstrap in 2000 ms (trigger Invented)");
    assertThat(metric("chrootbooter_return_seconds_count", "trigger=\"Other\"") - others)
        .isEqualTo(1.0);
    assertThat(admin().get("/q/metrics").then().extract().asString()).doesNotContain("Invented");
  }

  @Test
  void switchesAreTimedFromTheDesiredStateToTheRunningReport() throws Exception {
    applyExamples();
    awaitScript(M1, s -> s.contains("cb.image="));
    String token = sessionFor(M1);
    double fromBootstrap = metric("chrootbooter_switch_seconds_count", "trigger=\"Bootstrap\"");
    double specChanges = metric("chrootbooter_switch_seconds_count", "trigger=\"SpecChange\"");
    double specChangeSeconds = metric("chrootbooter_switch_seconds_sum", "trigger=\"SpecChange\"");
    try (Stream stream = new Stream(M1, token, null)) {
      assertThat(stream.next(Duration.ofSeconds(5)).data()).contains("\"action\":\"Run\"");
      report(M1, token, "{\"phase\":\"Downloading\",\"appliedGeneration\":1}");
      report(
          M1,
          token,
          "{\"phase\":\"Running\",\"currentImage\":\"debian-12\",\"appliedGeneration\":1}");
      assertThat(
              metric("chrootbooter_switch_seconds_count", "trigger=\"Bootstrap\"") - fromBootstrap)
          .isEqualTo(1.0);
      awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));

      long start = System.nanoTime();
      client
          .resources(MachineBoot.class)
          .inNamespace(ns)
          .withName("m1")
          .edit(
              m -> {
                m.setSpec(withImage(m.getSpec(), "busybox"));
                return m;
              });
      assertThat(stream.next(Duration.ofSeconds(5)).data()).contains("busybox");
      // A report of the old generation, as sent before the agent saw the change, ends nothing.
      String running =
          report(
              M1,
              token,
              "{\"phase\":\"Running\",\"currentImage\":\"debian-12\",\"appliedGeneration\":1}");
      assertThat(
              metric("chrootbooter_switch_seconds_count", "trigger=\"SpecChange\"") - specChanges)
          .isZero();
      report(
          M1,
          token,
          "{\"phase\":\"Running\",\"currentImage\":\"busybox\",\"appliedGeneration\":2}",
          running);
      double elapsed = (System.nanoTime() - start) / 1e9;
      assertThat(
              metric("chrootbooter_switch_seconds_count", "trigger=\"SpecChange\"") - specChanges)
          .isEqualTo(1.0);
      assertThat(
              metric(
                  "chrootbooter_switch_seconds_count",
                  "trigger=\"SpecChange\"",
                  "image=\"busybox\""))
          .as("the switch's series names its image")
          .isGreaterThanOrEqualTo(1.0);
      assertThat(
              metric("chrootbooter_switch_seconds_sum", "trigger=\"SpecChange\"")
                  - specChangeSeconds)
          .as("seconds of the switch; %.2f s passed from the edit to the last report", elapsed)
          .isGreaterThan(0.0)
          .isLessThanOrEqualTo(elapsed);
      // The last BootImage of that name goes: so do its series (the label stays bounded).
      client.resources(BootImage.class).inNamespace(ns).withName("busybox").delete();
      await()
          .atMost(Duration.ofSeconds(30))
          .untilAsserted(
              () ->
                  assertThat(admin().get("/q/metrics").then().extract().asString())
                      .doesNotContain("image=\"busybox\""));
      assertThat(metric("chrootbooter_switch_seconds_count", "image=\"debian-12\""))
          .as("the other image's series stay")
          .isGreaterThanOrEqualTo(1.0);
    }
  }

  /**
   * The JSON of a timeline of the given steps, each {@code stepMillis} long, from {@code start}.
   */
  static String timeline(
      String image,
      String trigger,
      java.time.Instant start,
      long stepMillis,
      boolean done,
      String... steps) {
    StringBuilder json = new StringBuilder("{");
    if (image != null) {
      json.append("\"image\":\"").append(image).append("\",");
    }
    if (trigger != null) {
      json.append("\"trigger\":\"").append(trigger).append("\",");
    }
    int timed = done ? steps.length : steps.length - 1;
    json.append("\"started\":\"")
        .append(start)
        .append("\",\"seconds\":")
        .append(timed * stepMillis / 1000.0);
    if (done) {
      json.append(",\"result\":\"Succeeded\"");
    }
    json.append(",\"steps\":[");
    for (int i = 0; i < steps.length; i++) {
      json.append(i == 0 ? "" : ",")
          .append("{\"name\":\"")
          .append(steps[i])
          .append("\",\"at\":\"")
          .append(start.plusMillis(i * stepMillis))
          .append("\"");
      if (i < timed) {
        json.append(",\"seconds\":").append(stepMillis / 1000.0);
      }
      json.append("}");
    }
    return json.append("]}").toString();
  }

  private static final String[] BOOT_STEPS = {
    "agent-up",
    "enrolled",
    "desired-state",
    "download",
    "verify",
    "mount",
    "pivot-root",
    "init-exec",
    "healthy"
  };

  private static final String[] SWITCH_STEPS = {
    "desired-state",
    "return-trigger",
    "grace",
    "teardown",
    "bootstrap-ready",
    "download",
    "verify",
    "mount",
    "pivot-root",
    "init-exec",
    "healthy"
  };

  @Test
  void theFlightRecorderShowsTheLastBootAndSwitchAndABoundedHistory() throws Exception {
    applyExamples();
    java.nio.file.Path dir =
        java.nio.file.Files.createDirectories(java.nio.file.Path.of("target/test-bootstrap"));
    java.nio.file.Files.write(dir.resolve("vmlinuz"), fakeImage(new byte[] {'M', 'Z'}, 16));
    java.nio.file.Files.write(
        dir.resolve("initramfs"), fakeImage(new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd}, 17));
    // The machine network-boots: its script, then the kernel and initramfs the script names.
    String token = sessionFor(M1);
    given().get("/bootstrap/vmlinuz?mac=" + M1).then().statusCode(200);
    given().get("/bootstrap/initramfs?mac=" + M1).then().statusCode(200);
    double downloads = metric("chrootbooter_step_seconds_count", "step=\"download\"");
    java.time.Instant t = java.time.Instant.now().plusMillis(200);

    String boot = timeline("debian-12", null, t, 500, true, BOOT_STEPS);
    String written =
        report(
            M1,
            token,
            "{\"phase\":\"Running\",\"currentImage\":\"debian-12\",\"appliedGeneration\":1,"
                + "\"healthy\":true,\"timelines\":["
                + boot
                + "]}");
    MachineBoot m1 = awaitMachine("m1", m -> m.getStatus().lastBoot() != null);
    var lastBoot = m1.getStatus().lastBoot();
    assertThat(lastBoot.steps())
        .extracting(io.chrootbooter.protocol.Timeline.Step::name)
        .containsExactly(
            "script-served",
            "kernel-served",
            "initramfs-served",
            "agent-up",
            "enrolled",
            "desired-state",
            "download",
            "verify",
            "mount",
            "pivot-root",
            "init-exec",
            "healthy");
    assertThat(lastBoot.steps().get(1).detail()).matches("256 KiB at [0-9.]+ [kMG]?B/s");
    assertThat(lastBoot.started()).isEqualTo(lastBoot.steps().get(0).at());
    assertThat(lastBoot.seconds())
        .isCloseTo(
            lastBoot.steps().stream().mapToDouble(s -> s.seconds()).sum(),
            org.assertj.core.api.Assertions.within(0.002));
    assertThat(m1.getStatus().lastSwitch()).isNull();
    assertThat(m1.getStatus().history()).hasSize(1);

    // Twelve switches, reported three at a time as the agent does (newest first): the history
    // keeps the ten newest, each with its steps' seconds; lastSwitch holds the newest with its
    // steps.
    String lastBatch = null;
    for (int batch = 0; batch < 4; batch++) {
      java.util.List<String> three = new java.util.ArrayList<>();
      for (int i = 2; i >= 0; i--) {
        int n = batch * 3 + i;
        three.add(
            timeline(
                n % 2 == 0 ? "busybox" : "debian-12",
                "SpecChange",
                t.plusSeconds(60 + 60L * n),
                100 + n,
                true,
                SWITCH_STEPS));
      }
      lastBatch =
          "{\"phase\":\"Running\",\"currentImage\":\"debian-12\",\"appliedGeneration\":1,"
              + "\"healthy\":true,\"timelines\":["
              + String.join(",", three)
              + "]}";
      written = report(M1, token, lastBatch, written);
    }
    m1 = client.resources(MachineBoot.class).inNamespace(ns).withName("m1").get();
    var history = m1.getStatus().history();
    assertThat(history).hasSize(10);
    assertThat(history.get(0).started()).isEqualTo(t.plusSeconds(60 + 60L * 11).toString());
    assertThat(history)
        .extracting(io.chrootbooter.api.v1alpha1.TimelineSummary::started)
        .isSortedAccordingTo(java.util.Comparator.reverseOrder());
    assertThat(history.get(0).stepSeconds())
        .containsOnlyKeys(SWITCH_STEPS)
        .containsEntry("download", 0.111);
    assertThat(history.get(0).seconds())
        .isEqualTo(11 * 0.111, org.assertj.core.api.Assertions.offset(0.001));
    assertThat(m1.getStatus().lastSwitch().steps()).hasSize(SWITCH_STEPS.length);
    assertThat(m1.getStatus().lastSwitch().image()).isEqualTo("debian-12");
    assertThat(m1.getStatus().lastBoot()).as("kept while switches come").isEqualTo(lastBoot);
    // Counted by the replica once its write landed: a moment after the status shows it.
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(
                        metric("chrootbooter_step_seconds_count", "step=\"download\"") - downloads)
                    .as("each ended timeline counted once")
                    .isEqualTo(13.0));

    // The agent repeats its timelines in every report: nothing is added or counted again.
    double unchanged = metric("chrootbooter_agent_status_unchanged_total");
    String before = written;
    given()
        .header("Authorization", "Bearer " + token)
        .contentType("application/json")
        .body(lastBatch)
        .post("/agent/v1/machines/" + M1 + "/status")
        .then()
        .statusCode(202);
    await()
        .atMost(Duration.ofSeconds(30))
        .until(
            () ->
                metric("chrootbooter_agent_status_unchanged_total") > unchanged
                    || !before.equals(
                        client
                            .resources(MachineBoot.class)
                            .inNamespace(ns)
                            .withName("m1")
                            .get()
                            .getStatus()
                            .lastReportTime()));
    m1 = client.resources(MachineBoot.class).inNamespace(ns).withName("m1").get();
    written = m1.getStatus().lastReportTime();
    assertThat(m1.getStatus().history()).isEqualTo(history);
    Thread.sleep(500);
    assertThat(metric("chrootbooter_step_seconds_count", "step=\"download\"") - downloads)
        .isEqualTo(13.0);

    // A switch in progress shows in lastSwitch without a result, and not in the history.
    String inProgress =
        timeline(
            "busybox", "SpecChange", t.plusSeconds(3600), 100, false, "desired-state", "download");
    report(
        M1,
        token,
        "{\"phase\":\"Downloading\",\"currentImage\":\"debian-12\",\"appliedGeneration\":1,"
            + "\"timelines\":["
            + inProgress
            + "]}",
        written);
    m1 = awaitMachine("m1", m -> m.getStatus().lastSwitch().result() == null);
    assertThat(m1.getStatus().lastSwitch().steps()).hasSize(2);
    assertThat(m1.getStatus().lastSwitch().steps().get(1).seconds()).isNull();
    assertThat(m1.getStatus().history()).isEqualTo(history);
    assertThat(metric("chrootbooter_step_seconds_count", "step=\"download\"") - downloads)
        .isEqualTo(13.0);

    // Hostile timelines are refused with a reason, and nothing is written.
    record Case(String timelines, String message) {}
    for (Case c :
        java.util.List.of(
            new Case(
                "[" + boot + "," + boot + "," + boot + "," + boot + "]",
                "timelines: 4 timelines; at most 3"),
            new Case(
                "[" + boot.replace("\"enrolled\"", "\"Enrolled; rm\"") + "]",
                "timelines[0].steps[1].name: \"Enrolled; rm\" is not a step name"),
            new Case(
                "[" + boot.replace("\"seconds\":0.5", "\"seconds\":-0.5") + "]",
                "timelines[0].steps[0].seconds: -0.5 is not between 0 and"),
            new Case(
                "[" + boot.replace("\"started\":\"", "\"started\":\"yesterday") + "]",
                "timelines[0].started: \"yesterday"),
            new Case(
                "[" + boot.replace("Succeeded", "Crashed") + "]",
                "timelines[0].result: \"Crashed\" is not Succeeded or Failed"))) {
      given()
          .header("Authorization", "Bearer " + token)
          .contentType("application/json")
          .body("{\"phase\":\"Running\",\"timelines\":" + c.timelines() + "}")
          .post("/agent/v1/machines/" + M1 + "/status")
          .then()
          .statusCode(400)
          .body(org.hamcrest.Matchers.containsString(c.message()));
    }
  }

  @Test
  void aReportOlderThanTheOneInTheStatusIsNotWritten() throws InterruptedException {
    applyExamples();
    String token = sessionFor(M1);
    report(M1, token, "{\"phase\":\"Bootstrap\"}");
    // Another replica wrote a report it received later than the one posted below will be.
    String later = java.time.Instant.now().plusSeconds(3600).toString();
    againOnConflict(
        () ->
            client
                .resources(MachineBoot.class)
                .inNamespace(ns)
                .withName("m1")
                .editStatus(
                    m -> {
                      var s = m.getStatus();
                      m.setStatus(
                          io.chrootbooter.api.v1alpha1.MachineBootStatus.builder()
                              .phase(MachinePhase.Running)
                              .currentImage("debian-12")
                              .observedGeneration(s.observedGeneration())
                              .lastReturn(s.lastReturn())
                              .agent(s.agent())
                              .lastReportTime(later)
                              .conditions(s.conditions())
                              .build());
                      return m;
                    }));
    double superseded = metric("chrootbooter_agent_status_superseded_total");
    given()
        .header("Authorization", "Bearer " + token)
        .contentType("application/json")
        .body("{\"phase\":\"Downloading\"}")
        .post("/agent/v1/machines/" + M1 + "/status")
        .then()
        .statusCode(202);
    await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> metric("chrootbooter_agent_status_superseded_total") - superseded == 1.0);
    MachineBoot m1 = client.resources(MachineBoot.class).inNamespace(ns).withName("m1").get();
    assertThat(m1.getStatus().phase()).isEqualTo(MachinePhase.Running);
    assertThat(m1.getStatus().lastReportTime()).isEqualTo(later);
  }

  /** Posts a report, waits until it is in the status, and returns its {@code lastReportTime}. */
  String report(String mac, String token, String json) {
    return report(mac, token, json, null);
  }

  /** As {@link #report(String, String, String)}, waiting for a newer time than {@code after}. */
  String report(String mac, String token, String json, String after) {
    given()
        .header("Authorization", "Bearer " + token)
        .contentType("application/json")
        .body(json)
        .post("/agent/v1/machines/" + mac + "/status")
        .then()
        .statusCode(202);
    return awaitMachine(
            mac.equals(M1) ? "m1" : "m2",
            m ->
                m.getStatus().lastReportTime() != null
                    && !m.getStatus().lastReportTime().equals(after))
        .getStatus()
        .lastReportTime();
  }

  java.util.List<io.fabric8.kubernetes.api.model.Event> events(String name, String reason) {
    return client.v1().events().inNamespace(ns).list().getItems().stream()
        .filter(e -> name.equals(e.getInvolvedObject().getName()) && reason.equals(e.getReason()))
        .toList();
  }

  /** The sum of the samples of {@code name} with all these labels ({@code key="value"}). */
  double metric(String name, String... labels) {
    return admin()
        .get("/q/metrics")
        .then()
        .extract()
        .asString()
        .lines()
        .filter(l -> l.startsWith(name + "{") || l.startsWith(name + " "))
        .filter(l -> java.util.Arrays.stream(labels).allMatch(l::contains))
        .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }

  double patchesWritten() {
    String metrics = admin().get("/q/metrics").then().extract().asString();
    return metrics
        .lines()
        .filter(l -> l.startsWith("chrootbooter_agent_status_patches_total"))
        .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }
}
