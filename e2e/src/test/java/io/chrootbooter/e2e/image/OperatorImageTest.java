package io.chrootbooter.e2e.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.chrootbooter.e2e.apiserver.EmbeddedApiServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The operator image that {@code mvn -pl operator -am package -Pimage} writes to {@code
 * operator/target/chrootbooter-operator-image.tar} (a {@code docker save} archive): what {@code
 * docker load} checks and what a container runtime runs — the entrypoint, a non-root user, the
 * layers holding the runtime and the application — and, as root, the image's own runtime starting
 * the operator from the unpacked layers (chroot, with its own /proc) against the embedded API.
 */
class OperatorImageTest {
  private static final Path REPO =
      Path.of(System.getProperty("cb.repo.dir", "..")).toAbsolutePath().normalize();
  private static final Path IMAGE = REPO.resolve("operator/target/chrootbooter-operator-image.tar");
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;
  static Path archive;
  static Path rootfs;
  static JsonNode manifest;
  static JsonNode config;

  @BeforeAll
  static void unpack() throws Exception {
    assumeTrue(
        Files.isRegularFile(IMAGE),
        () ->
            "no operator image at "
                + IMAGE
                + "; build it: mvn -B -pl operator -am package -DskipTests -Pimage");
    archive = Files.createDirectories(dir.resolve("archive"));
    run(List.of("tar", "-xf", IMAGE.toString(), "-C", archive.toString()));
    manifest = JSON.readTree(archive.resolve("manifest.json").toFile()).get(0);
    config = JSON.readTree(archive.resolve(manifest.path("Config").asText()).toFile());
    rootfs = Files.createDirectories(dir.resolve("rootfs"));
    for (JsonNode layer : manifest.path("Layers")) {
      run(
          List.of(
              "tar", "-xf", archive.resolve(layer.asText()).toString(), "-C", rootfs.toString()));
    }
  }

  @Test
  void theArchiveIsWhatDockerLoadExpects() throws Exception {
    assertThat(manifest.path("RepoTags").get(0).asText())
        .matches("chrootbooter/chrootbooter-operator:.+");
    assertThat(config.path("os").asText()).isEqualTo("linux");
    assertThat(config.path("architecture").asText()).isEqualTo("amd64");
    // docker load refuses an archive whose layers do not hash to the config's diff_ids.
    List<String> diffIds = new ArrayList<>();
    for (JsonNode layer : manifest.path("Layers")) {
      diffIds.add("sha256:" + uncompressedSha256(archive.resolve(layer.asText())));
    }
    List<String> declared = new ArrayList<>();
    config.at("/rootfs/diff_ids").forEach(d -> declared.add(d.asText()));
    assertThat(diffIds).isEqualTo(declared).hasSizeGreaterThanOrEqualTo(2);
  }

  @Test
  void skopeoReadsAndCopiesIt() throws Exception {
    Path skopeo = Path.of("/usr/bin/skopeo");
    assumeTrue(Files.isExecutable(skopeo), "skopeo is not installed (apt-get install skopeo)");
    Process inspect =
        new ProcessBuilder(skopeo.toString(), "inspect", "--config", "docker-archive:" + IMAGE)
            .redirectErrorStream(true)
            .start();
    String out = new String(inspect.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(inspect.waitFor()).as(out).isZero();
    JsonNode seen = JSON.readTree(out);
    assertThat(seen.at("/config/User").asText()).isEqualTo("185");
    assertThat(strings(seen.at("/config/Entrypoint"))).endsWith("/deployments/quarkus-run.jar");
    // A copy verifies every layer against its digest, as a push to a registry would.
    Path oci = dir.resolve("oci");
    run(
        List.of(
            skopeo.toString(),
            "copy",
            "docker-archive:" + IMAGE,
            "oci:" + oci + ":chrootbooter-operator"));
    assertThat(oci.resolve("index.json")).content().contains("chrootbooter-operator");
  }

  @Test
  void itRunsTheOperatorOnItsOwnRuntimeAsANonRootUser() {
    JsonNode c = config.path("config");
    List<String> entrypoint = strings(c.path("Entrypoint"));
    assertThat(entrypoint)
        .startsWith("/opt/java/bin/java")
        .endsWith("-jar", "/deployments/quarkus-run.jar");
    String user = c.path("User").asText();
    assertThat(user).isNotBlank().doesNotStartWith("0").isNotEqualTo("root");
    assertThat(user.split(":")[0]).isEqualTo("185");
    assertThat(c.path("ExposedPorts").has("8080/tcp")).as("the machine port").isTrue();
    assertThat(c.path("ExposedPorts").has("9000/tcp")).as("the admin port").isTrue();

    assertThat(rootfs.resolve("opt/java/bin/java")).isExecutable();
    assertThat(rootfs.resolve("lib64/ld-linux-x86-64.so.2")).exists();
    assertThat(rootfs.resolve("deployments/quarkus-run.jar")).isRegularFile();
    assertThat(rootfs.resolve("deployments/lib/main"))
        .isDirectoryContaining("glob:**chrootbooter-crds-*.jar");
    assertThat(rootfs.resolve("deployments/app"))
        .isDirectoryContaining("glob:**chrootbooter-operator-*.jar");
    assertThat(rootfs.resolve("etc/passwd")).content().contains(":185:185:");
  }

  @Test
  void theImageStartsTheOperatorAgainstAnApiServer() throws Exception {
    assumeTrue(
        "root".equals(System.getProperty("user.name")),
        "starting the image's runtime needs chroot and a /proc of its own: run as root");
    assumeTrue(
        Files.isExecutable(Path.of("/usr/bin/unshare"))
            && Files.isExecutable(Path.of("/usr/sbin/chroot")),
        "needs unshare and chroot (util-linux, coreutils)");
    int port = freePort();
    int adminPort = freePort();
    Path log = dir.resolve("operator.log");
    try (EmbeddedApiServer api =
        EmbeddedApiServer.start(
            new EmbeddedApiServer.Options(
                0, "127.0.0.1", Optional.empty(), Optional.of(REPO.resolve("crds"))))) {
      List<String> command = new ArrayList<>();
      // A PID and mount namespace of its own: /proc (ld.so resolves $ORIGIN through it) is
      // mounted there and goes away with the namespace; --kill-child ends the operator with us.
      command.addAll(
          List.of(
              "/usr/bin/unshare",
              "--mount",
              "--pid",
              "--fork",
              "--kill-child",
              "--mount-proc=" + rootfs.resolve("proc"),
              "/usr/sbin/chroot",
              "--userspec=" + config.at("/config/User").asText(),
              rootfs.toString()));
      command.addAll(strings(config.at("/config/Entrypoint")));
      ProcessBuilder builder =
          new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
      builder.environment().clear();
      // How the Helm chart passes settings: environment variables and JAVA_TOOL_OPTIONS.
      builder.environment().put("JAVA_TOOL_OPTIONS", "-Xmx256m -XX:+UseSerialGC");
      builder.environment().put("QUARKUS_HTTP_HOST", "127.0.0.1");
      builder.environment().put("QUARKUS_HTTP_PORT", Integer.toString(port));
      builder.environment().put("QUARKUS_MANAGEMENT_HOST", "127.0.0.1");
      builder.environment().put("QUARKUS_MANAGEMENT_PORT", Integer.toString(adminPort));
      builder.environment().put("QUARKUS_KUBERNETES_CLIENT_API_SERVER_URL", api.url());
      builder.environment().put("QUARKUS_KUBERNETES_CLIENT_NAMESPACE", "default");
      builder.environment().put("CB_STORE_PATH", "/tmp/store");
      builder.environment().put("CB_BOOTSTRAP_DIR", "/tmp/bootstrap");
      Process operator = builder.start();
      try {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        await("the operator in the image ready on admin port " + adminPort)
            .atMost(Duration.ofSeconds(120))
            .pollInterval(Duration.ofMillis(500))
            .until(
                () -> {
                  assertThat(operator.isAlive())
                      .as("operator alive; its log:\n%s", tail(log))
                      .isTrue();
                  try {
                    return http.send(
                                HttpRequest.newBuilder(
                                        URI.create(
                                            "http://127.0.0.1:" + adminPort + "/q/health/ready"))
                                    .build(),
                                HttpResponse.BodyHandlers.discarding())
                            .statusCode()
                        == 200;
                  } catch (IOException e) {
                    return false;
                  }
                });
        String metrics =
            http.send(
                    HttpRequest.newBuilder(
                            URI.create("http://127.0.0.1:" + adminPort + "/q/metrics"))
                        .build(),
                    HttpResponse.BodyHandlers.ofString())
                .body();
        assertThat(metrics).contains("chrootbooter_leader 1.0");
        assertThat(
                http.send(
                        HttpRequest.newBuilder(
                                URI.create("http://127.0.0.1:" + port + "/q/metrics"))
                            .build(),
                        HttpResponse.BodyHandlers.discarding())
                    .statusCode())
            .as("no metrics on the machine port")
            .isEqualTo(404);
        assertThat(tail(log)).contains("chrootbooter-operator");
      } finally {
        // The JVM runs as the image's user: the credential change cleared the parent-death
        // signal --kill-child set, so it is ended here, by its handle, before unshare.
        List<ProcessHandle> inside = operator.descendants().toList();
        inside.forEach(ProcessHandle::destroy);
        operator.destroy();
        if (!operator.waitFor(20, TimeUnit.SECONDS)) {
          operator.destroyForcibly();
          operator.waitFor(10, TimeUnit.SECONDS);
        }
        for (ProcessHandle p : inside) {
          try {
            p.onExit().get(20, TimeUnit.SECONDS);
          } catch (java.util.concurrent.TimeoutException e) {
            p.destroyForcibly();
          }
        }
      }
    }
  }

  private static String uncompressedSha256(Path layer) throws Exception {
    MessageDigest sha = MessageDigest.getInstance("SHA-256");
    try (InputStream raw = Files.newInputStream(layer);
        InputStream in = gunzipIfCompressed(raw);
        DigestInputStream digest = new DigestInputStream(in, sha)) {
      digest.transferTo(java.io.OutputStream.nullOutputStream());
    }
    return HexFormat.of().formatHex(sha.digest());
  }

  private static InputStream gunzipIfCompressed(InputStream raw) throws IOException {
    InputStream in = new java.io.BufferedInputStream(raw);
    in.mark(2);
    int b1 = in.read();
    int b2 = in.read();
    in.reset();
    return b1 == 0x1f && b2 == 0x8b ? new GZIPInputStream(in) : in;
  }

  private static List<String> strings(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }

  private static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void run(List<String> command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor()).as("%s: %s", command, out).isZero();
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }
}
