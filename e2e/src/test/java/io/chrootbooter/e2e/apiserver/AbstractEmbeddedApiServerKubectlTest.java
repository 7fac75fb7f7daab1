package io.chrootbooter.e2e.apiserver;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.fabric8.kubernetes.client.dsl.Resource;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a lab user does with kubectl against the embedded API, step by step, with the operator's
 * side played by the fabric8 client: apply CRDs and examples, read printer columns, see status
 * written through the status subresource, wait for Ready, watch, edit, describe, delete.
 *
 * <p>One scenario, one subclass per kubectl binary: client-go's expectations of discovery, lists
 * and watches differ between versions, and the lab must serve both Debian 12's kubectl 1.20 and a
 * current one. Each subclass skips itself when its binary is absent.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
abstract class AbstractEmbeddedApiServerKubectlTest {

  private static final Path REPO = Path.of("..").toAbsolutePath().normalize();
  private static final Duration AWAIT = Duration.ofSeconds(15);

  private EmbeddedApiServer server;
  private Kubectl kubectl;
  private KubernetesClient client;

  /** The kubectl binary this run uses. */
  abstract Path kubectlBinary();

  /** Why the binary may be missing and how to provide it, for the skip message. */
  abstract String howToProvide();

  @BeforeAll
  void start(@TempDir Path dir) throws Exception {
    Path binary = kubectlBinary();
    if (!Files.isExecutable(binary)) {
      // Skipped per test in requireKubectl(): surefire neither counts nor reports a skip that
      // happens here, in @BeforeAll.
      return;
    }
    Path kubeconfig = dir.resolve("kubeconfig");
    server =
        EmbeddedApiServer.start(
            new EmbeddedApiServer.Options(
                0, "127.0.0.1", java.util.Optional.of(kubeconfig), java.util.Optional.empty()));
    kubectl = new Kubectl(binary, kubeconfig, Files.createDirectories(dir.resolve("home")));
    client =
        new KubernetesClientBuilder()
            .withConfig(Config.fromKubeconfig(Files.readString(kubeconfig)))
            .build();
  }

  @BeforeEach
  void requireKubectl() {
    Assumptions.assumeTrue(
        kubectl != null,
        "no executable kubectl at " + kubectlBinary() + "; skipped. " + howToProvide());
  }

  @AfterAll
  void stop() throws Exception {
    try {
      if (client != null) {
        client.close();
      }
      if (kubectl != null) {
        kubectl.close();
      }
    } finally {
      if (server != null) {
        server.close();
      }
    }
  }

  private Resource<GenericKubernetesResource> machine(String name) {
    return client
        .genericKubernetesResources("boot.chrootbooter.io/v1alpha1", "MachineBoot")
        .inNamespace("default")
        .withName(name);
  }

  @Test
  @Order(1)
  void appliesCrdsAndExamples() throws Exception {
    var crds = kubectl.run("apply", "-f", REPO.resolve("crds").toString());
    assertThat(crds.exitCode()).as(crds.toString()).isZero();
    assertThat(crds.stdout()).contains("machineboots.boot.chrootbooter.io created");

    var examples = kubectl.run("apply", "-f", REPO.resolve("examples").toString());
    assertThat(examples.exitCode()).as(examples.toString()).isZero();
    assertThat(examples.stdout()).contains("machineboot.boot.chrootbooter.io/m1 created");

    var again = kubectl.run("apply", "-f", REPO.resolve("examples").toString());
    assertThat(again.exitCode()).as(again.toString()).isZero();
    assertThat(again.stdout()).contains("machineboot.boot.chrootbooter.io/m1 unchanged");
  }

  @Test
  @Order(2)
  void getPrintsThePrinterColumns() throws Exception {
    var get = kubectl.run("get", "bi,mb");
    assertThat(get.exitCode()).as(get.toString()).isZero();
    List<String> lines = get.stdout().lines().toList();
    assertThat(lines).anyMatch(l -> l.matches("NAME\\s+PHASE\\s+FORMAT\\s+SIZE\\s+AGE"));
    assertThat(lines).anyMatch(l -> l.matches("NAME\\s+PHASE\\s+IMAGE\\s+IP\\s+SEEN\\s+AGE"));
    assertThat(lines)
        .anyMatch(l -> l.startsWith("bootimage.boot.chrootbooter.io/busybox "))
        .anyMatch(l -> l.startsWith("bootimage.boot.chrootbooter.io/debian-12 "))
        .anyMatch(l -> l.matches("machineboot.boot.chrootbooter.io/m1\\s+debian-12\\s+\\d+s"))
        .anyMatch(l -> l.startsWith("machineboot.boot.chrootbooter.io/m2 "));

    // The BootTest example, by its short name.
    var test = kubectl.run("apply", "-f", REPO.resolve("examples/boottest").toString());
    assertThat(test.exitCode()).as(test.toString()).isZero();
    assertThat(test.stdout()).contains("boottest.boot.chrootbooter.io/debian-smoke created");
    var bt = kubectl.run("get", "bt");
    assertThat(bt.exitCode()).as(bt.toString()).isZero();
    assertThat(bt.stdout().lines().toList())
        .anyMatch(l -> l.matches("NAME\\s+PHASE\\s+IMAGE\\s+PASSED\\s+FAILED\\s+PROMOTED\\s+AGE"))
        .anyMatch(l -> l.matches("debian-smoke\\s+debian-12\\s+\\d+s"));
  }

  @Test
  @Order(3)
  void statusPatchedThroughFabric8ShowsInKubectlAndKeepsGeneration() throws Exception {
    List<String> seen = new CopyOnWriteArrayList<>();
    try (Watch watch = machine("m1").watch(new Recorder(seen))) {
      machine("m1")
          .editStatus(
              m -> {
                m.setAdditionalProperty(
                    "status", Map.of("phase", "Running", "agent", Map.of("ip", "10.0.2.15")));
                return m;
              });
      await().atMost(AWAIT).until(() -> seen.contains("MODIFIED Running"));
    }
    assertThat(machine("m1").get().getMetadata().getGeneration()).isEqualTo(1L);

    var get = kubectl.run("get", "mb", "m1");
    assertThat(get.exitCode()).as(get.toString()).isZero();
    assertThat(get.stdout())
        .containsPattern("m1\\s+Running\\s+debian-12\\s+10\\.0\\.2\\.15\\s+\\d+s");
  }

  @Test
  @Order(4)
  void waitReturnsOnceReadyIsWritten() throws Exception {
    // -v=6 logs each request: the condition is written only once kubectl's watch is open, so the
    // test proves that the watch delivers it (and not the initial GET).
    var wait = kubectl.start("wait", "--for=condition=Ready", "mb/m1", "--timeout=10s", "-v=6");
    await().atMost(AWAIT).until(() -> wait.output().contains("watch=true"));
    machine("m1")
        .editStatus(
            m -> {
              m.setAdditionalProperty(
                  "status",
                  Map.of(
                      "phase",
                      "Running",
                      "agent",
                      Map.of("ip", "10.0.2.15"),
                      "conditions",
                      List.of(
                          Map.of(
                              "type", "Ready",
                              "status", "True",
                              "reason", "Running",
                              "message", "debian-12 is running",
                              "lastTransitionTime", "2026-01-01T00:00:00Z"))));
              return m;
            });
    assertThat(wait.process().waitFor(15, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
    assertThat(wait.process().exitValue()).as(wait.output()).isZero();
    assertThat(wait.output()).contains("condition met");
  }

  @Test
  @Order(5)
  void watchPrintsAnEditAndGenerationFollowsTheSpec() throws Exception {
    var watch = kubectl.start("get", "mb", "-w");
    await().atMost(AWAIT).until(() -> watch.output().contains("m2"));

    var edit =
        kubectl.run(
            Map.of("KUBE_EDITOR", "sed -i s/imageRef:\\ debian-12/imageRef:\\ busybox/"),
            "edit",
            "mb",
            "m1");
    assertThat(edit.exitCode()).as(edit.toString()).isZero();

    await()
        .atMost(AWAIT)
        .untilAsserted(
            () ->
                assertThat(watch.output())
                    .containsPattern("m1\\s+Running\\s+busybox\\s+10\\.0\\.2\\.15"));
    watch.process().destroy();
    assertThat(machine("m1").get().getMetadata().getGeneration()).isEqualTo(2L);
  }

  @Test
  @Order(6)
  void describeShowsTheObjectsEventsOnly() throws Exception {
    GenericKubernetesResource m1 = machine("m1").get();
    client
        .v1()
        .events()
        .inNamespace("default")
        .resource(
            new EventBuilder()
                .withNewMetadata()
                .withName("m1.switched")
                .endMetadata()
                .withFirstTimestamp("2026-01-01T00:00:00Z")
                .withLastTimestamp("2026-01-01T00:00:00Z")
                .withNewSource()
                .withComponent("chrootbooter-operator")
                .endSource()
                .withNewInvolvedObject()
                .withApiVersion("boot.chrootbooter.io/v1alpha1")
                .withKind("MachineBoot")
                .withName("m1")
                .withNamespace("default")
                .withUid(m1.getMetadata().getUid())
                .endInvolvedObject()
                .withType("Normal")
                .withReason("ImageSwitched")
                .withMessage("m1 switched to busybox")
                .build())
        .create();
    client
        .v1()
        .events()
        .inNamespace("default")
        .resource(
            new EventBuilder()
                .withNewMetadata()
                .withName("m2.other")
                .endMetadata()
                .withNewInvolvedObject()
                .withKind("MachineBoot")
                .withName("m2")
                .withNamespace("default")
                .endInvolvedObject()
                .withReason("Other")
                .withMessage("about m2 only")
                .build())
        .create();

    var describe = kubectl.run("describe", "mb", "m1");
    assertThat(describe.exitCode()).as(describe.toString()).isZero();
    assertThat(describe.stdout()).contains("Phase:", "Running").doesNotContain("about m2 only");
    assertThat(describe.stdout().lines())
        .as(describe.stdout())
        .anyMatch(
            l ->
                l.matches(
                    "\\s*Normal\\s+ImageSwitched\\s+\\S+\\s+chrootbooter-operator\\s+"
                        + "m1 switched to busybox\\s*"));
  }

  @Test
  @Order(7)
  void deleteRemovesTheExamples() throws Exception {
    var delete = kubectl.run("delete", "-f", REPO.resolve("examples").toString());
    assertThat(delete.exitCode()).as(delete.toString()).isZero();
    var get = kubectl.run("get", "mb,bi");
    assertThat(get.stdout()).doesNotContain("m1");
    assertThat(get.stdout() + get.stderr()).contains("No resources found");
  }

  @Test
  @Order(8)
  void theKubeconfigsTokenIsTheLabUserInTheOperatorsReviews() throws Exception {
    // kubectl sends the kubeconfig's token over the plain-HTTP loopback URL and works with it.
    var token = kubectl.run("config", "view", "--raw", "-o", "jsonpath={.users[0].user.token}");
    assertThat(token.exitCode()).as(token.toString()).isZero();
    assertThat(token.stdout()).matches("[A-Za-z0-9_-]{40,}");
    assertThat(kubectl.run("get", "mb").exitCode()).isZero();

    // What the operator asks about a user's console request, as fabric8 asks it.
    var review =
        client
            .authentication()
            .v1()
            .tokenReviews()
            .create(
                new io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder()
                    .withNewSpec()
                    .withToken(token.stdout())
                    .endSpec()
                    .build());
    assertThat(review.getStatus().getAuthenticated()).isTrue();
    assertThat(review.getStatus().getUser().getUsername()).isEqualTo(ApiDispatcher.LAB_USER);
    var access =
        client
            .authorization()
            .v1()
            .subjectAccessReview()
            .create(
                new io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewBuilder()
                    .withNewSpec()
                    .withUser(ApiDispatcher.LAB_USER)
                    .withNewResourceAttributes()
                    .withGroup("boot.chrootbooter.io")
                    .withResource("machineboots")
                    .withSubresource("console")
                    .withVerb("create")
                    .withNamespace("default")
                    .withName("m1")
                    .endResourceAttributes()
                    .endSpec()
                    .build());
    assertThat(access.getStatus().getAllowed()).isTrue();
  }

  /** Records "ACTION phase" for each watch event the fabric8 client receives. */
  private record Recorder(List<String> seen) implements Watcher<GenericKubernetesResource> {
    @Override
    public void eventReceived(Action action, GenericKubernetesResource resource) {
      Object status = resource.getAdditionalProperties().get("status");
      Object phase = status instanceof Map<?, ?> s ? s.get("phase") : null;
      seen.add(action + " " + phase);
    }

    @Override
    public void onClose(WatcherException cause) {}
  }
}
