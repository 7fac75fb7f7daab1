package io.chrootbooter.e2e.protocol;

import io.chrootbooter.e2e.apiserver.EmbeddedApiServer;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Everything the protocol tests run against, on loopback, owned here and stopped by {@link
 * #close()} in reverse order whatever happened: the embedded Kubernetes API with the repository's
 * CRDs (in this JVM), an image source, and the operator jar as a child process.
 */
final class ControlPlane implements AutoCloseable {
  private static final Pattern NONCE = Pattern.compile(" cb\\.nonce=(\\S+)");
  private static final Pattern SESSION = Pattern.compile("\"session\":\"([A-Za-z0-9_-]+)\"");

  private final Owned owned = new Owned();
  private final HttpClient http = HttpClient.newHttpClient();
  EmbeddedApiServer apiServer;
  KubernetesClient client;
  ImageFiles images;
  OperatorProcess operator;
  BootApi api;

  private ControlPlane() {}

  /**
   * Starts it all, BootImages and MachineBoots going to {@code namespace}; what was started before
   * a failure is stopped again.
   *
   * @param repository the repository's root: the CRDs are read from {@code crds/}
   * @param operatorJar {@code operator/target/quarkus-app/quarkus-run.jar}
   * @param dir the operator's folder (image store, log)
   */
  static ControlPlane start(Path repository, Path operatorJar, Path dir, String namespace)
      throws Exception {
    ControlPlane plane = new ControlPlane();
    try {
      plane.apiServer =
          plane.own(
              EmbeddedApiServer.start(
                  new EmbeddedApiServer.Options(
                      0, "127.0.0.1", Optional.empty(), Optional.of(repository.resolve("crds")))));
      Config config =
          new ConfigBuilder(Config.empty())
              .withMasterUrl(plane.apiServer.url())
              .withNamespace(namespace)
              .withRequestTimeout(10_000)
              .build();
      plane.client = plane.own(new KubernetesClientBuilder().withConfig(config).build());
      plane.images = plane.own(new ImageFiles());
      plane.operator = plane.own(OperatorProcess.start(operatorJar, plane.apiServer.url(), dir));
      plane.api = new BootApi(plane.client, plane.apiServer.url(), namespace);
      return plane;
    } catch (Exception | AssertionError e) {
      plane.close();
      throw e;
    }
  }

  private <T extends AutoCloseable> T own(T resource) {
    return owned.own(resource);
  }

  /**
   * A session of {@code mac}, as the machine gets it: the nonce of its iPXE script exchanged at the
   * operator. Returns nothing while the operator has no script for it (the MachineBoot is not in
   * its cache yet, say) or refuses the enrolment.
   */
  Optional<String> session(String mac) throws IOException, InterruptedException {
    HttpResponse<String> script =
        http.send(
            HttpRequest.newBuilder(URI.create(operator.url() + "/boot/" + mac + ".ipxe")).build(),
            HttpResponse.BodyHandlers.ofString());
    Matcher nonce = NONCE.matcher(script.body());
    if (script.statusCode() != 200 || !nonce.find()) {
      return Optional.empty();
    }
    HttpResponse<String> enrolled =
        http.send(
            HttpRequest.newBuilder(
                    URI.create(operator.url() + "/agent/v1/machines/" + mac + "/enroll"))
                .header("Content-Type", "application/json")
                .POST(
                    HttpRequest.BodyPublishers.ofString(
                        "{\"nonce\":\"" + nonce.group(1) + "\",\"bootId\":\"e2e-boot\"}"))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    Matcher session = SESSION.matcher(enrolled.body());
    return enrolled.statusCode() == 200 && session.find()
        ? Optional.of(session.group(1))
        : Optional.empty();
  }

  /** What a human needs when a test fails: the resources and the operator's last lines. */
  String diagnostics() {
    return "---- BootImages and MachineBoots\n"
        + api.dump()
        + "---- operator log (last 80 lines)\n"
        + operator.logTail(80);
  }

  @Override
  public void close() throws Exception {
    owned.close();
  }
}
