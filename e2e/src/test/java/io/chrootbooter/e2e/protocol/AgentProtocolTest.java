package io.chrootbooter.e2e.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.operator.OperatorClient;
import io.chrootbooter.agent.operator.StatusReporter;
import io.chrootbooter.e2e.protocol.FollowingAgent.Received;
import io.chrootbooter.protocol.Action;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.Progress;
import io.chrootbooter.protocol.StatusReport;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent ↔ operator protocol (docs/architecture.md §3) between the real parts: the operator jar
 * as users run it, against the embedded Kubernetes API, and the node agent's own client ({@link
 * OperatorClient}, {@link StatusReporter}) holding the desired-state stream and posting reports,
 * all on loopback. Each test drives a MachineBoot of its own and checks what the agent receives and
 * what {@code kubectl get mb} shows.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AgentProtocolTest {
  private static final String NAMESPACE = "protocol";
  private static final Duration SETTLE = Duration.ofSeconds(30);

  /** An operator start takes seconds; the client's backoff may add up to 16 s more. */
  private static final Duration RECONNECT = Duration.ofSeconds(90);

  @TempDir static Path dir;
  static ControlPlane plane;
  static final HttpClient HTTP = HttpClient.newHttpClient();

  @RegisterExtension
  static final TestWatcher DIAGNOSTICS =
      new TestWatcher() {
        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
          if (plane != null) {
            System.err.println(context.getDisplayName() + " failed\n" + plane.diagnostics());
          }
        }
      };

  @BeforeAll
  static void start() throws Exception {
    Path repository = Path.of(System.getProperty("cb.repo.dir", "..")).toAbsolutePath().normalize();
    Path jar = repository.resolve("operator/target/quarkus-app/quarkus-run.jar");
    assumeTrue(
        Files.isRegularFile(jar),
        () ->
            "no operator jar at "
                + jar
                + "; build it first: mvn -B -pl operator -am package -DskipTests");
    plane = ControlPlane.start(repository, jar, dir, NAMESPACE);
    String sha = plane.images.putSquashfs("debian-12.squashfs", 1);
    plane.api.createImage("debian-12", plane.images.url("debian-12.squashfs"), sha);
    await("BootImage debian-12 Ready")
        .atMost(SETTLE)
        .until(() -> "Ready".equals(phaseOf(plane.api.image("debian-12"))));
  }

  @AfterAll
  static void stop() throws Exception {
    if (plane != null) {
      plane.close();
    }
  }

  @Test
  @Order(1)
  void specAndImageChangesReachTheAgent() throws Exception {
    String mac = "52:54:00:cb:00:01";
    plane.api.createMachine("a1", machine(mac, "late", List.of("systemd.show_status=1")));
    try (FollowingAgent agent = new FollowingAgent(plane.operator.url(), mac, awaitSession(mac))) {
      Received first = agent.next(Duration.ofSeconds(10), s -> true);
      assertThat(first.state().action()).isEqualTo(Action.Hold);
      assertThat(first.state().reason()).contains("BootImage late is not Ready");
      assertThat(first.state().generation()).isEqualTo(1);

      // The BootImage appears and the operator mirrors it: the machine is told to run it.
      String sha = plane.images.putSquashfs("late.squashfs", 2);
      plane.api.createImage("late", plane.images.url("late.squashfs"), sha);
      AtomicReference<Long> readyAt = new AtomicReference<>();
      await("BootImage late Ready")
          .atMost(SETTLE)
          .pollInterval(Duration.ofMillis(20))
          .until(
              () -> {
                boolean ready = "Ready".equals(phaseOf(plane.api.image("late")));
                if (ready) {
                  readyAt.set(System.nanoTime());
                }
                return ready;
              });
      Received run = agent.next(Duration.ofSeconds(5), DesiredState::runs);
      assertThat(run.state().image().url()).isEqualTo(plane.operator.url() + "/images/" + sha);
      assertThat(run.state().image().sha256()).isEqualTo(sha);
      assertThat(run.state().image().format()).isEqualTo(ImageFormat.SQUASHFS);
      assertThat(run.state().generation()).isEqualTo(1);
      assertThat(millis(run.nanos() - readyAt.get()))
          .as("ms from seeing the BootImage Ready to the agent's Run event")
          .isLessThan(1000);

      // kubectl edit: a new generation reaches the agent within a second.
      awaitStable("a1");
      long before = System.nanoTime();
      long generation =
          plane
              .api
              .editSpec(
                  "a1",
                  spec -> {
                    spec.put("kernelArgs", List.of("systemd.show_status=1", "quiet"));
                    return spec;
                  })
              .getMetadata()
              .getGeneration();
      assertThat(generation).isEqualTo(2);
      Received changed = agent.next(Duration.ofSeconds(5), s -> s.generation() == generation);
      long delay = millis(changed.nanos() - before);
      System.out.printf("spec change -> desired event: %d ms%n", delay);
      assertThat(delay).as("ms from the MachineBoot update to the agent's event").isLessThan(1000);
      assertThat(changed.state().action()).isEqualTo(Action.Run);
      assertThat(changed.state().kernelArgs()).containsExactly("systemd.show_status=1", "quiet");
      assertThat(changed.state().image().url()).isEqualTo(run.state().image().url());
    }
  }

  @Test
  @Order(2)
  void statusReportsShowInTheMachineBoot() throws Exception {
    String mac = "52:54:00:cb:00:02";
    plane.api.createMachine("b1", machine(mac, "debian-12", List.of()));
    AtomicReference<StatusReport> status =
        new AtomicReference<>(
            StatusReport.builder()
                .phase(MachinePhase.Downloading)
                .progress(new Progress(4096L, 262144L, 1_000_000L))
                .agent(new AgentInfo("0.1.0", "boot-b1", "10.0.0.2", "6.1.0", "c1 (cb.jit=c1)"))
                .build());
    try (OperatorClient client =
            FollowingAgent.client(plane.operator.url(), mac, awaitSession(mac));
        StatusReporter reporter =
            new StatusReporter(client::report, status::get, Duration.ofSeconds(1))) {
      JsonNode downloading =
          awaitMachine("b1", m -> m.at("/status/phase").asText().equals("Downloading"));
      assertThat(downloading.at("/status/progress/bytes").asLong()).isEqualTo(4096);

      status.set(
          StatusReport.builder()
              .phase(MachinePhase.Running)
              .currentImage("debian-12")
              .agent(new AgentInfo("0.1.0", "boot-b1", "10.0.0.3", "6.1.0", "tiered"))
              .appliedGeneration(1L)
              .build());
      reporter.poke();
      JsonNode running =
          awaitMachine(
              "b1",
              m ->
                  m.at("/status/phase").asText().equals("Running")
                      && m.at("/status/agent/ip").asText().equals("10.0.0.3"));
      assertThat(running.at("/status/agent/bootId").asText()).isEqualTo("boot-b1");
      assertThat(running.at("/status/agent/jit").asText()).isEqualTo("tiered");
      assertThat(running.at("/status/currentImage").asText()).isEqualTo("debian-12");
    }
    assertThat(plane.api.columns("b1"))
        .containsEntry("Phase", "Running")
        .containsEntry("IP", "10.0.0.3")
        .containsEntry("Image", "debian-12");
  }

  @Test
  @Order(3)
  void sessionsAreCheckedAndNothingIsWrittenOnRefusal() throws Exception {
    String attackerMac = "52:54:00:cb:00:03";
    String victimMac = "52:54:00:cb:00:05";
    plane.api.createMachine("c1", machine(attackerMac, null, List.of()));
    plane.api.createMachine("c2", machine(victimMac, null, List.of()));
    String attackerSession = awaitSession(attackerMac);
    awaitSession(victimMac); // the victim booted and enrolled too
    String resourceVersion = awaitStable("c2");

    Map<String, Integer> refusals = new LinkedHashMap<>();
    refusals.put(null, 401);
    refusals.put("Bearer", 401);
    refusals.put("Basic " + attackerSession, 401);
    refusals.put("Bearer not-a-token!", 401);
    refusals.put("Bearer " + "A".repeat(43), 401); // well-formed, but no machine's
    refusals.put("Bearer " + attackerSession + "x", 401);
    refusals.put("Bearer " + attackerSession, 403); // valid, but another machine's
    String forged = "{\"phase\":\"Failed\",\"error\":\"forged\"}";
    List<String> answers = new ArrayList<>();
    refusals.forEach(
        (authorization, expected) -> {
          answers.add(
              authorization
                  + " -> POST "
                  + post(victimMac, authorization, forged)
                  + ", GET "
                  + openStream(victimMac, authorization));
        });
    List<String> expected = new ArrayList<>();
    refusals.forEach((a, code) -> expected.add(a + " -> POST " + code + ", GET " + code));
    assertThat(answers).containsExactlyElementsOf(expected);

    // The agent's own client with another machine's session gets no desired state at all.
    try (FollowingAgent intruder =
        new FollowingAgent(plane.operator.url(), victimMac, attackerSession)) {
      assertThat(intruder.drain(Duration.ofSeconds(2))).isEmpty();
      assertThat(intruder.connections()).isZero();
    }

    await("MachineBoot c2 unchanged")
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(5))
        .until(
            () ->
                plane.api.machine("c2").getMetadata().getResourceVersion().equals(resourceVersion));
    JsonNode victim = BootApi.json(plane.api.machine("c2"));
    assertThat(victim.at("/status/phase").asText()).isEqualTo("Pending");
    assertThat(victim.at("/status/error").isMissingNode()).isTrue();
  }

  @Test
  @Order(4)
  void burstsOfProgressCostAtMostOnePatchASecond() throws Exception {
    String mac = "52:54:00:cb:00:06";
    plane.api.createMachine("e1", machine(mac, "debian-12", List.of()));
    String token = awaitSession(mac);
    awaitStable("e1");

    // Every change of the fields agent reports write, as a watch on the MachineBoot sees it.
    List<Long> agentPatches = new CopyOnWriteArrayList<>();
    List<Long> modifications = new CopyOnWriteArrayList<>();
    AtomicReference<JsonNode> last = new AtomicReference<>();
    Watcher<GenericKubernetesResource> watcher =
        new Watcher<>() {
          @Override
          public void eventReceived(Action action, GenericKubernetesResource resource) {
            long now = System.nanoTime();
            JsonNode fields = agentFields(BootApi.json(resource));
            JsonNode before = last.getAndSet(fields);
            if (before != null) {
              modifications.add(now);
              if (!fields.equals(before)) {
                agentPatches.add(now);
              }
            }
          }

          @Override
          public void onClose(WatcherException cause) {}
        };
    double patchesBefore = patchesMetric();
    long start;
    long postingNanos;
    try (Watch watch = plane.api.machines().inNamespace(NAMESPACE).withName("e1").watch(watcher);
        OperatorClient client = FollowingAgent.client(plane.operator.url(), mac, token)) {
      await("the watch's first event").atMost(SETTLE).until(() -> last.get() != null);
      // 50 progress reports as fast as five connections carry them, then the final phase.
      ExecutorService posters = Executors.newFixedThreadPool(5);
      List<Future<Boolean>> accepted = new ArrayList<>();
      start = System.nanoTime();
      try {
        for (int i = 1; i <= 50; i++) {
          StatusReport progress =
              StatusReport.builder()
                  .phase(MachinePhase.Downloading)
                  .progress(new Progress(i * 1000L, 50_000L, 1_000_000L))
                  .build();
          accepted.add(posters.submit(() -> client.report(progress)));
        }
        for (Future<Boolean> f : accepted) {
          assertThat(f.get()).isTrue();
        }
      } finally {
        posters.shutdownNow();
      }
      assertThat(
              client.report(
                  StatusReport.builder()
                      .phase(MachinePhase.Running)
                      .currentImage("debian-12")
                      .appliedGeneration(1L)
                      .build()))
          .isTrue();
      postingNanos = System.nanoTime() - start;

      JsonNode running = awaitMachine("e1", m -> m.at("/status/phase").asText().equals("Running"));
      assertThat(running.at("/status/currentImage").asText()).isEqualTo("debian-12");
      assertThat(running.at("/status/progress/total").asLong()).isEqualTo(50_000);
      awaitStable("e1");
    }
    List<Long> atMillis = agentPatches.stream().map(t -> millis(t - start)).toList();
    String observed =
        String.format(
            "51 reports posted in %d ms; status patches of agent fields seen at ms %s; %d"
                + " modifications in all (the reconciler's included); the operator counted %.0f"
                + " patches",
            millis(postingNanos), atMillis, modifications.size(), patchesMetric() - patchesBefore);
    System.out.println(observed);
    long busiestSecond =
        atMillis.stream()
            .mapToLong(from -> atMillis.stream().filter(t -> t >= from && t < from + 1000).count())
            .max()
            .orElse(0);
    assertThat(busiestSecond).as("patches in the busiest second; " + observed).isBetween(1L, 2L);
    assertThat((long) atMillis.size())
        .as("patches in all; " + observed)
        .isBetween(1L, 1L + (long) Math.ceil(postingNanos / 1e9));
  }

  @Test
  @Order(5)
  void operatorRestartMidStreamLosesNothingAndRepeatsNothing() throws Exception {
    String mac = "52:54:00:cb:00:04";
    plane.api.createMachine("d1", machine(mac, null, List.of()));
    try (FollowingAgent agent = new FollowingAgent(plane.operator.url(), mac, awaitSession(mac))) {
      Received first = agent.next(Duration.ofSeconds(10), s -> true);
      assertThat(first.state().action()).isEqualTo(Action.Bootstrap);
      assertThat(first.state().generation()).isEqualTo(1);

      plane.operator.kill();
      for (String arg : List.of("lab.step=2", "lab.step=3")) {
        plane.api.editSpec(
            "d1",
            spec -> {
              spec.put("kernelArgs", List.of(arg));
              return spec;
            });
      }
      assertThat(plane.api.machine("d1").getMetadata().getGeneration()).isEqualTo(3);
      plane.operator.start();
      long restarted = System.nanoTime();

      Received latest = agent.next(RECONNECT, s -> true);
      System.out.printf(
          "operator restart: the latest generation reached the agent %d ms after the operator"
              + " was ready again%n",
          millis(latest.nanos() - restarted));
      assertThat(latest.state().generation())
          .as("the first event after the restart; all: %s", agent.history())
          .isEqualTo(3);
      assertThat(latest.state().action()).isEqualTo(Action.Bootstrap);
      assertThat(agent.drain(Duration.ofSeconds(2))).as("events after the latest").isEmpty();
      assertThat(agent.connections()).isGreaterThanOrEqualTo(2);

      // Once more with nothing changed while it was down: the Last-Event-ID the client sends
      // names the current state, so the reconnection brings no event at all.
      int connections = agent.connections();
      plane.operator.kill();
      plane.operator.start();
      await("the agent reconnected")
          .atMost(RECONNECT)
          .until(() -> agent.connections() > connections);
      assertThat(agent.drain(Duration.ofSeconds(2)))
          .as("events after a reconnection with the current Last-Event-ID")
          .isEmpty();
      assertThat(agent.history()).containsExactly(first, latest);
    }
  }

  /**
   * A user attaches to a machine's live console with the lab kubeconfig's token: the real operator
   * checks it with the embedded API's TokenReview and SubjectAccessReview, tells the agent over its
   * stream, and the agent's own client opens the console connection ({@link
   * io.chrootbooter.agent.operator.ConsoleAttach}); the target's console is stood in for (the relay
   * is tested in the node agent).
   */
  @Test
  @Order(20)
  void aUserAttachesWithTheirOwnTokenAndTheAgentsConnectionCarriesTheConsole() throws Exception {
    String mac = "52:54:00:cb:00:20";
    plane.api.createMachine("con1", machine(mac, "debian-12", List.of()));
    java.io.ByteArrayOutputStream typed = new java.io.ByteArrayOutputStream();
    AtomicReference<io.chrootbooter.agent.relay.ConsoleRecorder.Screen> screen =
        new AtomicReference<>();
    AtomicReference<StatusReport> status =
        new AtomicReference<>(
            StatusReport.builder()
                .phase(MachinePhase.Running)
                .currentImage("debian-12")
                .agent(new AgentInfo("0.1.0", "boot-con1", "10.0.0.20", "6.1.0", "tiered"))
                .appliedGeneration(1L)
                .build());
    try (FollowingAgent agent = new FollowingAgent(plane.operator.url(), mac, awaitSession(mac));
        StatusReporter reporter =
            new StatusReporter(agent.client::report, status::get, Duration.ofSeconds(1))) {
      OperatorClient client = agent.client;
      client.onConsole(
          new io.chrootbooter.agent.operator.ConsoleAttach(
                  client.http(),
                  client::authorization,
                  client::consoleUri,
                  s -> {
                    screen.set(s);
                    return java.util.Optional.of(
                        new io.chrootbooter.agent.relay.ConsoleRecorder.Attachment() {
                          @Override
                          public int type(byte[] bytes) {
                            synchronized (typed) {
                              typed.writeBytes(bytes);
                            }
                            return bytes.length;
                          }

                          @Override
                          public Path device() {
                            return Path.of("/dev/ttyS0");
                          }

                          @Override
                          public void close() {
                            s.ended();
                          }
                        });
                  })
              ::open);
      awaitMachine("con1", m -> m.at("/status/phase").asText().equals("Running"));
      String attach =
          plane.operator.adminUrl().replace("http://", "ws://")
              + "/machines/"
              + NAMESPACE
              + "/con1/console/attach";

      // Not a token of this cluster: 401 before any upgrade.
      var refused = ConsoleUser.attempt(HTTP, URI.create(attach), "not-the-labs-token");
      assertThat(refused)
          .failsWithin(Duration.ofSeconds(10))
          .withThrowableOfType(java.util.concurrent.ExecutionException.class)
          .havingCause()
          .isInstanceOfSatisfying(
              java.net.http.WebSocketHandshakeException.class,
              e -> assertThat(e.getResponse().statusCode()).isEqualTo(401));

      // The lab user's token: attached, output out, keystrokes in, the target's end closes it.
      ConsoleUser user = ConsoleUser.attach(HTTP, URI.create(attach), plane.apiServer.labToken());
      await("the agent's console connection").atMost(SETTLE).until(() -> screen.get() != null);
      byte[] login = "Debian GNU/Linux 12 con1 ttyS0\r\n\r\ncon1 login: ".getBytes();
      screen.get().output(login, 0, login.length);
      user.awaitOutputEndingWith("con1 login: ");
      user.type("root\r");
      ConsoleUser.awaitTyped(typed, "root\r");
      screen.get().ended();
      user.assertClosedWith("1000 the target ended");
    }
    await("the ConsoleAttached Event")
        .atMost(SETTLE)
        .until(
            () ->
                plane.client.v1().events().inNamespace(NAMESPACE).list().getItems().stream()
                    .anyMatch(
                        e ->
                            "ConsoleAttached".equals(e.getReason())
                                && "con1".equals(e.getInvolvedObject().getName())
                                && "chrootbooter-lab attached to the console"
                                    .equals(e.getMessage())));
  }

  // ---- helpers

  /** A MachineBoot spec: an image to run, or the bootstrap when {@code image} is null. */
  private static Map<String, Object> machine(String mac, String image, List<String> kernelArgs) {
    Map<String, Object> spec = new LinkedHashMap<>();
    spec.put("macAddress", mac);
    if (image == null) {
      spec.put("state", "Bootstrap");
    } else {
      spec.put("imageRef", image);
    }
    if (!kernelArgs.isEmpty()) {
      spec.put("kernelArgs", kernelArgs);
    }
    return spec;
  }

  private static String awaitSession(String mac) {
    AtomicReference<String> token = new AtomicReference<>();
    await("an enrolment of " + mac + " with the nonce of its iPXE script")
        .atMost(SETTLE)
        .until(
            () -> {
              plane.session(mac).ifPresent(token::set);
              return token.get() != null;
            });
    return token.get();
  }

  private static JsonNode awaitMachine(String name, Predicate<JsonNode> condition) {
    AtomicReference<JsonNode> seen = new AtomicReference<>();
    await("MachineBoot " + name)
        .atMost(SETTLE)
        .pollInterval(Duration.ofMillis(50))
        .until(
            () -> {
              seen.set(BootApi.json(plane.api.machine(name)));
              return condition.test(seen.get());
            });
    return seen.get();
  }

  /**
   * Waits until the operator has reconciled the MachineBoot's generation and nothing has written to
   * it for a second; returns its resourceVersion then.
   */
  private static String awaitStable(String name) {
    AtomicReference<String> version = new AtomicReference<>("");
    await("MachineBoot " + name + " reconciled and unchanged for 1 s")
        .atMost(SETTLE)
        .pollInterval(Duration.ofMillis(100))
        .until(
            () -> {
              GenericKubernetesResource mb = plane.api.machine(name);
              JsonNode json = BootApi.json(mb);
              String now = mb.getMetadata().getResourceVersion();
              boolean reconciled =
                  json.at("/status/observedGeneration").asLong(-1)
                      == mb.getMetadata().getGeneration();
              String before = version.getAndSet(now);
              return reconciled && now.equals(before);
            });
    await("MachineBoot " + name + " unchanged for 1 s")
        .during(Duration.ofSeconds(1))
        .atMost(SETTLE)
        .until(
            () -> plane.api.machine(name).getMetadata().getResourceVersion(),
            version.get()::equals);
    return version.get();
  }

  private static String phaseOf(GenericKubernetesResource resource) {
    return BootApi.json(resource).at("/status/phase").asText();
  }

  /** The status fields only agent reports write. */
  private static JsonNode agentFields(JsonNode machine) {
    var fields = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
    for (String field :
        List.of("phase", "progress", "currentImage", "error", "lastReturn", "agent")) {
      fields.set(field, machine.path("status").path(field));
    }
    return fields;
  }

  /** The status code of a status report posted with this Authorization header (none if null). */
  private static int post(String mac, String authorization, String body) {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(
                URI.create(plane.operator.url() + "/agent/v1/machines/" + mac + "/status"))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body));
    if (authorization != null) {
      request.header("Authorization", authorization);
    }
    return send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
  }

  /** The status code of the desired-state stream opened with this Authorization header. */
  private static int openStream(String mac, String authorization) {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(
                URI.create(plane.operator.url() + "/agent/v1/machines/" + mac + "/desired"))
            .header("Accept", "text/event-stream");
    if (authorization != null) {
      request.header("Authorization", authorization);
    }
    HttpResponse<InputStream> response = send(request, HttpResponse.BodyHandlers.ofInputStream());
    try (InputStream body = response.body()) {
      if (response.statusCode() == 401) {
        assertThat(response.headers().firstValue("WWW-Authenticate")).hasValue("Bearer");
      }
      return response.statusCode();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static <T> HttpResponse<T> send(
      HttpRequest.Builder request, HttpResponse.BodyHandler<T> handler) {
    try {
      return HTTP.send(request.timeout(Duration.ofSeconds(10)).build(), handler);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  /** {@code chrootbooter_agent_status_patches_total} of the running operator. */
  private static double patchesMetric() {
    String metrics =
        send(
                HttpRequest.newBuilder(URI.create(plane.operator.adminUrl() + "/q/metrics")),
                HttpResponse.BodyHandlers.ofString())
            .body();
    return metrics
        .lines()
        .filter(l -> l.startsWith("chrootbooter_agent_status_patches_total"))
        .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }

  private static long millis(long nanos) {
    return nanos / 1_000_000;
  }
}
