package io.chrootbooter.e2e.protocol;

import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.ProcessBuilder.Redirect;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.awaitility.core.ConditionTimeoutException;

/**
 * The operator as users run it ({@code java -jar quarkus-run.jar}), as a child process on fixed
 * loopback ports (the machine port and the admin port) against the embedded API server, so that it
 * can be killed and started again on the same URLs. Its output is appended to one log file across
 * restarts.
 */
final class OperatorProcess implements AutoCloseable {
  private static final Duration START = Duration.ofSeconds(90);

  private final List<String> command;
  private final Path dir;
  private final Path log;
  private final int port;
  private final int adminPort;
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
  private Process process;

  private OperatorProcess(List<String> command, Path dir, Path log, int port, int adminPort) {
    this.command = command;
    this.dir = dir;
    this.log = log;
    this.port = port;
    this.adminPort = adminPort;
  }

  /**
   * Starts the operator and waits until it is ready.
   *
   * @param jar {@code operator/target/quarkus-app/quarkus-run.jar}
   * @param apiServer the Kubernetes API's URL
   * @param dir where the image store, the (empty) bootstrap folder and the log go
   */
  static OperatorProcess start(Path jar, String apiServer, Path dir)
      throws IOException, InterruptedException {
    return start(jar, apiServer, dir, List.of());
  }

  /**
   * Starts the operator with extra system properties ({@code -Dkey=value}, after the defaults, so
   * they win), and waits until it is ready.
   */
  static OperatorProcess start(Path jar, String apiServer, Path dir, List<String> properties)
      throws IOException, InterruptedException {
    int port = freePort();
    int adminPort = freePort();
    String url = "http://127.0.0.1:" + port;
    Files.createDirectories(dir.resolve("store"));
    Files.createDirectories(dir.resolve("bootstrap"));
    List<String> command =
        List.of(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-Dquarkus.http.host=127.0.0.1",
            "-Dquarkus.http.port=" + port,
            "-Dquarkus.management.host=127.0.0.1",
            "-Dquarkus.management.port=" + adminPort,
            "-Dquarkus.kubernetes-client.api-server-url=" + apiServer,
            "-Dquarkus.kubernetes-client.namespace=default",
            "-Dcb.public-url=" + url,
            // Where other replicas forward a console attach or read whose machine this one holds.
            "-Dcb.replica.admin-url=http://127.0.0.1:" + adminPort,
            "-Dcb.store.path=" + dir.resolve("store"),
            // ImageFiles serves the images on loopback, which image sources may not use unless
            // allowed.
            "-Dcb.store.allowed-sources=127.0.0.1/32",
            "-Dcb.bootstrap.dir=" + dir.resolve("bootstrap"));
    command = new java.util.ArrayList<>(command);
    command.addAll(properties);
    command.addAll(List.of("-jar", jar.toString()));
    OperatorProcess operator =
        new OperatorProcess(command, dir, dir.resolve("operator.log"), port, adminPort);
    try {
      operator.start();
    } catch (IOException | RuntimeException | AssertionError e) {
      operator.close();
      throw e;
    }
    return operator;
  }

  /** Starts the process (again, after {@link #kill()}) and waits until it is ready. */
  void start() throws IOException {
    if (process != null && process.isAlive()) {
      throw new IllegalStateException("the operator is already running");
    }
    Files.writeString(
        log,
        "---- starting the operator on " + url() + "\n",
        StandardCharsets.UTF_8,
        java.nio.file.StandardOpenOption.CREATE,
        java.nio.file.StandardOpenOption.APPEND);
    ProcessBuilder builder =
        new ProcessBuilder(command)
            .directory(dir.toFile())
            .redirectErrorStream(true)
            .redirectOutput(Redirect.appendTo(log.toFile()));
    // Only the API server named on the command line: never a cluster of the person running this.
    builder.environment().put("KUBECONFIG", dir.resolve("no-kubeconfig").toString());
    builder.environment().remove("KUBERNETES_SERVICE_HOST");
    process = builder.start();
    try {
      await("the operator ready at " + url())
          .atMost(START)
          .pollInterval(Duration.ofMillis(200))
          .until(
              () -> {
                if (!process.isAlive()) {
                  throw new AssertionError(
                      "the operator exited with " + process.exitValue() + ":\n" + logTail(60));
                }
                return ready();
              });
    } catch (ConditionTimeoutException e) {
      throw new AssertionError(e.getMessage() + "\n" + logTail(60), e);
    }
  }

  private boolean ready() throws InterruptedException {
    try {
      return http.send(
                  HttpRequest.newBuilder(URI.create(adminUrl() + "/q/health/ready"))
                      .timeout(Duration.ofSeconds(2))
                      .build(),
                  HttpResponse.BodyHandlers.discarding())
              .statusCode()
          == 200;
    } catch (IOException e) {
      return false; // not listening yet
    }
  }

  /** Kills the process as a crash or an OOM kill would (SIGKILL), and waits until it is gone. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      throw new AssertionError("the operator did not die within 30 s of SIGKILL");
    }
  }

  /** The base URL machines use: the machine port. */
  String url() {
    return "http://127.0.0.1:" + port;
  }

  /** The admin port's URL: the status page, {@code /q/health} and {@code /q/metrics}. */
  String adminUrl() {
    return "http://127.0.0.1:" + adminPort;
  }

  /** The last lines of the operator's output. */
  String logTail(int lines) {
    try {
      List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  /** Stops the process: SIGTERM, then SIGKILL after 20 s. */
  @Override
  public void close() throws InterruptedException {
    if (process == null || !process.isAlive()) {
      return;
    }
    process.destroy();
    if (!process.waitFor(20, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
  }
}
