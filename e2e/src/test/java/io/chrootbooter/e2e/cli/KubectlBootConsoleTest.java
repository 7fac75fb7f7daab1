package io.chrootbooter.e2e.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.e2e.apiserver.EmbeddedApiServer;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kubectl boot logs}, {@code console} and {@code test-report} against {@link
 * OperatorConsolePeer}, the peer of the operator's console contract on loopback, with the
 * kubeconfig's cluster the lab's embedded API: the user's bearer token goes with every request,
 * refusals are one line with exit code 3, the console's bytes pass both ways, {@code ~.} detaches,
 * and the terminal (a real pty, through {@code script}) is raw while attached and restored after.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class KubectlBootConsoleTest {

  private static final Duration AWAIT = Duration.ofSeconds(30);

  private EmbeddedApiServer server;
  private OperatorConsolePeer peer;
  private Plugin plugin;
  private Path admin;
  private Path viewer;
  private Path anonymous;
  private Path dir;

  @BeforeAll
  void start(@TempDir Path dir) throws Exception {
    this.dir = dir;
    if (Plugin.missing() != null) {
      return; // each test skips, in requirePlugin()
    }
    anonymous = dir.resolve("kubeconfig");
    server =
        EmbeddedApiServer.start(
            new EmbeddedApiServer.Options(
                0, "127.0.0.1", Optional.of(anonymous), Optional.empty()));
    // The embedded API writes its own token for its user; these tests' user has none.
    Files.writeString(
        anonymous, Files.readString(anonymous).replaceAll("(?m)^  user: \\{.*\\}$", "  user: {}"));
    admin = withToken(dir.resolve("admin.kubeconfig"), OperatorConsolePeer.ADMIN_TOKEN);
    viewer = withToken(dir.resolve("viewer.kubeconfig"), OperatorConsolePeer.VIEWER_TOKEN);
    peer = new OperatorConsolePeer();
    plugin = Plugin.mainClass(Files.createDirectories(dir.resolve("home")));
  }

  private Path withToken(Path file, String token) throws Exception {
    // The embedded API's kubeconfig carries its own token for its user: this one replaces it.
    String text =
        Files.readString(anonymous)
            .replaceAll("(?m)^  user: \\{.*\\}$", "  user:\n    token: " + token);
    assertThat(text).contains("token: " + token);
    return Files.writeString(file, text);
  }

  @BeforeEach
  void requirePlugin() {
    Assumptions.assumeTrue(Plugin.missing() == null, Plugin.missing());
  }

  @AfterAll
  void stop() throws Exception {
    try {
      if (plugin != null) {
        plugin.close();
      }
      if (peer != null) {
        peer.close();
      }
    } finally {
      if (server != null) {
        server.close();
      }
    }
  }

  private String[] args(Path kubeconfig, String... args) {
    String[] all = new String[args.length + 4];
    all[0] = "--kubeconfig";
    all[1] = kubeconfig.toString();
    all[2] = "--operator";
    all[3] = peer.url();
    System.arraycopy(args, 0, all, 4, args.length);
    return all;
  }

  @Test
  void logsPrintTheRecordedConsoleWithTheUsersToken() throws Exception {
    var current = plugin.run(args(admin, "logs", "m1"));
    assertThat(current.exitCode()).as(current.toString()).isZero();
    assertThat(current.stdout()).isEqualTo(OperatorConsolePeer.CURRENT);
    assertThat(peer.authorizations)
        .containsEntry("/machines/default/m1/console", "Bearer " + OperatorConsolePeer.ADMIN_TOKEN);

    var previous = plugin.run(args(viewer, "logs", "m1", "--previous"));
    assertThat(previous.exitCode()).as(previous.toString()).isZero();
    assertThat(previous.stdout())
        .isEqualTo(OperatorConsolePeer.PREVIOUS)
        .endsWith("reboot: Power down\r\n");

    var follow = plugin.run(args(admin, "logs", "m1", "-f"));
    assertThat(follow.exitCode()).as(follow.toString()).isZero();
    assertThat(follow.stdout())
        .isEqualTo(OperatorConsolePeer.CURRENT + "root\r\nPassword: \r\nreboot: Power down\r\n");
  }

  @Test
  void anExecCredentialPluginsTokenIsSent() throws Exception {
    // A kubeconfig user whose token comes from an exec plugin, as cloud providers' do.
    Path plugin = dir.resolve("credential-plugin");
    Files.writeString(
        plugin,
        "#!/bin/sh\n"
            + "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
            + "\"kind\":\"ExecCredential\",\"status\":{\"token\":\""
            + OperatorConsolePeer.ADMIN_TOKEN
            + "\"}}'\n");
    assertThat(plugin.toFile().setExecutable(true)).isTrue();
    String text =
        Files.readString(anonymous)
            .replace(
                "user: {}",
                "user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                    + "      command: "
                    + plugin
                    + "\n      interactiveMode: Never");
    Path exec = Files.writeString(dir.resolve("exec.kubeconfig"), text);
    var result = this.plugin.run(args(exec, "logs", "m1", "--previous"));
    assertThat(result.exitCode()).as(result.toString()).isZero();
    assertThat(result.stdout()).isEqualTo(OperatorConsolePeer.PREVIOUS);
    assertThat(result.stderr()).doesNotContain(OperatorConsolePeer.ADMIN_TOKEN);
  }

  @Test
  void theNamespaceAndContextAreKubectls() throws Exception {
    var ns = this.plugin.run(args(admin, "-n", "lab", "logs", "m1"));
    assertThat(ns.exitCode()).as(ns.toString()).isEqualTo(4);
    assertThat(peer.authorizations).containsKey("/machines/lab/m1/console");
    var context = this.plugin.run(args(admin, "--context", "elsewhere", "logs", "m1"));
    assertThat(context.exitCode()).as(context.toString()).isEqualTo(2);
    assertThat(context.stderr())
        .isEqualTo("kubectl-boot: --context elsewhere: no such context in the kubeconfig\n");
  }

  @Test
  void theOperatorsUrlMayComeFromTheEnvironment() throws Exception {
    var result =
        plugin.run(
            Map.of("KUBECTL_BOOT_OPERATOR", peer.url()),
            "--kubeconfig",
            admin.toString(),
            "logs",
            "m1");
    assertThat(result.exitCode()).as(result.toString()).isZero();
    assertThat(result.stdout()).isEqualTo(OperatorConsolePeer.CURRENT);
  }

  @Test
  void refusalsAreOneLineWithoutConsoleBytesOrTheToken() throws Exception {
    var none = plugin.run(args(anonymous, "logs", "m1"));
    assertThat(none.exitCode()).as(none.toString()).isEqualTo(3);
    assertThat(none.stdout()).isEmpty();
    assertThat(none.stderr().lines().toList())
        .containsExactly(
            "kubectl-boot: the operator refused the credential: no bearer token: log in with a"
                + " kubeconfig that has one (the kubeconfig's user has no bearer token; a client"
                + " certificate is not passed on to the operator)");

    Path wrong = withToken(dir.resolve("wrong.kubeconfig"), "tok-stolen-0000");
    var bad = plugin.run(args(wrong, "logs", "m1"));
    assertThat(bad.exitCode()).as(bad.toString()).isEqualTo(3);
    assertThat(bad.stdout()).isEmpty();
    assertThat(bad.stderr())
        .isEqualTo(
            "kubectl-boot: the operator refused the credential: the token is not valid"
                + " (TokenReview: not authenticated)\n")
        .doesNotContain("tok-stolen-0000");

    var attach = plugin.start(Map.of(), args(viewer, "console", "m1"));
    var refused = attach.await();
    assertThat(refused.exitCode()).as(refused.toString()).isEqualTo(3);
    assertThat(refused.stdout()).isEmpty();
    assertThat(refused.stderr())
        .isEqualTo(
            "kubectl-boot: not allowed: user viewer may not create machineboots/console in"
                + " namespace default\n");

    var missing = plugin.run(args(admin, "logs", "m9"));
    assertThat(missing.exitCode()).as(missing.toString()).isEqualTo(4);
    assertThat(missing.stderr())
        .isEqualTo("kubectl-boot: no such thing here: /machines/default/m9/console\n");
  }

  @Test
  void testReportPrintsTheJunitXml() throws Exception {
    var report = plugin.run(args(admin, "test-report", "bt/debian-smoke"));
    assertThat(report.exitCode()).as(report.toString()).isZero();
    assertThat(report.stdout()).isEqualTo(OperatorConsolePeer.JUNIT);

    var missing = plugin.run(args(admin, "test-report", "boottest/nope"));
    assertThat(missing.exitCode()).as(missing.toString()).isEqualTo(4);

    var wrongKind = plugin.run(args(admin, "test-report", "pod/x"));
    assertThat(wrongKind.exitCode()).as(wrongKind.toString()).isEqualTo(2);
    assertThat(wrongKind.stderr()).isEqualTo("kubectl-boot: pod/x: give a BootTest as bt/NAME\n");
  }

  @Test
  void consoleTypesAndReadsTheAnswerThenTheEndOfInputDetaches() throws Exception {
    var run = plugin.start(Map.of(), args(admin, "console", "m1"));
    await().atMost(AWAIT).until(() -> run.output().contains("root@m1:~# "));
    run.stdin().write("uname -r\r".getBytes(StandardCharsets.UTF_8));
    run.stdin().close();
    var result = run.await();
    assertThat(result.exitCode()).as(result.toString()).isZero();
    assertThat(result.stdout()).contains("uname -r\r\n" + OperatorConsolePeer.KERNEL + "\r\n");
    await().atMost(AWAIT).until(() -> peer.lastTyped().equals("uname -r\r"));
    assertThat(result.stderr())
        .contains("Attached to the console of m1; ~. detaches")
        .contains("Detached from the console of m1.");
    await().atMost(AWAIT).until(() -> peer.attachEnded);
  }

  @Test
  void tildeDotAtTheStartOfALineDetaches() throws Exception {
    var run = plugin.start(Map.of(), args(admin, "console", "m1"));
    await().atMost(AWAIT).until(() -> run.output().contains("root@m1:~# "));
    OutputStream keys = run.stdin();
    keys.write("echo a~.b\r~~x\r~.never sent\r".getBytes(StandardCharsets.UTF_8));
    keys.flush();
    var result = run.await();
    assertThat(result.exitCode()).as(result.toString()).isZero();
    await().atMost(AWAIT).until(() -> peer.lastTyped().equals("echo a~.b\r~x\r"));
    Thread.sleep(300); // nothing after the ~. follows late
    assertThat(peer.lastTyped()).isEqualTo("echo a~.b\r~x\r");
    assertThat(result.stderr()).contains("Detached from the console of m1.");
  }

  @Test
  void theConsoleEndingOrAbsentSaysSo() throws Exception {
    var run = plugin.start(Map.of(), args(admin, "console", "m1"));
    await().atMost(AWAIT).until(() -> run.output().contains("root@m1:~# "));
    run.stdin().write("poweroff\r".getBytes(StandardCharsets.UTF_8));
    run.stdin().flush();
    var ended = run.await();
    assertThat(ended.exitCode()).as(ended.toString()).isZero();
    assertThat(ended.stderr()).contains("The console of m1 closed: the target ended");

    var absent = plugin.start(Map.of(), args(admin, "console", "m2")).await();
    assertThat(absent.exitCode()).as(absent.toString()).isEqualTo(1);
    assertThat(absent.stderr()).endsWith("kubectl-boot: machine m2 is not running a target\n");
  }

  @Test
  void theTerminalIsRawWhileAttachedAndRestoredOnEveryExit() throws Exception {
    Path script = Path.of("/usr/bin/script");
    Assumptions.assumeTrue(
        Files.isExecutable(script),
        "no /usr/bin/script (util-linux) to give the plugin a pseudo-terminal; skipped");
    Path cpFile = Plugin.REPO.resolve("cli/target/cli-classpath.txt");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String cp = Plugin.REPO.resolve("cli/target/classes") + ":" + Files.readString(cpFile).strip();
    for (String exit : List.of("detach", "remote-close")) {
      Path before = dir.resolve(exit + ".before");
      Path after = dir.resolve(exit + ".after");
      String plugin =
          String.join(
              " ",
              q(java),
              "-cp",
              q(cp),
              "io.chrootbooter.cli.KubectlBoot",
              "--kubeconfig",
              q(admin.toString()),
              "--operator",
              q(peer.url()),
              "console",
              "m1");
      String shell =
          "stty -g > "
              + q(before.toString())
              + "; "
              + plugin
              + "; echo plugin-exit=$?; stty -g > "
              + q(after.toString());
      Process p =
          new ProcessBuilder(script.toString(), "-q", "-e", "-c", shell, "/dev/null")
              .redirectErrorStream(true)
              .redirectOutput(dir.resolve(exit + ".out").toFile())
              .start();
      try {
        Path out = dir.resolve(exit + ".out");
        // The notice comes once the terminal is raw.
        await()
            .atMost(AWAIT)
            .until(
                () ->
                    Files.readString(out).contains("root@m1:~# ")
                        && Files.readString(out).contains("~. detaches"));
        // Raw mode: the CR typed reaches the console as CR (a cooked pty would turn it into LF,
        // and echo it locally).
        p.getOutputStream().write("uname -r\r".getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().flush();
        await()
            .atMost(AWAIT)
            .until(() -> Files.readString(out).contains(OperatorConsolePeer.KERNEL));
        await().atMost(AWAIT).until(() -> peer.lastTyped().endsWith("uname -r\r"));
        assertThat(peer.lastTyped()).isEqualTo("uname -r\r");
        p.getOutputStream()
            .write((exit.equals("detach") ? "~." : "poweroff\r").getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().flush();
        await().atMost(AWAIT).until(() -> Files.exists(after) && Files.size(after) > 0);
        assertThat(Files.readString(out)).contains("plugin-exit=0");
        assertThat(Files.readString(after))
            .as("stty settings after a " + exit)
            .isEqualTo(Files.readString(before));
      } finally {
        p.getOutputStream().close();
        if (!p.waitFor(10, TimeUnit.SECONDS)) {
          p.destroyForcibly().waitFor();
        }
      }
    }
  }

  @Test
  void theOperatorIsFoundThroughItsAdminService() throws Exception {
    try (KubernetesClient client =
        new KubernetesClientBuilder()
            .withConfig(Config.fromKubeconfig(Files.readString(anonymous)))
            .build()) {
      var none = plugin.run("--kubeconfig", admin.toString(), "logs", "m1");
      assertThat(none.exitCode()).as(none.toString()).isEqualTo(3);
      assertThat(none.stderr())
          .isEqualTo(
              "kubectl-boot: no operator found: no Service labelled"
                  + " app.kubernetes.io/part-of=chrootbooter with a port named admin in namespace"
                  + " default (or any namespace you may list); give --operator URL,"
                  + " KUBECTL_BOOT_OPERATOR=URL or --operator-service NAMESPACE/NAME\n");

      // As the chart makes them: a Service with a port named admin, and the operator's pod.
      Map<String, String> selector =
          Map.of(
              "app.kubernetes.io/name",
              "chrootbooter-operator",
              "app.kubernetes.io/instance",
              "cb");
      client
          .services()
          .inNamespace("chrootbooter")
          .resource(
              new ServiceBuilder()
                  .withNewMetadata()
                  .withName("cb-chrootbooter-admin")
                  .withLabels(Map.of("app.kubernetes.io/part-of", "chrootbooter"))
                  .endMetadata()
                  .withNewSpec()
                  .withSelector(selector)
                  .addNewPort()
                  .withName("admin")
                  .withPort(9000)
                  .withTargetPort(new IntOrString("admin"))
                  .endPort()
                  .endSpec()
                  .build())
          .create();
      client
          .pods()
          .inNamespace("chrootbooter")
          .resource(
              new PodBuilder()
                  .withNewMetadata()
                  .withName("cb-chrootbooter-7d9f-abcde")
                  .withLabels(selector)
                  .endMetadata()
                  .withNewSpec()
                  .addNewContainer()
                  .withName("operator")
                  .withImage("chrootbooter-operator")
                  .addNewPort()
                  .withName("admin")
                  .withContainerPort(9100)
                  .endPort()
                  .endContainer()
                  .endSpec()
                  .withNewStatus()
                  .withPhase("Running")
                  .addNewCondition()
                  .withType("Ready")
                  .withStatus("True")
                  .endCondition()
                  .endStatus()
                  .build())
          .create();
      // Outside a cluster the plugin port-forwards to the ready pod's admin port (the embedded
      // API has no port-forward: the error names the way it tried).
      var forwarded = plugin.run("--kubeconfig", admin.toString(), "logs", "m1");
      assertThat(forwarded.exitCode()).as(forwarded.toString()).isEqualTo(3);
      assertThat(forwarded.stderr().lines().toList()).hasSize(1);
      assertThat(forwarded.stderr())
          .contains("(a port-forward to pod chrootbooter/cb-chrootbooter-7d9f-abcde port 9100)");

      client
          .services()
          .inNamespace("lab")
          .resource(
              new ServiceBuilder()
                  .withNewMetadata()
                  .withName("other-admin")
                  .withLabels(Map.of("app.kubernetes.io/part-of", "chrootbooter"))
                  .endMetadata()
                  .withNewSpec()
                  .addNewPort()
                  .withName("admin")
                  .withPort(9000)
                  .endPort()
                  .endSpec()
                  .build())
          .create();
      var several = plugin.run("--kubeconfig", admin.toString(), "logs", "m1");
      assertThat(several.exitCode()).as(several.toString()).isEqualTo(2);
      assertThat(several.stderr())
          .contains("several operators found (")
          .contains("chrootbooter/cb-chrootbooter-admin")
          .contains("lab/other-admin")
          .contains("choose one with --operator-service NAMESPACE/NAME");
    }
  }

  private static String q(String s) {
    return "'" + s.replace("'", "'\\''") + "'";
  }
}
