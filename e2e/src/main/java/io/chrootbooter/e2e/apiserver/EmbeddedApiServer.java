package io.chrootbooter.e2e.apiserver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.mockwebserver.dsl.HttpMethod;
import io.fabric8.mockwebserver.http.Buffer;
import io.fabric8.mockwebserver.http.Headers;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * The local lab's Kubernetes API when neither {@code KUBECONFIG} nor Docker (K3s) is available: the
 * fabric8 mock server's CRUD dispatcher behind {@link ApiDispatcher} and {@link ApiHttpServer}, so
 * that both the operator (fabric8 client, informers, status patches) and Debian's kubectl 1.20 work
 * against it.
 *
 * <pre>
 * java -cp e2e/target/chrootbooter-e2e-*.jar:e2e/target/lib/* \
 *     io.chrootbooter.e2e.apiserver.EmbeddedApiServer --port 6443 [--bind 127.0.0.1] \
 *     --kubeconfig e2e/lab/kubeconfig [--crds crds/]
 * </pre>
 *
 * The process serves until it is sent SIGTERM/SIGINT. State lives in memory only.
 */
public final class EmbeddedApiServer implements AutoCloseable {

  private static final String CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

  private final ApiDispatcher dispatcher;
  private final ApiHttpServer http;
  private final String bind;
  private final String labToken;

  private EmbeddedApiServer(
      ApiDispatcher dispatcher, ApiHttpServer http, String bind, String labToken) {
    this.dispatcher = dispatcher;
    this.http = http;
    this.bind = bind;
    this.labToken = labToken;
  }

  /**
   * Command-line options.
   *
   * @param port TCP port, 0 for any free one
   * @param bind address to listen on; loopback by default, since there is no authentication
   * @param kubeconfig where to write the kubeconfig, if anywhere
   * @param crds a directory of CRD YAML to install before serving, if any
   */
  public record Options(int port, String bind, Optional<Path> kubeconfig, Optional<Path> crds) {

    static final String USAGE =
        "usage: EmbeddedApiServer --port PORT [--bind ADDRESS] --kubeconfig PATH [--crds DIR]";

    /**
     * Parses {@code --name value} pairs.
     *
     * @throws IllegalArgumentException with the usage line when an option is unknown or invalid
     */
    public static Options parse(String... args) {
      int port = -1;
      String bind = "127.0.0.1";
      Path kubeconfig = null;
      Path crds = null;
      for (int i = 0; i < args.length; i += 2) {
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException(args[i] + " needs a value; " + USAGE);
        }
        String value = args[i + 1];
        switch (args[i]) {
          case "--port" -> port = parsePort(value);
          case "--bind" -> bind = value;
          case "--kubeconfig" -> kubeconfig = Path.of(value);
          case "--crds" -> crds = Path.of(value);
          default -> throw new IllegalArgumentException("unknown option " + args[i] + "; " + USAGE);
        }
      }
      if (port < 0) {
        throw new IllegalArgumentException("--port is required; " + USAGE);
      }
      return new Options(port, bind, Optional.ofNullable(kubeconfig), Optional.ofNullable(crds));
    }

    private static int parsePort(String value) {
      if (!value.matches("[0-9]{1,5}") || Integer.parseInt(value) > 65535) {
        throw new IllegalArgumentException(
            "--port \"" + value + "\" is not a TCP port (0-65535); " + USAGE);
      }
      return Integer.parseInt(value);
    }
  }

  /** Starts serving; writes the kubeconfig and installs the CRDs when the options say so. */
  public static EmbeddedApiServer start(Options options) throws IOException {
    IndexedCrudDispatcher crud = new IndexedCrudDispatcher();
    ResourceCatalog catalog = new ResourceCatalog(crud::storedCrds);
    String host = options.bind().contains(":") ? "[" + options.bind() + "]" : options.bind();
    // The port is known only after binding (--port 0); discovery reads it when asked.
    AtomicInteger boundPort = new AtomicInteger(options.port());
    // The lab user's token, new for each run: only its kubeconfig carries it.
    byte[] random = new byte[32];
    new java.security.SecureRandom().nextBytes(random);
    String token = java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(random);
    ApiDispatcher dispatcher =
        new ApiDispatcher(
            crud, catalog, () -> host + ":" + boundPort.get(), Clock.systemUTC(), token);
    ApiHttpServer http = ApiHttpServer.start(dispatcher, options.bind(), options.port());
    boundPort.set(http.port());
    EmbeddedApiServer server = new EmbeddedApiServer(dispatcher, http, host, token);
    try {
      server.create(
          "/api/v1/namespaces",
          "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
              + "\"metadata\":{\"name\":\"default\"}}");
      if (options.crds().isPresent()) {
        server.installCrds(options.crds().get());
      }
      if (options.kubeconfig().isPresent()) {
        Kubeconfig.write(options.kubeconfig().get(), server.url(), token);
      }
    } catch (IOException | RuntimeException e) {
      server.close();
      throw e;
    }
    return server;
  }

  /** The bearer token of the lab's user (its kubeconfig's). */
  public String labToken() {
    return labToken;
  }

  /** The base URL, such as {@code http://127.0.0.1:6443}. */
  public String url() {
    return "http://" + bind + ":" + http.port();
  }

  /** The bound port. */
  public int port() {
    return http.port();
  }

  /** Creates every CRD in the {@code .yml}/{@code .yaml} files of a directory. */
  public void installCrds(Path dir) throws IOException {
    List<Path> files;
    try (Stream<Path> list = Files.list(dir)) {
      files =
          list.filter(p -> p.toString().endsWith(".yml") || p.toString().endsWith(".yaml"))
              .sorted()
              .toList();
    }
    ObjectMapper yaml = new YAMLMapper();
    for (Path file : files) {
      try (var parser = new YAMLFactory().createParser(file.toFile())) {
        for (JsonNode doc : yaml.readValues(parser, JsonNode.class).readAll()) {
          if ("CustomResourceDefinition".equals(doc.path("kind").asText())) {
            create(CRD_PATH, doc.toString());
          }
        }
      }
    }
  }

  private void create(String collectionPath, String json) {
    MockResponse response =
        dispatcher.dispatch(
            new RecordedRequest(
                "HTTP/1.1",
                HttpMethod.POST,
                collectionPath,
                Headers.builder().add("Content-Type", "application/json").build(),
                new Buffer(json.getBytes(StandardCharsets.UTF_8))));
    if (response.code() >= 300) {
      throw new IllegalStateException(
          "POST "
              + collectionPath
              + " answered "
              + response.code()
              + ": "
              + response.getBody().readUtf8());
    }
  }

  @Override
  public void close() {
    http.close();
  }

  /** Runs the server until SIGTERM/SIGINT. */
  public static void main(String[] args) throws Exception {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.exit(2);
      return;
    }
    EmbeddedApiServer server = start(options);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  server.close();
                  stopped.countDown();
                },
                "embedded-api-shutdown"));
    System.out.println(
        "Embedded Kubernetes API on "
            + server.url()
            + options.kubeconfig().map(k -> "; kubeconfig " + k.toAbsolutePath()).orElse(""));
    try {
      stopped.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new UncheckedIOException(new IOException("interrupted while serving", e));
    }
  }
}
