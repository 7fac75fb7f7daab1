package io.chrootbooter.e2e.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.e2e.apiserver.EmbeddedApiServer;
import io.chrootbooter.e2e.apiserver.Kubeconfig;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.dsl.Resource;
import java.io.FileInputStream;
import java.io.InputStream;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kubectl boot} against the lab's embedded Kubernetes API: switch, return, timeline and test
 * do what a user sees (the spec it patches, the BootTest it creates, what it prints while the
 * machine's status changes, its exit codes), with the operator's part played by this test writing
 * the status. Each run is the plugin in its own process.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class KubectlBootTest {

  private static final String API = "boot.chrootbooter.io/v1alpha1";
  private static final Duration AWAIT = Duration.ofSeconds(30);

  private EmbeddedApiServer server;
  private KubernetesClient client;
  private Plugin plugin;
  private Path kubeconfig;
  private Path dir;

  @BeforeAll
  void start(@TempDir Path dir) throws Exception {
    this.dir = dir;
    if (Plugin.missing() != null) {
      return; // each test skips, in requirePlugin()
    }
    kubeconfig = dir.resolve("kubeconfig");
    server =
        EmbeddedApiServer.start(
            new EmbeddedApiServer.Options(
                0, "127.0.0.1", Optional.of(kubeconfig), Optional.of(Plugin.REPO.resolve("crds"))));
    client =
        new KubernetesClientBuilder()
            .withConfig(Config.fromKubeconfig(Files.readString(kubeconfig)))
            .build();
    for (String example :
        List.of(
            "bootimage-busybox.yaml",
            "bootimage-debian-12.yaml",
            "machineboot-m1.yaml",
            "machineboot-m2.yaml")) {
      try (InputStream in =
          new FileInputStream(Plugin.REPO.resolve("examples/" + example).toFile())) {
        for (HasMetadata item : client.load(in).items()) {
          client.resource(item).inNamespace("default").create();
        }
      }
    }
    plugin = Plugin.mainClass(Files.createDirectories(dir.resolve("home")));
  }

  @AfterAll
  void stop() throws Exception {
    try {
      if (plugin != null) {
        plugin.close();
      }
      if (client != null) {
        client.close();
      }
    } finally {
      if (server != null) {
        server.close();
      }
    }
  }

  @BeforeEach
  void resetMachines() {
    Assumptions.assumeTrue(Plugin.missing() == null, Plugin.missing());
    for (String m : List.of("m1", "m2")) {
      machine(m)
          .edit(
              r -> {
                @SuppressWarnings("unchecked")
                Map<String, Object> spec =
                    (Map<String, Object>) r.getAdditionalProperties().get("spec");
                spec.remove("state");
                spec.put("imageRef", "debian-12");
                return r;
              });
      setStatus(
          m,
          Map.of(
              "phase",
              "Running",
              "currentImage",
              "debian-12",
              "observedGeneration",
              generation(m)));
    }
  }

  private Resource<GenericKubernetesResource> machine(String name) {
    return client
        .genericKubernetesResources(API, "MachineBoot")
        .inNamespace("default")
        .withName(name);
  }

  private long generation(String m) {
    return machine(m).get().getMetadata().getGeneration();
  }

  private void setStatus(String m, Map<String, Object> status) {
    machine(m)
        .editStatus(
            r -> {
              r.setAdditionalProperty("status", status);
              return r;
            });
  }

  @SuppressWarnings("unchecked")
  private Map<String, Object> spec(String m) {
    return (Map<String, Object>) machine(m).get().getAdditionalProperties().get("spec");
  }

  private String[] args(String... args) {
    String[] all = new String[args.length + 2];
    all[0] = "--kubeconfig";
    all[1] = kubeconfig.toString();
    System.arraycopy(args, 0, all, 2, args.length);
    return all;
  }

  private static Map<String, Object> status(Object... kv) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], kv[i + 1]);
    }
    return m;
  }

  @Test
  void switchWaitsThroughEachPhaseUntilTheMachineRunsTheImage() throws Exception {
    var run = plugin.start(Map.of(), args("switch", "m1", "busybox", "--wait", "--timeout", "40s"));
    await().atMost(AWAIT).until(() -> "busybox".equals(spec("m1").get("imageRef")));
    assertThat(spec("m1")).doesNotContainKey("state");
    long gen = generation("m1");
    // The plugin prints the state it finds first: then its watch is open.
    await().atMost(AWAIT).until(() -> run.output().contains("Running debian-12"));
    setStatus(
        "m1", status("phase", "Returning", "currentImage", "debian-12", "observedGeneration", gen));
    await().atMost(AWAIT).until(() -> run.output().contains("Returning"));
    setStatus("m1", status("phase", "Bootstrap", "observedGeneration", gen));
    await().atMost(AWAIT).until(() -> run.output().contains("Bootstrap"));
    setStatus(
        "m1",
        status(
            "phase",
            "Downloading",
            "observedGeneration",
            gen,
            "progress",
            Map.of("bytes", 50L << 20, "total", 100L << 20, "bytesPerSecond", 80L << 20)));
    await().atMost(AWAIT).until(() -> run.output().contains("Downloading"));
    assertThat(run.process().isAlive()).as("still waiting while the image downloads").isTrue();
    setStatus(
        "m1", status("phase", "Running", "currentImage", "busybox", "observedGeneration", gen));

    var result = run.await();
    assertThat(result.exitCode()).as(result.toString()).isZero();
    assertThat(result.stdout())
        .contains("machineboot.boot.chrootbooter.io/m1 switched to busybox")
        .containsPattern("\\d+\\.\\ds  m1  Returning debian-12")
        .containsPattern("m1  Bootstrap\n")
        .contains("m1  Downloading  50.00 MiB of 100.00 MiB at 80.00 MiB/s")
        .containsPattern("m1  Running busybox\n")
        .containsPattern("m1 runs busybox \\(\\d+\\.\\d s\\)");
    assertThat(result.stderr()).isEmpty();
  }

  @Test
  void aSwitchThatFailsSaysWhyInOneLine() throws Exception {
    var run = plugin.start(Map.of(), args("switch", "m1", "busybox", "--wait"));
    await().atMost(AWAIT).until(() -> "busybox".equals(spec("m1").get("imageRef")));
    long gen = generation("m1");
    setStatus(
        "m1",
        status(
            "phase", "Failed",
            "observedGeneration", gen,
            "error", "sha256 mismatch: got 00ff, expected 2d71\nsecond line"));
    var result = run.await();
    assertThat(result.exitCode()).as(result.toString()).isEqualTo(1);
    assertThat(result.stderr())
        .isEqualTo(
            "kubectl-boot: machineboot m1 failed: sha256 mismatch: got 00ff, expected 2d71\n");
  }

  @Test
  void aMachineThatHadFailedIsWaitedForUntilItsAgentReportsAgain() throws Exception {
    setStatus(
        "m1",
        status(
            "phase", "Failed",
            "observedGeneration", generation("m1"),
            "lastReportTime", "2026-12-07T20:00:00.000Z",
            "error", "the old image's download failed"));
    var run = plugin.start(Map.of(), args("switch", "m1", "busybox", "--wait"));
    await().atMost(AWAIT).until(() -> "busybox".equals(spec("m1").get("imageRef")));
    long gen = generation("m1");
    // The operator writes the new generation at once; the agent has not reported yet.
    setStatus(
        "m1",
        status(
            "phase", "Failed",
            "observedGeneration", gen,
            "lastReportTime", "2026-12-07T20:00:00.000Z",
            "error", "the old image's download failed"));
    Thread.sleep(1500);
    assertThat(run.process().isAlive()).as(run.output()).isTrue();
    setStatus(
        "m1",
        status(
            "phase", "Running",
            "currentImage", "busybox",
            "observedGeneration", gen,
            "lastReportTime", "2026-12-07T20:01:00.000Z"));
    var result = run.await();
    assertThat(result.exitCode()).as(result.toString()).isZero();
    assertThat(result.stdout()).containsPattern("m1 runs busybox");
  }

  @Test
  void aStalledImageEndsTheWaitWithTheReason() throws Exception {
    var run = plugin.start(Map.of(), args("switch", "m1", "busybox", "--wait"));
    await().atMost(AWAIT).until(() -> "busybox".equals(spec("m1").get("imageRef")));
    long gen = generation("m1");
    setStatus(
        "m1",
        status(
            "phase",
            "Running",
            "currentImage",
            "debian-12",
            "observedGeneration",
            gen,
            "conditions",
            List.of(
                status(
                    "type", "Stalled",
                    "status", "True",
                    "reason", "ImageFailed",
                    "message", "BootImage busybox failed: sha256 mismatch",
                    "observedGeneration", gen,
                    "lastTransitionTime", "2026-12-07T20:00:00Z"))));
    var result = run.await();
    assertThat(result.exitCode()).as(result.toString()).isEqualTo(1);
    assertThat(result.stderr())
        .isEqualTo(
            "kubectl-boot: machineboot m1 is stalled: ImageFailed: BootImage busybox failed:"
                + " sha256 mismatch\n");
  }

  @Test
  void aSwitchWaitEndsAtItsTimeout() throws Exception {
    var result = plugin.run(args("switch", "m2", "busybox", "--wait", "--timeout", "2s"));
    assertThat(result.exitCode()).as(result.toString()).isEqualTo(5);
    assertThat(result.stderr())
        .isEqualTo("kubectl-boot: machineboot m2 is still Running debian-12 after 2s\n");
  }

  @Test
  void aMissingImageOrMachineChangesNothing() throws Exception {
    var image = plugin.run(args("switch", "m1", "debian-13"));
    assertThat(image.exitCode()).as(image.toString()).isEqualTo(4);
    assertThat(image.stderr())
        .isEqualTo("kubectl-boot: bootimage debian-13 not found in namespace default\n");
    assertThat(spec("m1")).containsEntry("imageRef", "debian-12");

    var machine = plugin.run(args("switch", "m9", "busybox"));
    assertThat(machine.exitCode()).as(machine.toString()).isEqualTo(4);
    assertThat(machine.stderr())
        .isEqualTo("kubectl-boot: machineboot m9 not found in namespace default\n");

    var bad = plugin.run(args("switch", "M1;rm", "busybox"));
    assertThat(bad.exitCode()).as(bad.toString()).isEqualTo(2);
    assertThat(bad.stderr()).startsWith("kubectl-boot: machine \"M1;rm\" is not a Kubernetes name");
  }

  @Test
  void returnSetsStateBootstrapAndWaitsForTheBootstrap() throws Exception {
    var run = plugin.start(Map.of(), args("return", "m2", "--wait"));
    await().atMost(AWAIT).until(() -> "Bootstrap".equals(spec("m2").get("state")));
    assertThat(spec("m2")).doesNotContainKey("imageRef");
    long gen = generation("m2");
    await().atMost(AWAIT).until(() -> run.output().contains("Running debian-12"));
    setStatus(
        "m2", status("phase", "Returning", "currentImage", "debian-12", "observedGeneration", gen));
    await().atMost(AWAIT).until(() -> run.output().contains("Returning"));
    setStatus("m2", status("phase", "Bootstrap", "observedGeneration", gen));
    var result = run.await();
    assertThat(result.exitCode()).as(result.toString()).isZero();
    assertThat(result.stdout())
        .contains("machineboot.boot.chrootbooter.io/m2 returning to the bootstrap")
        .containsPattern("m2 is in the bootstrap \\(\\d+\\.\\d s\\)");
  }

  @Test
  void timelineShowsEveryStepOfTheLastSwitchAndTheTotal() throws Exception {
    var none = plugin.run(args("timeline", "m1"));
    assertThat(none.exitCode()).as(none.toString()).isEqualTo(4);
    assertThat(none.stderr())
        .isEqualTo(
            "kubectl-boot: machineboot m1 has no switch recorded yet (status.lastSwitch is empty);"
                + " switch it, or see its boot with --boot\n");

    List<Object[]> steps =
        List.of(
            new Object[] {"return-trigger", "2026-12-07T20:00:00.000Z", 0.01, null},
            new Object[] {"grace", "2026-12-07T20:00:00.010Z", 1.50, null},
            new Object[] {"teardown", "2026-12-07T20:00:01.510Z", 0.40, null},
            new Object[] {"bootstrap-ready", "2026-12-07T20:00:01.910Z", 0.09, null},
            new Object[] {"desired-state", "2026-12-07T20:00:02.000Z", 0.05, null},
            new Object[] {"download", "2026-12-07T20:00:02.050Z", 3.20, "1.00 GiB at 335 MB/s"},
            new Object[] {"verify", "2026-12-07T20:00:05.250Z", 0.80, null},
            new Object[] {"mount", "2026-12-07T20:00:06.050Z", 0.10, null},
            new Object[] {"pivot-root", "2026-12-07T20:00:06.150Z", 0.02, null},
            new Object[] {"init-exec", "2026-12-07T20:00:06.170Z", 0.03, null},
            new Object[] {"healthy", "2026-12-07T20:00:06.200Z", 5.80, null});
    List<Map<String, Object>> stepList =
        steps.stream()
            .map(
                s -> {
                  Map<String, Object> m = new LinkedHashMap<>();
                  m.put("name", s[0]);
                  m.put("at", s[1]);
                  m.put("seconds", s[2]);
                  if (s[3] != null) {
                    m.put("detail", s[3]);
                  }
                  return m;
                })
            .toList();
    Map<String, Object> lastSwitch = new LinkedHashMap<>();
    lastSwitch.put("image", "busybox");
    lastSwitch.put("digest", "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
    lastSwitch.put("trigger", "SpecChange");
    lastSwitch.put("started", "2026-12-07T20:00:00Z");
    lastSwitch.put("seconds", 12.0);
    lastSwitch.put("result", "Succeeded");
    lastSwitch.put("steps", stepList);
    Map<String, Object> history =
        status(
            "image",
            "busybox",
            "trigger",
            "SpecChange",
            "started",
            "2026-12-07T20:00:00Z",
            "seconds",
            12.0,
            "result",
            "Succeeded",
            "stepSeconds",
            Map.of("download", 3.2, "healthy", 5.8, "grace", 1.5));
    setStatus(
        "m1",
        status(
            "phase",
            "Running",
            "currentImage",
            "busybox",
            "observedGeneration",
            generation("m1"),
            "lastSwitch",
            lastSwitch,
            "history",
            List.of(history)));

    var result = plugin.run(args("timeline", "m1"));
    assertThat(result.exitCode()).as(result.toString()).isZero();
    List<String> lines = result.stdout().lines().toList();
    assertThat(lines.get(0))
        .isEqualTo("m1: switch to busybox (sha256 2d711642b726), after a return by SpecChange");
    assertThat(lines.get(1)).isEqualTo("started 2026-12-07T20:00:00Z, Succeeded in 12.00 s");
    assertThat(lines).anyMatch(l -> l.matches("STEP\\s+AT\\s+SECONDS\\s+DETAIL"));
    for (Object[] s : steps) {
      assertThat(lines)
          .as("step %s", s[0])
          .anyMatch(
              l ->
                  l.matches(
                      s[0]
                          + "\\s+\\+\\d+\\.\\d\\d\\s+"
                          + String.format(java.util.Locale.ROOT, "%.2f", (Double) s[2])
                          + ".*"));
    }
    assertThat(lines)
        .anyMatch(l -> l.matches("download\\s+\\+2\\.05\\s+3\\.20\\s+1\\.00 GiB at 335 MB/s"));
    assertThat(lines.get(lines.size() - 1)).matches("total\\s+12\\.00");

    var json = plugin.run(args("timeline", "m1", "-o", "json"));
    assertThat(json.exitCode()).as(json.toString()).isZero();
    assertThat(
            new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(json.stdout())
                .path("steps")
                .size())
        .isEqualTo(steps.size());

    var hist = plugin.run(args("timeline", "m1", "--history"));
    assertThat(hist.exitCode()).as(hist.toString()).isZero();
    assertThat(hist.stdout())
        .containsPattern("STARTED\\s+IMAGE\\s+TRIGGER\\s+RESULT\\s+SECONDS\\s+SLOWEST STEP")
        .containsPattern(
            "2026-12-07T20:00:00Z\\s+busybox\\s+SpecChange\\s+Succeeded\\s+12\\.00\\s+healthy 5\\.80 s");

    var boot = plugin.run(args("timeline", "m1", "--boot"));
    assertThat(boot.exitCode()).as(boot.toString()).isEqualTo(4);
    assertThat(boot.stderr()).contains("has no boot recorded yet (status.lastBoot is empty)");

    // A return on its own, still in progress: no image, no result.
    Map<String, Object> returning =
        status(
            "trigger",
            "Hotkey",
            "started",
            "2026-12-07T20:05:00Z",
            "steps",
            List.of(status("name", "return-trigger", "at", "2026-12-07T20:05:00Z")));
    setStatus(
        "m1",
        status(
            "phase", "Returning", "observedGeneration", generation("m1"), "lastSwitch", returning));
    var back = plugin.run(args("timeline", "m1"));
    assertThat(back.exitCode()).as(back.toString()).isZero();
    List<String> backLines = back.stdout().lines().toList();
    assertThat(backLines.get(0)).isEqualTo("m1: return to the bootstrap, after a return by Hotkey");
    assertThat(backLines.get(1)).isEqualTo("started 2026-12-07T20:05:00Z, in progress");
  }

  @Test
  void testCreatesABootTestAndPrintsEachMachinesResult() throws Exception {
    var run =
        plugin.start(
            Map.of(),
            args(
                "test",
                "busybox",
                "--machines",
                "m1,m2",
                "--name",
                "smoke",
                "--check",
                "healthy=3m",
                "--check",
                "command=uname -r",
                "--check",
                "console-never=Kernel panic|BUG:",
                "--parallelism",
                "2",
                "--wait"));
    Resource<GenericKubernetesResource> bt =
        client.genericKubernetesResources(API, "BootTest").inNamespace("default").withName("smoke");
    await().atMost(AWAIT).until(() -> bt.get() != null);
    @SuppressWarnings("unchecked")
    Map<String, Object> spec = (Map<String, Object>) bt.get().getAdditionalProperties().get("spec");
    assertThat(spec)
        .containsEntry("imageRef", "busybox")
        .containsEntry("parallelism", 2)
        .containsEntry("machines", Map.of("names", List.of("m1", "m2")))
        .containsEntry(
            "checks",
            List.of(
                Map.of("healthy", Map.of("timeout", "3m")),
                Map.of("command", Map.of("run", List.of("/bin/sh", "-c", "uname -r"))),
                Map.of("consoleNever", Map.of("pattern", "Kernel panic|BUG:"))));

    editBootTestStatus(
        bt,
        status(
            "phase",
            "Running",
            "machines",
            List.of(
                status("name", "m1", "phase", "Switching"),
                status("name", "m2", "phase", "Switching"))));
    await().atMost(AWAIT).until(() -> run.output().contains("m2  Switching"));
    editBootTestStatus(
        bt,
        status(
            "phase",
            "Failed",
            "passed",
            1,
            "failed",
            1,
            "machines",
            List.of(
                status(
                    "name",
                    "m1",
                    "phase",
                    "Passed",
                    "checks",
                    List.of(
                        check("healthy", "Passed", 41200, "healthy after 41.2 s"),
                        check("command", "Passed", 300, "exit code 0"),
                        check("consoleNever", "Passed", 42000, null))),
                status(
                    "name",
                    "m2",
                    "phase",
                    "Failed",
                    "message",
                    "check command failed",
                    "checks",
                    List.of(
                        check("healthy", "Passed", 39000, null),
                        check("command", "Failed", 200, "exit code 127: sh: uname: not found"),
                        check("consoleNever", "Skipped", null, null))))));

    var result = run.await();
    assertThat(result.exitCode()).as(result.toString()).isEqualTo(1);
    assertThat(result.stdout())
        .contains("boottest.boot.chrootbooter.io/smoke created")
        .containsPattern("m1  Switching")
        .containsPattern("m1  Passed")
        .containsPattern("m2  Failed  check command failed")
        .containsPattern("MACHINE\\s+CHECK\\s+RESULT\\s+SECONDS\\s+MESSAGE")
        .containsPattern("m1\\s+healthy\\s+Passed\\s+41\\.2\\s+healthy after 41\\.2 s")
        .containsPattern("m2\\s+command\\s+Failed\\s+0\\.2\\s+exit code 127: sh: uname: not found")
        .containsPattern("m2\\s+consoleNever\\s+Skipped")
        .contains(
            "boottest/smoke: Failed (1 passed, 1 failed); JUnit: kubectl boot test-report bt/smoke");
  }

  private static Map<String, Object> check(String name, String result, Integer ms, String message) {
    Map<String, Object> c = new HashMap<>();
    c.put("name", name);
    c.put("result", result);
    if (ms != null) {
      c.put("durationMillis", ms);
    }
    if (message != null) {
      c.put("message", message);
    }
    return c;
  }

  private static void editBootTestStatus(
      Resource<GenericKubernetesResource> bt, Map<String, Object> s) {
    bt.editStatus(
        r -> {
          r.setAdditionalProperty("status", s);
          return r;
        });
  }

  @Test
  void testTakesALabelSelectorAndNamesTheTestItself() throws Exception {
    var result =
        plugin.run(args("test", "busybox", "--machines", "rack=a,env!=prod,tier in (x, y),!old"));
    assertThat(result.exitCode()).as(result.toString()).isZero();
    var created =
        java.util.regex.Pattern.compile(
                "boottest.boot.chrootbooter.io/(busybox-[a-z0-9]{5}) created")
            .matcher(result.stdout());
    assertThat(created.find()).as(result.stdout()).isTrue();
    GenericKubernetesResource bt =
        client
            .genericKubernetesResources(API, "BootTest")
            .inNamespace("default")
            .withName(created.group(1))
            .get();
    @SuppressWarnings("unchecked")
    Map<String, Object> spec = (Map<String, Object>) bt.getAdditionalProperties().get("spec");
    assertThat(spec.get("machines"))
        .isEqualTo(
            Map.of(
                "selector",
                Map.of(
                    "matchLabels", Map.of("rack", "a"),
                    "matchExpressions",
                        List.of(
                            Map.of("key", "env", "operator", "NotIn", "values", List.of("prod")),
                            Map.of("key", "tier", "operator", "In", "values", List.of("x", "y")),
                            Map.of("key", "old", "operator", "DoesNotExist")))));
    assertThat(spec.get("checks")).isEqualTo(List.of(Map.of("healthy", Map.of())));

    // A command runs once the image is healthy: the test gets a healthy check in front.
    var command =
        plugin.run(
            args(
                "test", "busybox", "--machines", "m1", "--name", "cmd", "--check", "command=true"));
    assertThat(command.exitCode()).as(command.toString()).isZero();
    @SuppressWarnings("unchecked")
    Map<String, Object> commandSpec =
        (Map<String, Object>)
            client
                .genericKubernetesResources(API, "BootTest")
                .inNamespace("default")
                .withName("cmd")
                .get()
                .getAdditionalProperties()
                .get("spec");
    assertThat(commandSpec.get("checks"))
        .isEqualTo(
            List.of(
                Map.of("healthy", Map.of()),
                Map.of("command", Map.of("run", List.of("/bin/sh", "-c", "true")))));

    var bad = plugin.run(args("test", "busybox", "--machines", "m1", "--check", "reboot"));
    assertThat(bad.exitCode()).as(bad.toString()).isEqualTo(2);
    assertThat(bad.stderr().lines().toList())
        .containsExactly(
            "kubectl-boot: --check reboot: give healthy[=TIMEOUT], command=CMD,"
                + " console-matches=REGEX, console-never=REGEX or returns=TRIGGER");
  }

  @Test
  void anUnreachableApiIsOneLineAndExitCodeThree() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Path dead = dir.resolve("dead-kubeconfig");
    Files.writeString(dead, Kubeconfig.render("http://127.0.0.1:" + port));
    var result = plugin.run("--kubeconfig", dead.toString(), "timeline", "m1");
    assertThat(result.exitCode()).as(result.toString()).isEqualTo(3);
    assertThat(result.stderr().lines().toList()).hasSize(1);
    assertThat(result.stderr())
        .startsWith("kubectl-boot: cannot reach the Kubernetes API at http://127.0.0.1:" + port);
  }

  @Test
  void usageErrorsAndHelp() throws Exception {
    var help = plugin.run("--help");
    assertThat(help.exitCode()).as(help.toString()).isZero();
    assertThat(help.stdout())
        .contains("Usage: kubectl boot")
        .contains("console", "logs", "timeline", "switch", "return", "test", "test-report")
        .contains("Exit codes:");
    var missing = plugin.run(args("switch", "m1"));
    assertThat(missing.exitCode()).isEqualTo(2);
    assertThat(missing.stderr())
        .startsWith("kubectl-boot: Missing required parameter: 'BOOTIMAGE'");
  }
}
