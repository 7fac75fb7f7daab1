package io.chrootbooter.e2e.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.operator.StatusReporter;
import io.chrootbooter.e2e.apiserver.EmbeddedApiServer;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.StatusReport;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.IOException;
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
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two operator replicas with leader election against one embedded Kubernetes API, as the Helm chart
 * runs them (two processes of the operator jar, one shared image store): exactly one holds the
 * Lease and reconciles, both serve iPXE scripts, images and the agent API, and when the leader is
 * SIGKILLed the standby takes the Lease within the lease duration and reconciles whatever changed
 * meanwhile — no MachineBoot is left without status.
 */
class HighAvailabilityTest {
  private static final String NAMESPACE = "ha";
  private static final String LEASE = "chrootbooter-operator-leader";

  /** Short lease settings (the defaults are 15 s / 10 s / 2 s), so that the test is quick. */
  private static final Duration LEASE_DURATION = Duration.ofSeconds(4);

  private static final Duration RENEW_DEADLINE = Duration.ofSeconds(3);
  private static final Duration RETRY_PERIOD = Duration.ofSeconds(1);

  /** How long a reconcile may take on a loaded 2-core machine. */
  private static final Duration SETTLE = Duration.ofSeconds(30);

  private static final Pattern NONCE = Pattern.compile(" cb\\.nonce=(\\S+)");
  private static final Pattern SESSION = Pattern.compile("\"session\":\"([A-Za-z0-9_-]+)\"");
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @TempDir Path dir;

  /** What the test started, stopped in reverse order by {@link #stop()} whatever happened. */
  private final Owned owned = new Owned();

  private KubernetesClient client;
  private EmbeddedApiServer apiServer;
  private BootApi api;
  private final Map<String, OperatorProcess> replicas = new LinkedHashMap<>();

  @AfterEach
  void stop() throws Exception {
    owned.close();
  }

  @Test
  void oneReplicaReconcilesBothServeAndTheStandbyTakesOverWhenTheLeaderIsKilled() throws Exception {
    ImageFiles images = startReplicas(List.of());
    try {
      scenario(images);
    } catch (Exception | AssertionError e) {
      System.err.println(diagnostics());
      throw e;
    }
  }

  /** {@code cb.agent.lost-after} of the liveness scenario: seconds, so that the test is quick. */
  private static final Duration LOST_AFTER = Duration.ofSeconds(3);

  /**
   * An agent whose replica (the leader, holding its stream) is SIGKILLed reconnects to the other
   * replica, as the Service would send it, re-sends its report at once and is never marked lost;
   * when it then falls silent, the new leader marks it AgentLost within lost-after and 10 s. The
   * agent is the node agent's own client and reporter, heartbeat from the desired state.
   */
  @Test
  void anAgentWhoseReplicaIsKilledReconnectsToTheOtherAndIsNeverLost() throws Exception {
    ImageFiles images = startReplicas(List.of("-Dcb.agent.lost-after=" + LOST_AFTER));
    try {
      livenessScenario(images);
    } catch (Exception | AssertionError e) {
      System.err.println(diagnostics());
      throw e;
    }
  }

  private void livenessScenario(ImageFiles images) throws Exception {
    String leader =
        await("a holder of Lease " + LEASE).atMost(SETTLE).until(this::holder, h -> h != null);
    String standby = replicas.keySet().stream().filter(n -> !n.equals(leader)).findFirst().get();
    String mac = "52:54:00:ab:00:01";
    // Enrolled at the leader; the session is good at every replica.
    String token = enrolledDebianMachine(images, "m1", mac, leader);

    var running =
        StatusReport.builder()
            .phase(MachinePhase.Running)
            .currentImage("debian-12")
            .agent(new AgentInfo("e2e", "boot-1", "10.0.0.2", "6.1.0", null))
            .appliedGeneration(1L)
            .build();
    AtomicReference<FollowingAgent> agent =
        new AtomicReference<>(new FollowingAgent(replicas.get(leader).url(), mac, token));
    var reporter =
        new StatusReporter(
            r -> agent.get().client.report(r),
            () -> running,
            Duration.ofMillis(200),
            StatusReporter.heartbeatOf(null));
    List<String> lostSeen = new CopyOnWriteArrayList<>();
    AtomicBoolean watching = new AtomicBoolean(true);
    Thread watcher = null;
    try {
      DesiredState first = agent.get().next(Duration.ofSeconds(10), s -> true).state();
      assertThat(first.heartbeat()).isEqualTo("1s"); // a quarter of 3 s, held at the 1 s minimum
      reporter.heartbeat(StatusReporter.heartbeatOf(first.heartbeat()));
      reporter.poke();
      await("m1 Ready")
          .atMost(SETTLE)
          .until(() -> condition(api.machine("m1"), "Ready").equals("True"));

      watcher =
          new Thread(
              () -> {
                while (watching.get()) {
                  try {
                    JsonNode mb = BootApi.json(api.machine("m1"));
                    for (JsonNode c : mb.at("/status/conditions")) {
                      if ("Ready".equals(c.path("type").asText())
                          && !"True".equals(c.path("status").asText())) {
                        lostSeen.add(c.path("reason").asText() + ": " + c.path("message").asText());
                      }
                    }
                    Thread.sleep(100);
                  } catch (InterruptedException e) {
                    return;
                  } catch (RuntimeException e) {
                    // the API answered nothing this time: look again
                  }
                }
              },
              "watch-m1");
      watcher.setDaemon(true);
      watcher.start();
      Thread.sleep(LOST_AFTER.multipliedBy(2).toMillis());

      // SIGKILL the replica that holds the agent's stream (and leads); the agent's reconnect
      // reaches the other one, as through the Service, after its first backoff.
      replicas.get(leader).kill();
      Thread.sleep(500);
      FollowingAgent dead =
          agent.getAndSet(new FollowingAgent(replicas.get(standby).url(), mac, token));
      dead.close();
      await("the agent's stream on " + standby)
          .atMost(Duration.ofSeconds(10))
          .until(() -> agent.get().connections() > 0);
      reporter.poke(); // on every (re)connect, at once, as the agent does
      await("the standby " + standby + " leading")
          .atMost(LEASE_DURATION.plus(SETTLE))
          .until(this::holder, standby::equals);
      Thread.sleep(LOST_AFTER.multipliedBy(3).toMillis());
      assertThat(lostSeen).as("Ready=False seen while the agent spoke").isEmpty();
      assertThat(condition(api.machine("m1"), "Ready")).isEqualTo("True");

      // Now it falls silent: the new leader marks it lost.
      watching.set(false);
      reporter.close();
      agent.get().close();
      long silent = System.nanoTime();
      await("m1 AgentLost")
          .atMost(LOST_AFTER.plusSeconds(10))
          .pollInterval(Duration.ofMillis(100))
          .until(() -> reason(api.machine("m1"), "Ready").equals("AgentLost"));
      System.out.printf(
          "AgentLost %d ms after the agent fell silent%n",
          Duration.ofNanos(System.nanoTime() - silent).toMillis());

      // What a user's kubectl says: wait fails on the lost machine, the reason is in the
      // condition; SEEN is a column; once the agent is back, wait succeeds again.
      Path kubectl =
          Path.of(
              System.getProperty(
                  "CB_KUBECTL",
                  Optional.ofNullable(System.getenv("CB_KUBECTL")).orElse("/usr/bin/kubectl")));
      if (Files.isExecutable(kubectl)) {
        Kubectl lost = kubectl(kubectl, "wait", "--for=condition=Ready", "mb/m1", "--timeout=2s");
        assertThat(lost.exit()).as("kubectl wait on a lost machine: %s", lost).isNotZero();
        assertThat(lost.output()).contains("timed out");
        Kubectl reason =
            kubectl(
                kubectl,
                "get",
                "mb",
                "m1",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}");
        assertThat(reason.output().strip()).isEqualTo("AgentLost");
        assertThat(kubectl(kubectl, "get", "mb").output()).contains("SEEN");
        try (FollowingAgent back = new FollowingAgent(replicas.get(standby).url(), mac, token);
            var again =
                new StatusReporter(
                    r -> back.client.report(r),
                    () -> running,
                    Duration.ofMillis(200),
                    Duration.ofSeconds(1))) {
          Kubectl ready =
              kubectl(kubectl, "wait", "--for=condition=Ready", "mb/m1", "--timeout=30s");
          assertThat(ready.exit()).as("kubectl wait on a machine back: %s", ready).isZero();
        }
      } else {
        System.out.println("no kubectl at " + kubectl + ": the kubectl checks are skipped");
      }
    } finally {
      watching.set(false);
      reporter.close();
      agent.get().close();
    }
  }

  /**
   * A machine's agent follows its stream and sends its console to one replica; a user with the lab
   * kubeconfig's token reads the recorded console and attaches to the live one at the other
   * replica, which checks the token and forwards both to the replica that holds them (named in the
   * machine's agent Lease). The forward credential is good once, at that replica, for that request:
   * replayed, forged or taken to the other replica, it is refused.
   */
  @Test
  void aConsoleIsReadAndAttachedThroughTheReplicaThatDoesNotHoldIt() throws Exception {
    ImageFiles images = startReplicas(List.of());
    try {
      consoleScenario(images);
    } catch (Exception | AssertionError e) {
      System.err.println(diagnostics());
      throw e;
    }
  }

  /**
   * The Debian image Ready and MachineBoot {@code name} on it, enrolled at {@code replica} with the
   * nonce of the iPXE script that replica serves; the machine's session.
   */
  private String enrolledDebianMachine(ImageFiles images, String name, String mac, String replica)
      throws Exception {
    String sha = images.putSquashfs("debian-12.squashfs", 1);
    api.createImage("debian-12", images.url("debian-12.squashfs"), sha);
    api.createMachine(name, Map.of("macAddress", mac, "imageRef", "debian-12"));
    await("BootImage debian-12 Ready")
        .atMost(SETTLE)
        .until(
            () ->
                "Ready".equals(BootApi.json(api.image("debian-12")).at("/status/phase").asText()));
    String script =
        await("the iPXE script of " + mac)
            .atMost(SETTLE)
            .until(
                () -> get(replica, "/boot/" + mac + ".ipxe"),
                r -> r.statusCode() == 200 && r.body().contains("cb.nonce="))
            .body();
    return enrol(replica, mac, script);
  }

  private void consoleScenario(ImageFiles images) throws Exception {
    String holder = "replica-b";
    String other = "replica-a";
    String mac = "52:54:00:ab:00:21";
    String session = enrolledDebianMachine(images, "c1", mac, holder);
    var running =
        StatusReport.builder()
            .phase(MachinePhase.Running)
            .currentImage("debian-12")
            .agent(new AgentInfo("e2e", "boot-c1", "10.0.0.21", "6.1.0", null))
            .appliedGeneration(1L)
            .build();
    java.io.ByteArrayOutputStream typed = new java.io.ByteArrayOutputStream();
    AtomicReference<io.chrootbooter.agent.relay.ConsoleRecorder.Screen> screen =
        new AtomicReference<>();
    try (FollowingAgent agent = new FollowingAgent(replicas.get(holder).url(), mac, session);
        var reporter =
            new StatusReporter(
                r -> agent.client.report(r),
                () -> running,
                Duration.ofMillis(500),
                Duration.ofSeconds(1))) {
      agent.client.onConsole(
          new io.chrootbooter.agent.operator.ConsoleAttach(
                  agent.client.http(),
                  agent.client::authorization,
                  agent.client::consoleUri,
                  sc -> {
                    screen.set(sc);
                    return Optional.of(
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
                            sc.ended();
                          }
                        });
                  })
              ::open);
      reporter.poke();
      await("c1 Running")
          .atMost(SETTLE)
          .until(
              () -> "Running".equals(BootApi.json(api.machine("c1")).at("/status/phase").asText()));
      String recorded = "Debian GNU/Linux 12 c1 ttyS0\r\n\r\nc1 login: ";
      assertThat(postConsole(holder, mac, session, "boot-c1", recorded)).isEqualTo(202);
      String holderAdmin = replicas.get(holder).adminUrl();
      await("the agent Lease naming " + holder + " for the live and the recorded console")
          .atMost(SETTLE)
          .untilAsserted(
              () -> {
                Map<String, String> annotations =
                    client
                        .leases()
                        .inNamespace(NAMESPACE)
                        .withName("c1-agent")
                        .require()
                        .getMetadata()
                        .getAnnotations();
                assertThat(annotations)
                    .containsEntry("boot.chrootbooter.io/console-live-replica", holderAdmin)
                    .containsEntry("boot.chrootbooter.io/console-log-replica", holderAdmin);
              });

      // The recorded console, read at the other replica with the user's own token.
      String token = apiServer.labToken();
      String logs = "/machines/" + NAMESPACE + "/c1/console";
      HttpResponse<String> read =
          await("the console of c1 read at " + other)
              .atMost(SETTLE)
              .until(
                  () -> admin(other, logs, "Bearer " + token, Map.of()),
                  r -> r.statusCode() == 200);
      assertThat(read.body()).isEqualTo(recorded);
      assertThat(read.headers().firstValue("Chrootbooter-Boot")).hasValue("boot-c1");
      assertThat(read.headers().firstValue("Content-Type")).hasValue("text/plain; charset=utf-8");
      // The holder answers the same.
      assertThat(admin(holder, logs, "Bearer " + token, Map.of()).body()).isEqualTo(recorded);
      // Without the user's token: nothing, at either.
      assertThat(admin(other, logs, null, Map.of()).statusCode()).isEqualTo(401);
      // A forward credential that no replica made: refused, and no byte.
      String user =
          java.util.Base64.getUrlEncoder()
              .withoutPadding()
              .encodeToString("chrootbooter-lab".getBytes(java.nio.charset.StandardCharsets.UTF_8));
      HttpResponse<String> forged =
          admin(
              holder,
              logs,
              null,
              Map.of(
                  "Chrootbooter-Forward",
                  "A" + "x".repeat(65),
                  "Chrootbooter-Forwarded-User",
                  user));
      assertThat(forged.statusCode()).isEqualTo(401);
      assertThat(forged.body()).doesNotContain("login");

      // The live console, attached at the other replica.
      ConsoleUser attached =
          ConsoleUser.attach(
              HTTP,
              URI.create(
                  replicas.get(other).adminUrl().replace("http://", "ws://")
                      + "/machines/"
                      + NAMESPACE
                      + "/c1/console/attach"),
              token);
      await("the agent's console connection at " + holder)
          .atMost(SETTLE)
          .until(() -> screen.get() != null);
      byte[] prompt = "c1 login: ".getBytes(java.nio.charset.StandardCharsets.UTF_8);
      screen.get().output(prompt, 0, prompt.length);
      attached.awaitOutputEndingWith("c1 login: ");
      attached.type("root\r");
      ConsoleUser.awaitTyped(typed, "root\r");
      screen.get().ended();
      attached.assertClosedWith("1000 the target ended");
      await("the ConsoleAttached Event of the user")
          .atMost(SETTLE)
          .until(
              () ->
                  client.v1().events().inNamespace(NAMESPACE).list().getItems().stream()
                      .anyMatch(
                          e ->
                              "ConsoleAttached".equals(e.getReason())
                                  && "c1".equals(e.getInvolvedObject().getName())
                                  && "chrootbooter-lab attached to the console"
                                      .equals(e.getMessage())));
    }
  }

  /** Posts one piece of console of {@code boot} at offset 0 to {@code replica}; the status. */
  private int postConsole(String replica, String mac, String session, String boot, String text)
      throws IOException, InterruptedException {
    String chunk =
        "{\"boot\":\""
            + boot
            + "\",\"image\":\"debian-12\",\"started\":\"2026-01-01T00:00:00Z\",\"offset\":0,"
            + "\"data\":\""
            + java.util.Base64.getEncoder()
                .encodeToString(text.getBytes(java.nio.charset.StandardCharsets.UTF_8))
            + "\",\"firstWarning\":0,\"warnings\":[],\"ended\":false}";
    return HTTP.send(
            HttpRequest.newBuilder(
                    URI.create(
                        replicas.get(replica).url() + "/agent/v1/machines/" + mac + "/console"))
                .header("Content-Type", "application/json")
                .header("Authorization", "Bearer " + session)
                .POST(HttpRequest.BodyPublishers.ofString(chunk))
                .build(),
            HttpResponse.BodyHandlers.ofString())
        .statusCode();
  }

  /** GET {@code path} on the admin port of {@code replica}. */
  private HttpResponse<String> admin(
      String replica, String path, String authorization, Map<String, String> headers)
      throws IOException, InterruptedException {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(URI.create(replicas.get(replica).adminUrl() + path))
            .timeout(Duration.ofSeconds(20));
    if (authorization != null) {
      request.header("Authorization", authorization);
    }
    headers.forEach(request::header);
    return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  /** What one kubectl run printed (stdout and stderr) and its exit code. */
  private record Kubectl(int exit, String output) {}

  private Kubectl kubectl(Path binary, String... args) throws Exception {
    List<String> command =
        new ArrayList<>(
            List.of(
                binary.toString(),
                "--kubeconfig",
                dir.resolve("kubeconfig").toString(),
                "-n",
                NAMESPACE));
    command.addAll(List.of(args));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().remove("KUBECONFIG");
    builder.environment().put("HOME", dir.toString());
    Process p = builder.start();
    String output =
        new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    if (!p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("kubectl " + String.join(" ", args) + " ran over a minute");
    }
    return new Kubectl(p.exitValue(), output);
  }

  private static String reason(GenericKubernetesResource machine, String type) {
    for (JsonNode c : BootApi.json(machine).at("/status/conditions")) {
      if (type.equals(c.path("type").asText())) {
        return c.path("reason").asText();
      }
    }
    return "absent";
  }

  /** The embedded API and two replicas with leader election; the images they mirror from. */
  private ImageFiles startReplicas(List<String> extra) throws Exception {
    Path repository = Path.of(System.getProperty("cb.repo.dir", "..")).toAbsolutePath().normalize();
    Path jar = repository.resolve("operator/target/quarkus-app/quarkus-run.jar");
    assumeTrue(
        Files.isRegularFile(jar),
        () ->
            "no operator jar at "
                + jar
                + "; build it first: mvn -B -pl operator -am package -DskipTests");
    apiServer =
        own(
            EmbeddedApiServer.start(
                new EmbeddedApiServer.Options(
                    0,
                    "127.0.0.1",
                    Optional.of(dir.resolve("kubeconfig")),
                    Optional.of(repository.resolve("crds")))));
    client =
        own(
            new KubernetesClientBuilder()
                .withConfig(
                    new ConfigBuilder(Config.empty())
                        .withMasterUrl(apiServer.url())
                        .withNamespace(NAMESPACE)
                        .withRequestTimeout(10_000)
                        .build())
                .build());
    ImageFiles images = own(new ImageFiles());
    api = new BootApi(client, apiServer.url(), NAMESPACE);
    Path store = dir.resolve("shared-store");
    for (String name : List.of("replica-a", "replica-b")) {
      replicas.put(
          name,
          own(
              OperatorProcess.start(
                  jar,
                  apiServer.url(),
                  dir.resolve(name),
                  concat(
                      List.of(
                          "-Dcb.store.path=" + store,
                          "-Dcb.leader-election.lease-name=" + LEASE,
                          "-Dcb.leader-election.namespace=" + NAMESPACE,
                          "-Dcb.leader-election.identity=" + name,
                          "-Dcb.leader-election.lease-duration=" + LEASE_DURATION,
                          "-Dcb.leader-election.renew-deadline=" + RENEW_DEADLINE,
                          "-Dcb.leader-election.retry-period=" + RETRY_PERIOD),
                      extra))));
    }
    return images;
  }

  private void scenario(ImageFiles images) throws Exception {
    // Exactly one replica holds the Lease and says so in its metrics; the other stands by.
    String leader =
        await("a holder of Lease " + LEASE).atMost(SETTLE).until(this::holder, h -> h != null);
    assertThat(replicas).containsKey(leader);
    String standby = replicas.keySet().stream().filter(n -> !n.equals(leader)).findFirst().get();
    await("chrootbooter_leader 1 on " + leader + ", 0 on " + standby)
        .atMost(SETTLE)
        .untilAsserted(
            () -> {
              assertThat(metric(leader, "chrootbooter_leader")).isEqualTo(1.0);
              assertThat(metric(standby, "chrootbooter_leader")).isEqualTo(0.0);
            });

    // The leader reconciles: the image is mirrored into the shared store, the machine gets status.
    String sha = images.putSquashfs("debian-12.squashfs", 1);
    api.createImage("debian-12", images.url("debian-12.squashfs"), sha);
    String mac = "52:54:00:ab:00:01";
    api.createMachine("m1", Map.of("macAddress", mac, "imageRef", "debian-12"));
    awaitReconciled("m1");
    await("BootImage debian-12 Ready")
        .atMost(SETTLE)
        .until(
            () ->
                "Ready".equals(BootApi.json(api.image("debian-12")).at("/status/phase").asText()));
    assertThat(reconciles(leader)).isPositive();
    assertThat(reconciles(standby)).as("reconciles counted by the standby %s", standby).isZero();

    // Both serve the machine's script, the image and the agent API.
    String token = null;
    for (String replica : replicas.keySet()) {
      String script =
          await("the iPXE script of " + mac + " from " + replica)
              .atMost(SETTLE)
              .until(
                  () -> get(replica, "/boot/" + mac + ".ipxe"),
                  r -> r.statusCode() == 200 && r.body().contains("cb.image="))
              .body();
      token = enrol(replica, mac, script);
      assertThat(get(replica, "/images/" + sha).statusCode())
          .as("without a session")
          .isEqualTo(401);
      assertThat(get(replica, "/images/" + sha, token).statusCode()).isEqualTo(200);
      try (FollowingAgent agent = new FollowingAgent(replicas.get(replica).url(), mac, token)) {
        FollowingAgent.Received run = agent.next(Duration.ofSeconds(10), DesiredState::runs);
        // The image URL is on the operator the agent follows (the origin its session goes to):
        // in a cluster the Service's public URL, here the replica's own address.
        assertThat(run.state().image().url()).endsWith("/images/" + sha);
      }
    }
    // A report posted to the standby is written by it (every replica writes the reports it gets),
    // and the leader derives the conditions from it.
    assertThat(
            report(standby, mac, token, "{\"phase\":\"Running\",\"currentImage\":\"debian-12\"}"))
        .isEqualTo(202);
    await("m1 Ready after a report to the standby")
        .atMost(SETTLE)
        .until(() -> condition(api.machine("m1"), "Ready").equals("True"));

    // SIGKILL the leader; while nobody leads, machines are created and changed.
    replicas.get(leader).kill();
    long killed = System.nanoTime();
    api.createMachine("m2", Map.of("macAddress", "52:54:00:ab:00:02", "imageRef", "debian-12"));
    api.editSpec(
        "m1",
        spec -> {
          spec.put("kernelArgs", List.of("quiet"));
          return spec;
        });
    String next =
        await("the standby " + standby + " holding the Lease")
            .atMost(LEASE_DURATION.plus(SETTLE))
            .pollInterval(Duration.ofMillis(100))
            .until(this::holder, standby::equals);
    Duration takeover = Duration.ofNanos(System.nanoTime() - killed);
    System.out.printf(
        "leader %s killed; %s took the Lease after %d ms%n", leader, next, takeover.toMillis());
    // The standby sees the Lease expire LEASE_DURATION after it last saw it renewed (up to one
    // RETRY_PERIOD before the kill) and tries again every RETRY_PERIOD with up to 20 % jitter
    // (fabric8's LeaderElector): at most about LEASE_DURATION + 2.2 RETRY_PERIOD, and a
    // RETRY_PERIOD more for a loaded machine.
    assertThat(takeover)
        .as("time from SIGKILL of the leader to the standby holding the Lease")
        .isLessThanOrEqualTo(LEASE_DURATION.plus(RETRY_PERIOD.multipliedBy(3)).plusMillis(200));

    // What happened meanwhile, and what happens next, is reconciled by the new leader.
    api.createMachine("m3", Map.of("macAddress", "52:54:00:ab:00:03", "state", "Bootstrap"));
    for (String name : List.of("m1", "m2", "m3")) {
      awaitReconciled(name);
    }
    assertThat(condition(api.machine("m3"), "Reconciling")).isEqualTo("True");
    assertThat(reconciles(standby)).isPositive();
    assertThat(metric(standby, "chrootbooter_leader")).isEqualTo(1.0);
    List<String> unreconciled =
        client
            .genericKubernetesResources(BootApi.MACHINE_BOOT)
            .inNamespace(NAMESPACE)
            .list()
            .getItems()
            .stream()
            .filter(m -> !reconciled(m))
            .map(m -> m.getMetadata().getName())
            .collect(Collectors.toList());
    assertThat(unreconciled).as("MachineBoots without status for their generation").isEmpty();
  }

  private void awaitReconciled(String name) {
    await("MachineBoot " + name + " reconciled")
        .atMost(SETTLE)
        .until(() -> reconciled(api.machine(name)));
  }

  /** Status for the current generation, with kstatus conditions: what a reconcile writes. */
  private static boolean reconciled(GenericKubernetesResource machine) {
    JsonNode mb = BootApi.json(machine);
    return mb.at("/status/observedGeneration").asLong(-1) == mb.at("/metadata/generation").asLong()
        && mb.at("/status/conditions").size() > 0;
  }

  private static String condition(GenericKubernetesResource machine, String type) {
    for (JsonNode c : BootApi.json(machine).at("/status/conditions")) {
      if (type.equals(c.path("type").asText())) {
        return c.path("status").asText();
      }
    }
    return "absent";
  }

  private String holder() {
    Lease lease = client.leases().inNamespace(NAMESPACE).withName(LEASE).get();
    return lease == null || lease.getSpec() == null ? null : lease.getSpec().getHolderIdentity();
  }

  private HttpResponse<String> get(String replica, String path)
      throws IOException, InterruptedException {
    return HTTP.send(
        HttpRequest.newBuilder(URI.create(replicas.get(replica).url() + path)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private HttpResponse<String> get(String replica, String path, String session)
      throws IOException, InterruptedException {
    return HTTP.send(
        HttpRequest.newBuilder(URI.create(replicas.get(replica).url() + path))
            .header("Authorization", "Bearer " + session)
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** Enrols {@code mac} at {@code replica} with the nonce of {@code script}; its session. */
  private String enrol(String replica, String mac, String script)
      throws IOException, InterruptedException {
    Matcher nonce = NONCE.matcher(script);
    assertThat(nonce.find()).as("a nonce in %s", script).isTrue();
    HttpResponse<String> answer =
        HTTP.send(
            HttpRequest.newBuilder(
                    URI.create(
                        replicas.get(replica).url() + "/agent/v1/machines/" + mac + "/enroll"))
                .header("Content-Type", "application/json")
                .POST(
                    HttpRequest.BodyPublishers.ofString(
                        "{\"nonce\":\"" + nonce.group(1) + "\",\"bootId\":\"ha-boot\"}"))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(answer.statusCode()).as("enrolment: %s", answer.body()).isEqualTo(200);
    Matcher session = SESSION.matcher(answer.body());
    assertThat(session.find()).isTrue();
    return session.group(1);
  }

  private int report(String replica, String mac, String token, String body)
      throws IOException, InterruptedException {
    return HTTP.send(
            HttpRequest.newBuilder(
                    URI.create(
                        replicas.get(replica).url() + "/agent/v1/machines/" + mac + "/status"))
                .header("Authorization", "Bearer " + token)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build(),
            HttpResponse.BodyHandlers.ofString())
        .statusCode();
  }

  /** The sum of a metric's samples on a replica's {@code /q/metrics} (its admin port). */
  private double metric(String replica, String name) throws IOException, InterruptedException {
    return HTTP.send(
            HttpRequest.newBuilder(URI.create(replicas.get(replica).adminUrl() + "/q/metrics"))
                .build(),
            HttpResponse.BodyHandlers.ofString())
        .body()
        .lines()
        .filter(l -> l.startsWith(name + "{") || l.startsWith(name + " "))
        .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }

  private double reconciles(String replica) throws IOException, InterruptedException {
    return metric(replica, "chrootbooter_reconcile_seconds_count");
  }

  private String diagnostics() {
    StringBuilder out = new StringBuilder("---- Lease holder: ");
    try {
      out.append(holder()).append('\n').append(api == null ? "" : api.dump());
    } catch (RuntimeException e) {
      out.append("(could not read: ").append(e.getMessage()).append(")\n");
    }
    replicas.forEach(
        (name, p) ->
            out.append("---- ")
                .append(name)
                .append(" (last 60 lines)\n")
                .append(p.logTail(60))
                .append('\n'));
    return out.toString();
  }

  private static List<String> concat(List<String> a, List<String> b) {
    List<String> all = new ArrayList<>(a);
    all.addAll(b);
    return all;
  }

  private <T extends AutoCloseable> T own(T resource) {
    return owned.own(resource);
  }
}
