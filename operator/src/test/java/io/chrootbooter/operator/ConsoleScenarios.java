package io.chrootbooter.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.api.model.rbac.PolicyRule;
import io.fabric8.kubernetes.api.model.rbac.PolicyRuleBuilder;
import io.fabric8.kubernetes.api.model.rbac.RoleBindingBuilder;
import io.fabric8.kubernetes.api.model.rbac.RoleBuilder;
import io.quarkus.test.common.http.TestHTTPResource;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A machine's console as the agent sends it and users of the cluster read it and attach to it: an
 * enrolled machine posts pieces of two boots' consoles with a kernel warning, resends one, sends
 * hostile ones; the admin port serves the current and the previous boot, credentials redacted, to
 * users whose own Kubernetes token may {@code get machineboots/log}, and attaches those who may
 * {@code create machineboots/console} to the live console through a stand-in agent's connection.
 * The users are ServiceAccounts of the scenario's namespace, bound by Roles with the rules of the
 * chart's ClusterRoles {@code chrootbooter-viewer} and {@code chrootbooter-console}.
 */
public abstract class ConsoleScenarios extends BootTestScenarios {
  /** The rules of the chart's ClusterRole chrootbooter-viewer. */
  static final List<PolicyRule> VIEWER =
      List.of(
          new PolicyRuleBuilder()
              .withApiGroups("boot.chrootbooter.io")
              .withResources("bootimages", "machineboots", "boottests")
              .withVerbs("get", "list", "watch")
              .build(),
          new PolicyRuleBuilder()
              .withApiGroups("boot.chrootbooter.io")
              .withResources("machineboots/log")
              .withVerbs("get")
              .build());

  /** The rules of the chart's ClusterRole chrootbooter-console. */
  static final List<PolicyRule> CONSOLE =
      java.util.stream.Stream.concat(
              VIEWER.stream(),
              java.util.stream.Stream.of(
                  new PolicyRuleBuilder()
                      .withApiGroups("boot.chrootbooter.io")
                      .withResources("machineboots/console")
                      .withVerbs("create")
                      .build()))
          .toList();

  private static final Duration TIMEOUT = Duration.ofSeconds(30);
  private static final String WARNING = "WARNING: CPU: 0 PID: 1 at kernel/test.c:42 probe+0x1/0x2";

  @TestHTTPResource("/")
  URL base;

  @TestHTTPResource(value = "/", management = true)
  URL management;

  private final HttpClient http = HttpClient.newHttpClient();
  private String mac;
  private String viewer;

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
    viewer = userWith("viewer", VIEWER);

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

    // The status page shows the last lines of the current boot's console, and links both boots'.
    assertThat(get("/", null).body())
        .containsPattern("<pre class=\"console\"[^>]*>second boot\n\n\\[chrootbooter: 4987 bytes")
        .contains("\nlater</pre>");
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

  @Test
  void aConsoleIsReadOnlyWithTheUsersOwnRightAndFollowedAsItGrows() throws Exception {
    String session = machine();
    String secret = "m1 login: root\r\nroot@m1:~# cat /etc/hostname\r\nm1\r\n";
    assertThat(post(session, chunk("b-1", 0, secret, 0, List.of(), false)).statusCode())
        .isEqualTo(202);
    viewer = userWith("viewer", VIEWER);
    String nobody = userWith("nobody", List.of());
    String path = "/machines/" + ns + "/m1/console";

    // No credential, a bad one, one without the right: a one-line reason and no console byte.
    HttpResponse<String> anonymous = get(path, null);
    assertThat(anonymous.statusCode()).isEqualTo(401);
    assertThat(anonymous.headers().firstValue("WWW-Authenticate")).hasValue("Bearer");
    assertThat(anonymous.body()).doesNotContain("root@m1").endsWith("\n");
    assertThat(anonymous.body().strip()).doesNotContain("\n");
    HttpResponse<String> forged = get(path, "not-a-token-of-this-cluster");
    assertThat(forged.statusCode()).isEqualTo(401);
    assertThat(forged.body()).doesNotContain("root@m1").doesNotContain("not-a-token");
    for (String p : List.of(path, path + "?boot=previous", path + "?follow=true")) {
      HttpResponse<String> refused = get(p, nobody);
      assertThat(refused.statusCode()).as(p).isEqualTo(403);
      assertThat(refused.body())
          .isEqualTo(
              "user \"system:serviceaccount:"
                  + ns
                  + ":nobody\" may not get machineboots/log (boot.chrootbooter.io) in namespace "
                  + ns
                  + "\n");
    }
    // Hostile or malformed requests: a reason, nothing else.
    assertThat(get(path + "?follow=maybe").statusCode()).isEqualTo(400);
    assertThat(get("/machines/" + ns + "/M1/console").statusCode()).isEqualTo(400);
    HttpResponse<String> notUpgraded = get(path + "/attach");
    assertThat(notUpgraded.statusCode()).isEqualTo(400);
    assertThat(notUpgraded.body()).contains("WebSocket").doesNotContain("root@m1");
    // A credential is checked before the machine is looked up: no answer tells who exists.
    assertThat(get("/machines/" + ns + "/nobody/console", nobody).statusCode()).isEqualTo(403);

    // The viewer reads it, and follows it: what is recorded next arrives on the open response.
    assertThat(get(path).body()).isEqualTo(secret);
    HttpResponse<java.io.InputStream> follow =
        http.send(
            HttpRequest.newBuilder(URI.create(management.toString()).resolve(path + "?follow=true"))
                .header("Authorization", "Bearer " + viewer)
                .build(),
            HttpResponse.BodyHandlers.ofInputStream());
    assertThat(follow.statusCode()).isEqualTo(200);
    assertThat(follow.headers().firstValue("Chrootbooter-Boot")).hasValue("b-1");
    try (java.io.InputStream in = follow.body()) {
      assertThat(new String(in.readNBytes(secret.length()), StandardCharsets.UTF_8))
          .isEqualTo(secret);
      String more = "root@m1:~# echo token=hunter2\r\n";
      assertThat(
              post(session, chunk("b-1", secret.length(), more, 0, List.of(), false)).statusCode())
          .isEqualTo(202);
      String expected = "root@m1:~# echo token=[redacted]\r\n";
      assertThat(new String(in.readNBytes(expected.length()), StandardCharsets.UTF_8))
          .isEqualTo(expected);
      String last = "reboot: Power down\r\n";
      assertThat(
              post(session, chunk("b-1", secret.length() + more.length(), last, 0, List.of(), true))
                  .statusCode())
          .isEqualTo(202);
      // The boot ended: the response ends after its last bytes.
      CompletableFuture<byte[]> rest =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return in.readAllBytes();
                } catch (java.io.IOException e) {
                  throw new java.io.UncheckedIOException(e);
                }
              });
      assertThat(new String(rest.get(10, TimeUnit.SECONDS), StandardCharsets.UTF_8))
          .isEqualTo(last);
    }

    // The viewer may not attach: 403 before any upgrade, and no ConsoleAttached Event.
    assertThatRefused(attach("m1", viewer, new Ws()), 403, "may not create machineboots/console");
    assertThatRefused(attach("m1", null, new Ws()), 401, "Authorization: Bearer");
    assertThat(attachedEvents()).isEmpty();
  }

  @Test
  void anAttachRelaysKeystrokesAndOutputThroughTheAgentsConnection() throws Exception {
    String session = machine();
    String user = "system:serviceaccount:" + ns + ":operator-1";
    String token = userWith("operator-1", CONSOLE);
    try (AgentApiScenarios.Stream stream = new Stream(mac, session, null)) {
      assertThat(stream.status).isEqualTo(200);
      // Before its agent reported, there is no console to attach to.
      Ws early = attach("m1", token, new Ws());
      assertThat(early.closed.get(10, TimeUnit.SECONDS))
          .startsWith("1011 machine m1 is not running a target");

      String live =
          "ws://"
              + base.getHost()
              + ":"
              + base.getPort()
              + "/agent/v1/machines/"
              + mac
              + "/console/live?ticket=";

      // In the bootstrap its own console shell is attached to as a target's console is.
      report(session, "{\"phase\":\"Bootstrap\"}");
      awaitPhase(io.chrootbooter.protocol.MachinePhase.Bootstrap);
      Ws shellUser = attach("m1", token, new Ws());
      Ws shellAgent = connect(URI.create(live + ticket(stream)), session, new Ws());
      shellAgent.send("chrootbooter> ");
      shellUser.awaitText("chrootbooter> ");
      shellUser.send("status\r");
      shellAgent.awaitText("status\r");
      shellAgent.socket.sendClose(1000, "the target ended").get(10, TimeUnit.SECONDS);
      assertThat(shellUser.closed.get(10, TimeUnit.SECONDS)).isEqualTo("1000 the target ended");

      report(session, "{\"phase\":\"Running\",\"currentImage\":\"debian-12\"}");
      awaitPhase(io.chrootbooter.protocol.MachinePhase.Running);

      Ws userSide = attach("m1", token, new Ws());
      String ticket = ticket(stream);
      // The console connection takes the machine's session and this machine's ticket only.
      assertThatRefused(connect(URI.create(live + ticket), null, new Ws()), 401, "");
      assertThatRefused(
          connect(URI.create(live + "x".repeat(32)), session, new Ws()), 404, "no attach");
      Ws agentSide = connect(URI.create(live + ticket), session, new Ws());

      agentSide.send("Debian GNU/Linux 12 m1 ttyS0\r\n\r\nm1 login: ");
      userSide.awaitText("m1 login: ");
      userSide.send("root\r");
      agentSide.awaitText("root\r");

      // The round trip the operator adds: a byte typed, its echo back.
      agentSide.echo = true;
      long[] nanos = new long[200];
      for (int i = 0; i < nanos.length; i++) {
        int before = userSide.size();
        long start = System.nanoTime();
        userSide.send("a");
        userSide.awaitSize(before + 1);
        nanos[i] = System.nanoTime() - start;
      }
      java.util.Arrays.sort(nanos);
      double median = nanos[nanos.length / 2] / 1e6;
      double p95 = nanos[nanos.length * 95 / 100] / 1e6;
      System.out.printf(java.util.Locale.ROOT, "RESULT console_attach_rtt %.3f ms%n", median);
      System.out.printf(java.util.Locale.ROOT, "RESULT console_attach_rtt_p95 %.3f ms%n", p95);

      // The target ends: the agent closes, and so does the user's console, with 1000.
      agentSide.socket.sendClose(1000, "the target ended").get(10, TimeUnit.SECONDS);
      assertThat(userSide.closed.get(10, TimeUnit.SECONDS)).isEqualTo("1000 the target ended");

      // A user who detaches (the client's "~."): the agent's connection is closed too.
      Ws leaving = attach("m1", token, new Ws());
      Ws itsAgent = connect(URI.create(live + ticket(stream)), session, new Ws());
      assertThat(itsAgent.socket).isNotNull();
      leaving.socket.sendClose(1000, "").get(10, TimeUnit.SECONDS);
      assertThat(itsAgent.closed.get(10, TimeUnit.SECONDS)).isEqualTo("1000 the user detached");

      // An agent that does not answer (an older one): the attach ends with the reason.
      Ws unanswered = attach("m1", token, new Ws());
      assertThat(unanswered.closed.get(20, TimeUnit.SECONDS))
          .isEqualTo("1011 the agent of m1 did not open its console connection within 2 s");
    }
    // Each attach is an Event naming the user.
    await()
        .atMost(TIMEOUT)
        .untilAsserted(
            () ->
                assertThat(attachedEvents())
                    .hasSize(5)
                    .allSatisfy(
                        e -> {
                          assertThat(e.getType()).isEqualTo("Normal");
                          assertThat(e.getMessage()).isEqualTo(user + " attached to the console");
                          assertThat(e.getInvolvedObject().getName()).isEqualTo("m1");
                        }));
  }

  /** Waits until m1's status shows {@code phase}. */
  private void awaitPhase(io.chrootbooter.protocol.MachinePhase phase) {
    await()
        .atMost(TIMEOUT)
        .until(
            () -> {
              var mb =
                  client
                      .resources(io.chrootbooter.api.v1alpha1.MachineBoot.class)
                      .inNamespace(ns)
                      .withName("m1")
                      .get();
              return mb.getStatus() != null && mb.getStatus().phase() == phase;
            });
  }

  @jakarta.inject.Inject io.chrootbooter.operator.console.RecordedConsoles recorded;

  /**
   * What a BootTest's console checks read of a machine whose console another replica records (its
   * agent Lease names that replica): that replica's boots, asked for over its admin port with a
   * forward credential (never a user's), after this replica's own earlier ones; this replica's own
   * when that one cannot be reached. The other replica is stood in for by an HTTP server on
   * loopback that answers as a replica's console route does.
   */
  @Test
  void aMachinesConsoleRecordedByAnotherReplicaIsReadThereForTheChecks() throws Exception {
    String session = machine();
    assertThat(post(session, chunk("b-old", 0, "old boot\r\n", 0, List.of(), true)).statusCode())
        .isEqualTo(202);
    List<Map<String, String>> asked = new java.util.concurrent.CopyOnWriteArrayList<>();
    com.sun.net.httpserver.HttpServer other =
        com.sun.net.httpserver.HttpServer.create(
            new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0), 0);
    other.createContext(
        "/",
        exchange -> {
          var headers = exchange.getRequestHeaders();
          Map<String, String> seen = new java.util.HashMap<>();
          seen.put("uri", exchange.getRequestURI().toString());
          for (String h :
              List.of("Chrootbooter-Forward", "Chrootbooter-Forwarded-User", "Authorization")) {
            if (headers.getFirst(h) != null) {
              seen.put(h, headers.getFirst(h));
            }
          }
          asked.add(seen);
          byte[] body;
          if (exchange.getRequestURI().getQuery().contains("boot=current")) {
            body = "new boot\r\nm1 login: ".getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().add("Chrootbooter-Boot", "b-new");
            exchange.getResponseHeaders().add("Chrootbooter-Started", "2026-01-01T00:00:00Z");
            exchange.getResponseHeaders().add("Chrootbooter-Ended", "false");
            exchange.sendResponseHeaders(200, body.length);
          } else {
            body = "no previous console\n".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(404, body.length);
          }
          exchange.getResponseBody().write(body);
          exchange.close();
        });
    other.start();
    boolean stopped = false;
    try {
      String url = "http://127.0.0.1:" + other.getAddress().getPort();
      client
          .leases()
          .inNamespace(ns)
          .withName("m1-agent")
          .edit(
              lease -> {
                Map<String, String> annotations =
                    new java.util.HashMap<>(
                        lease.getMetadata().getAnnotations() == null
                            ? Map.of()
                            : lease.getMetadata().getAnnotations());
                annotations.put(
                    io.chrootbooter.operator.console.ReplicaForwards.LOG_ANNOTATION, url);
                lease.getMetadata().setAnnotations(annotations);
                return lease;
              });
      List<io.chrootbooter.operator.console.ConsoleLogs.View> views =
          await()
              .atMost(TIMEOUT)
              .until(
                  () -> recorded.of(ns, "m1"),
                  v -> v.size() == 2 && v.get(1).boot().equals("b-new"));
      assertThat(views.get(0).boot()).isEqualTo("b-old");
      assertThat(views.get(0).ended()).isTrue();
      assertThat(views.get(1).text()).isEqualTo("new boot\r\nm1 login: ");
      assertThat(views.get(1).started()).isEqualTo("2026-01-01T00:00:00Z");
      assertThat(views.get(1).ended()).isFalse();
      assertThat(asked)
          .extracting(a -> a.get("uri"))
          .contains(
              "/machines/" + ns + "/m1/console?boot=previous",
              "/machines/" + ns + "/m1/console?boot=current");
      assertThat(asked)
          .allSatisfy(
              a -> {
                assertThat(a).doesNotContainKey("Authorization");
                assertThat(a.get("Chrootbooter-Forward")).matches("[A-Za-z0-9_-]{76}");
                assertThat(
                        new String(
                            Base64.getUrlDecoder().decode(a.get("Chrootbooter-Forwarded-User")),
                            StandardCharsets.UTF_8))
                    .isEqualTo("system:chrootbooter:boottest");
              });
      assertThat(asked.stream().map(a -> a.get("Chrootbooter-Forward")).distinct().count())
          .as("a credential per request")
          .isEqualTo(asked.size());

      // That replica gone: this replica's own record is what there is.
      other.stop(0);
      stopped = true;
      assertThat(recorded.of(ns, "m1"))
          .extracting(io.chrootbooter.operator.console.ConsoleLogs.View::boot)
          .containsExactly("b-old");
    } finally {
      if (!stopped) {
        other.stop(0);
      }
    }
  }

  /** The ticket of the next {@code console} event on the agent's stream. */
  private static String ticket(AgentApiScenarios.Stream stream) throws InterruptedException {
    while (true) {
      AgentApiScenarios.SseEvent event = stream.next(Duration.ofSeconds(10));
      if ("console".equals(event.name())) {
        return event.data().replaceAll(".*\"ticket\":\"([A-Za-z0-9_-]+)\".*", "$1");
      }
    }
  }

  /** Creates MachineBoot m1 with this scenario's MAC and returns its agent's session. */
  private String machine() {
    GenericKubernetesResource raw = new GenericKubernetesResource();
    raw.setApiVersion(BootImage.GROUP + "/" + BootImage.VERSION);
    raw.setKind("MachineBoot");
    raw.setMetadata(new ObjectMetaBuilder().withName("m1").withNamespace(ns).build());
    raw.setAdditionalProperty("spec", Map.of("macAddress", mac, "state", "Bootstrap"));
    client.resource(raw).inNamespace(ns).create();
    return await().atMost(TIMEOUT).until(this::enrol, s -> s != null);
  }

  private void report(String session, String json) throws Exception {
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(URI.create(base + "agent/v1/machines/" + mac + "/status"))
                .header("Authorization", "Bearer " + session)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(202);
  }

  private List<Event> attachedEvents() {
    return client.v1().events().inNamespace(ns).list().getItems().stream()
        .filter(e -> "ConsoleAttached".equals(e.getReason()))
        .toList();
  }

  /** A WebSocket end for the tests: what arrived, its close, and an echo when asked. */
  static final class Ws implements WebSocket.Listener {
    final CompletableFuture<String> closed = new CompletableFuture<>();
    final java.io.ByteArrayOutputStream received = new java.io.ByteArrayOutputStream();
    volatile boolean echo;
    volatile WebSocket socket;
    volatile Throwable refused;

    @Override
    public CompletionStage<?> onBinary(WebSocket ws, ByteBuffer data, boolean last) {
      byte[] bytes = new byte[data.remaining()];
      data.get(bytes);
      synchronized (received) {
        received.writeBytes(bytes);
        received.notifyAll();
      }
      if (echo) {
        return ws.sendBinary(ByteBuffer.wrap(bytes), true).thenRun(() -> ws.request(1));
      }
      ws.request(1);
      return null;
    }

    @Override
    public CompletionStage<?> onClose(WebSocket ws, int code, String reason) {
      closed.complete(code + " " + reason);
      return null;
    }

    @Override
    public void onError(WebSocket ws, Throwable error) {
      closed.complete("error " + error);
    }

    void send(String text) throws Exception {
      socket
          .sendBinary(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)), true)
          .get(10, TimeUnit.SECONDS);
    }

    int size() {
      synchronized (received) {
        return received.size();
      }
    }

    void awaitSize(int size) throws InterruptedException {
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      synchronized (received) {
        while (received.size() < size) {
          long left = until - System.nanoTime();
          assertThat(left).as("%d bytes within 10 s", size).isPositive();
          TimeUnit.NANOSECONDS.timedWait(received, left);
        }
      }
    }

    void awaitText(String text) {
      await()
          .atMost(Duration.ofSeconds(10))
          .until(
              () -> {
                synchronized (received) {
                  return received.toString(StandardCharsets.UTF_8).contains(text);
                }
              });
    }
  }

  private Ws attach(String name, String token, Ws ws) throws Exception {
    return connect(
        URI.create(
            "ws://"
                + management.getHost()
                + ":"
                + management.getPort()
                + "/machines/"
                + ns
                + "/"
                + name
                + "/console/attach"),
        token,
        ws);
  }

  /** Connects {@code ws}; a refused handshake is kept in {@link Ws#refused}. */
  private Ws connect(URI uri, String token, Ws ws) throws Exception {
    WebSocket.Builder builder = http.newWebSocketBuilder();
    if (token != null) {
      builder.header("Authorization", "Bearer " + token);
    }
    try {
      ws.socket = builder.buildAsync(uri, ws).get(10, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      ws.refused = e.getCause();
    }
    return ws;
  }

  private static void assertThatRefused(Ws ws, int status, String reason) {
    assertThat(ws.socket).as("no WebSocket").isNull();
    assertThat(ws.refused).isInstanceOf(WebSocketHandshakeException.class);
    HttpResponse<?> response = ((WebSocketHandshakeException) ws.refused).getResponse();
    assertThat(response.statusCode()).isEqualTo(status);
    Object body = response.body();
    if (body != null) {
      String text =
          body instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : String.valueOf(body);
      assertThat(text).contains(reason).doesNotContain("login");
    }
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
    return get(path, viewer);
  }

  private HttpResponse<String> get(String path, String token) throws Exception {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(URI.create(management.toString()).resolve(path));
    if (token != null) {
      request.header("Authorization", "Bearer " + token);
    }
    return http.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
  }

  /**
   * The token of a new ServiceAccount {@code name} of this namespace, bound to {@code rules} by a
   * Role (none when empty), as a cluster's admin would bind the chart's ClusterRoles.
   */
  String userWith(String name, List<PolicyRule> rules) {
    client
        .serviceAccounts()
        .inNamespace(ns)
        .resource(
            new ServiceAccountBuilder().withNewMetadata().withName(name).endMetadata().build())
        .create();
    if (!rules.isEmpty()) {
      client
          .rbac()
          .roles()
          .inNamespace(ns)
          .resource(
              new RoleBuilder()
                  .withNewMetadata()
                  .withName(name)
                  .endMetadata()
                  .withRules(rules)
                  .build())
          .create();
      client
          .rbac()
          .roleBindings()
          .inNamespace(ns)
          .resource(
              new RoleBindingBuilder()
                  .withNewMetadata()
                  .withName(name)
                  .endMetadata()
                  .withNewRoleRef("rbac.authorization.k8s.io", "Role", name)
                  .addNewSubject()
                  .withKind("ServiceAccount")
                  .withName(name)
                  .withNamespace(ns)
                  .endSubject()
                  .build())
          .create();
    }
    String user = "system:serviceaccount:" + ns + ":" + name;
    granted(user, rules);
    return tokenOf(name, user);
  }

  /** Told of each grant: where the API server has no authorizer of its own, the stand-in's. */
  void granted(String user, List<PolicyRule> rules) {}

  /**
   * A token of the ServiceAccount {@code name} (user {@code user}), as the API server issues it.
   */
  String tokenOf(String name, String user) {
    return client
        .serviceAccounts()
        .inNamespace(ns)
        .withName(name)
        .tokenRequest(
            new TokenRequestBuilder().withNewSpec().withExpirationSeconds(3600L).endSpec().build())
        .getStatus()
        .getToken();
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
