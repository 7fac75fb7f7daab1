package io.chrootbooter.e2e.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.e2e.apiserver.EmbeddedApiServer;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
 * The one file users install, {@code cli/target/kubectl-boot}: it runs by itself, and kubectl finds
 * it on the PATH as the plugin {@code kubectl boot}. Needs the file (the cli module's {@code
 * package}) and a kubectl: {@code CB_KUBECTL} (default {@code /usr/bin/kubectl}) and Debian's 1.20
 * ({@code CB_KUBECTL_DEBIAN}, default {@code /opt/kubectl-debian/usr/bin/kubectl}), each where
 * present; skips without.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class KubectlPluginFileTest {

  private Path dir;
  private Path kubectl;
  private Path debianKubectl;
  private EmbeddedApiServer server;
  private Path kubeconfig;

  @BeforeAll
  void start(@TempDir Path dir) throws Exception {
    this.dir = dir;
    String configured = System.getProperty("CB_KUBECTL", System.getenv("CB_KUBECTL"));
    kubectl = Path.of(configured == null || configured.isBlank() ? "/usr/bin/kubectl" : configured);
    String debian = System.getProperty("CB_KUBECTL_DEBIAN", System.getenv("CB_KUBECTL_DEBIAN"));
    debianKubectl =
        Path.of(
            debian == null || debian.isBlank() ? "/opt/kubectl-debian/usr/bin/kubectl" : debian);
    if (!Files.isExecutable(Plugin.FILE)) {
      return;
    }
    kubeconfig = dir.resolve("kubeconfig");
    server =
        EmbeddedApiServer.start(
            new EmbeddedApiServer.Options(
                0, "127.0.0.1", Optional.of(kubeconfig), Optional.of(Plugin.REPO.resolve("crds"))));
    try (KubernetesClient client =
        new KubernetesClientBuilder()
            .withConfig(Config.fromKubeconfig(Files.readString(kubeconfig)))
            .build()) {
      try (var in = Files.newInputStream(Plugin.REPO.resolve("examples/machineboot-m1.yaml"))) {
        client.load(in).items().forEach(i -> client.resource(i).inNamespace("default").create());
      }
    }
  }

  @BeforeEach
  void requireFile() {
    Assumptions.assumeTrue(
        Files.isExecutable(Plugin.FILE),
        Plugin.FILE + " is not built; skipped. Build it: mvn -pl cli -am package -DskipTests");
  }

  @AfterAll
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  record Run(int exit, String out, long millis) {}

  private Run run(Map<String, String> env, String... command)
      throws IOException, InterruptedException {
    Path out = Files.createTempFile(dir, "run", ".out");
    ProcessBuilder pb =
        new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile());
    pb.environment().remove("KUBECONFIG");
    pb.environment().put("HOME", dir.toString());
    pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
    pb.environment().putAll(env);
    long start = System.nanoTime();
    Process p = pb.start();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly().waitFor();
      throw new AssertionError(String.join(" ", command) + " ran longer than 60 s");
    }
    return new Run(p.exitValue(), Files.readString(out), (System.nanoTime() - start) / 1_000_000);
  }

  @Test
  void theFileRunsByItselfAndStartsQuickly() throws Exception {
    assertThat(Files.readString(Plugin.FILE, java.nio.charset.StandardCharsets.ISO_8859_1))
        .startsWith("#!/bin/sh\n");
    run(Map.of(), Plugin.FILE.toString(), "--help"); // warm the page cache
    List<Long> times = new ArrayList<>();
    Run help = null;
    for (int i = 0; i < 3; i++) {
      help = run(Map.of(), Plugin.FILE.toString(), "--help");
      times.add(help.millis());
    }
    assertThat(help.exit()).as(help.out()).isZero();
    assertThat(help.out()).contains("Usage: kubectl boot").contains("Exit codes:");
    long best = times.stream().min(Long::compare).orElseThrow();
    System.out.println("RESULT kubectl_boot_help_ms " + best + " ms");
    var version = run(Map.of(), Plugin.FILE.toString(), "--version");
    assertThat(version.out()).startsWith("kubectl-boot ");
  }

  @Test
  void kubectlFindsThePluginOnThePath() throws Exception {
    List<Path> kubectls = new ArrayList<>();
    for (Path k : List.of(kubectl, debianKubectl)) {
      if (Files.isExecutable(k)) {
        kubectls.add(k);
      }
    }
    Assumptions.assumeFalse(
        kubectls.isEmpty(),
        "no executable kubectl at "
            + kubectl
            + " or "
            + debianKubectl
            + "; skipped. Install kubectl or point CB_KUBECTL (or CB_KUBECTL_DEBIAN) at one.");
    Path bin = Files.createDirectories(dir.resolve("bin"));
    Path installed = bin.resolve("kubectl-boot");
    Files.copy(Plugin.FILE, installed, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    assertThat(installed.toFile().setExecutable(true)).isTrue();
    Map<String, String> env = Map.of("PATH", bin + ":" + System.getenv("PATH"));

    for (Path k : kubectls) {
      var list = run(env, k.toString(), "plugin", "list");
      assertThat(list.out()).as(k.toString()).contains(installed.toString());

      var help = run(env, k.toString(), "boot", "--help");
      assertThat(help.exit()).as(k + "\n" + help.out()).isZero();
      assertThat(help.out()).contains("Usage: kubectl boot");

      var timeline =
          run(env, k.toString(), "boot", "timeline", "m1", "--kubeconfig", kubeconfig.toString());
      assertThat(timeline.exit()).as(k + "\n" + timeline.out()).isEqualTo(4);
      assertThat(timeline.out())
          .isEqualTo(
              "kubectl-boot: machineboot m1 has no switch recorded yet (status.lastSwitch is"
                  + " empty); switch it, or see its boot with --boot\n");
    }
  }
}
