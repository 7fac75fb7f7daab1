package io.chrootbooter.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.quarkus.test.common.http.TestHTTPResource;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A machine's recorded console as the agent sends it and an operator of the cluster reads it: an
 * enrolled machine posts pieces of two boots' consoles with a kernel warning, resends one, sends
 * hostile ones; the admin port serves the current and the previous boot, credentials redacted, and
 * the warning is one {@code KernelWarning} Event.
 */
public abstract class ConsoleScenarios extends BootTestScenarios {
  private static final Duration TIMEOUT = Duration.ofSeconds(30);
  private static final String WARNING = "WARNING: CPU: 0 PID: 1 at kernel/test.c:42 probe+0x1/0x2";

  @TestHTTPResource("/")
  URL base;

  @TestHTTPResource(value = "/", management = true)
  URL management;

  private final HttpClient http = HttpClient.newHttpClient();
  private String mac;

  /** A MAC of this scenario's namespace (the namespace is the scenarios' own). */
  @BeforeEach
  void pickConsoleMac() {
    int n = Math.abs(ns.hashCode() % 200) + 16;
    mac = String.format("52:54:00:30:%02x:%02x", n, n);
  }

  @Test
  void theRecordedConsoleOfTwoBootsIsServedRedactedAndAWarningIsOneEvent() throws Exception {
    GenericKubernetesResource raw = new GenericKubernetesResource();
    raw.setApiVersion(BootImage.GROUP + "/" + BootImage.VERSION);
    raw.setKind("MachineBoot");
    raw.setMetadata(new ObjectMetaBuilder().withName("m1").withNamespace(ns).build());
    raw.setAdditionalProperty("spec", Map.of("macAddress", mac, "state", "Bootstrap"));
    client.resource(raw).inNamespace(ns).create();
    String session = await().atMost(TIMEOUT).until(this::enrol, s -> s != null);

    // Without the machine's session: refused, nothing recorded.
    assertThat(post(null, chunk("b-1", 0, "stolen", 0, List.of(), false)).statusCode())
        .isEqualTo(401);

    String first =
        "Debian GNU/Linux 12 m1 ttyS0\r\n\r\nm1 login: root\r\nPassword: \r\n"
            + "curl -H 'Authorization: Bearer sEcReT123' http://x\r\n";
    assertThat(post(session, chunk("b-1", 0, first, 0, List.of(WARNING), false)).statusCode())
        .isEqualTo(202);
    // The same piece again (a lost answer): nothing doubles, no second Event.
    assertThat(post(session, chunk("b-1", 0, first, 0, List.of(WARNING), false)).statusCode())
        .isEqualTo(202);
    String more = "[   12.000000] reboot: Power down\r\n";
    assertThat(post(session, chunk("b-1", first.length(), more, 1, List.of(), true)).statusCode())
        .isEqualTo(202);

    HttpResponse<String> current = get("/machines/" + ns + "/m1/console");
    assertThat(current.statusCode()).isEqualTo(200);
    assertThat(current.headers().firstValue("Content-Type")).hasValue("text/plain; charset=utf-8");
    assertThat(current.headers().firstValue("Chrootbooter-Boot")).hasValue("b-1");
    assertThat(current.headers().firstValue("Chrootbooter-Ended")).hasValue("true");
    assertThat(current.body())
        .startsWith("Debian GNU/Linux 12 m1 ttyS0\r\n")
        .endsWith("reboot: Power down\r\n")
        .contains("Authorization: Bearer [redacted]")
        .doesNotContain("sEcReT123");
    assertThat(current.body().split("m1 login", -1)).hasSize(2);

    // The next boot: the first is now the previous one.
    assertThat(post(session, chunk("b-2", 0, "second boot\r\n", 0, List.of(), false)).statusCode())
        .isEqualTo(202);
    // A piece the agent's ring lost before it was sent shows as a line.
    assertThat(post(session, chunk("b-2", 5000, "later\r\n", 0, List.of(), false)).statusCode())
        .isEqualTo(202);
    assertThat(get("/machines/" + ns + "/m1/console").body())
        .isEqualTo(
            "second boot\r\n\r\n[chrootbooter: 4987 bytes of this console were lost]\r\nlater\r\n");
    HttpResponse<String> previous = get("/machines/" + ns + "/m1/console?boot=previous");
    assertThat(previous.headers().firstValue("Chrootbooter-Boot")).hasValue("b-1");
    assertThat(previous.body()).startsWith("Debian GNU/Linux 12").endsWith("Power down\r\n");

    // The warning: one Warning Event with its first line.
    await()
        .atMost(TIMEOUT)
        .untilAsserted(
            () -> {
              List<Event> warnings =
                  client.v1().events().inNamespace(ns).list().getItems().stream()
                      .filter(e -> "KernelWarning".equals(e.getReason()))
                      .toList();
              assertThat(warnings).hasSize(1);
              assertThat(warnings.get(0).getType()).isEqualTo("Warning");
              assertThat(warnings.get(0).getMessage()).isEqualTo(WARNING);
              assertThat(warnings.get(0).getInvolvedObject().getName()).isEqualTo("m1");
            });

    // Hostile pieces: each refused with what is wrong, nothing recorded.
    assertThat(post(session, "{not json").statusCode()).isEqualTo(400);
    HttpResponse<String> badBoot = post(session, chunk("../etc", 0, "x", 0, List.of(), false));
    assertThat(badBoot.statusCode()).isEqualTo(400);
    assertThat(badBoot.body()).contains("boot:");
    assertThat(post(session, chunk("b-2", -1, "x", 0, List.of(), false)).body())
        .contains("offset: negative");
    assertThat(post(session, "{\"boot\":\"b-2\",\"data\":\"%%%\"}").body()).contains("base64");
    String huge = "{\"boot\":\"b-2\",\"data\":\"" + "A".repeat(600 * 1024) + "\"}";
    assertThat(post(session, huge).statusCode()).isEqualTo(400);
    assertThat(get("/machines/" + ns + "/m1/console").body()).doesNotContain("x\r\n");

    // The status page links each machine's recorded consoles.
    assertThat(get("/").body())
        .contains("href=\"machines/" + ns + "/m1/console\"")
        .contains("href=\"machines/" + ns + "/m1/console?boot=previous\"");

    // What does not exist.
    assertThat(get("/machines/" + ns + "/nobody/console").statusCode()).isEqualTo(404);
    assertThat(get("/machines/" + ns + "/m1/console?boot=next").statusCode()).isEqualTo(400);
    assertThat(get("/machines/" + ns + "/M%2F1/console").statusCode()).isEqualTo(400);
    // The machine port has no such route.
    assertThat(
            http.send(
                    HttpRequest.newBuilder(URI.create(base + "machines/" + ns + "/m1/console"))
                        .build(),
                    HttpResponse.BodyHandlers.ofString())
                .statusCode())
        .isEqualTo(404);
  }

  private String chunk(
      String boot, long offset, String text, int firstWarning, List<String> warnings, boolean end) {
    StringBuilder w = new StringBuilder("[");
    for (String s : warnings) {
      w.append(w.length() > 1 ? "," : "").append('"').append(s).append('"');
    }
    return "{\"boot\":\""
        + boot
        + "\",\"image\":\"http://images.test/debian-12.squashfs\",\"started\":\"2026-01-01T00:00:00Z\""
        + ",\"offset\":"
        + offset
        + ",\"data\":\""
        + Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8))
        + "\",\"firstWarning\":"
        + firstWarning
        + ",\"warnings\":"
        + w
        + "],\"ended\":"
        + end
        + "}";
  }

  private HttpResponse<String> post(String session, String json) throws Exception {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(URI.create(base + "agent/v1/machines/" + mac + "/console"))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json));
    if (session != null) {
      request.header("Authorization", "Bearer " + session);
    }
    return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  private HttpResponse<String> get(String path) throws Exception {
    return http.send(
        HttpRequest.newBuilder(URI.create(management.toString()).resolve(path)).build(),
        HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
  }

  /** The machine's session: the nonce of its iPXE script exchanged at enrolment; null if none. */
  private String enrol() throws Exception {
    HttpResponse<String> script =
        http.send(
            HttpRequest.newBuilder(URI.create(base + "boot/" + mac + ".ipxe")).build(),
            HttpResponse.BodyHandlers.ofString());
    if (script.statusCode() != 200 || !script.body().contains("cb.nonce=")) {
      return null;
    }
    String nonce = script.body().replaceAll("(?s).* cb\\.nonce=([^ \\n]+).*", "$1");
    String enrolled =
        http.send(
                HttpRequest.newBuilder(URI.create(base + "agent/v1/machines/" + mac + "/enroll"))
                    .header("Content-Type", "application/json")
                    .POST(
                        HttpRequest.BodyPublishers.ofString(
                            "{\"nonce\":\"" + nonce + "\",\"bootId\":\"b1\"}"))
                    .build(),
                HttpResponse.BodyHandlers.ofString())
            .body();
    String session = enrolled.replaceAll("(?s).*\"session\":\"([A-Za-z0-9_-]+)\".*", "$1");
    return session.matches("[A-Za-z0-9_-]{20,}") ? session : null;
  }
}
