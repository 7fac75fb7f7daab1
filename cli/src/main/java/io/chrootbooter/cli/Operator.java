package io.chrootbooter.cli;

import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.LocalPortForward;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The operator's admin port: found through {@code --operator URL}, {@code KUBECTL_BOOT_OPERATOR},
 * or the Helm chart's admin Service (a Service labelled {@code app.kubernetes.io/part-of=
 * chrootbooter} with a port named {@code admin}), reached by its cluster DNS name from inside the
 * cluster and through a port-forward to one of its ready pods from outside. Every request carries
 * the kubeconfig user's bearer token.
 */
final class Operator implements AutoCloseable {

  static final String ENV = "KUBECTL_BOOT_OPERATOR";
  static final String PART_OF = "app.kubernetes.io/part-of";

  private final Cluster cluster;
  private final String flagUrl;
  private final String serviceFlag;
  private final Map<String, String> env;
  private URI base;
  private String via = "";
  private LocalPortForward forward;
  private HttpClient http;

  Operator(Cluster cluster, String flagUrl, String serviceFlag, Map<String, String> env) {
    this.cluster = cluster;
    this.flagUrl = flagUrl;
    this.serviceFlag = serviceFlag;
    this.env = env;
  }

  /** The admin port's base URL, such as {@code http://127.0.0.1:9000}. */
  URI base() {
    if (base == null) {
      String url = flagUrl != null ? flagUrl : env.get(ENV);
      base = url != null && !url.isBlank() ? parse(url) : throughService();
    }
    return base;
  }

  private static URI parse(String url) {
    URI u;
    try {
      u = URI.create(url.endsWith("/") ? url.substring(0, url.length() - 1) : url);
    } catch (IllegalArgumentException e) {
      throw new CliException(Exit.USAGE, "operator URL " + url + ": not a URL");
    }
    if (!("http".equals(u.getScheme()) || "https".equals(u.getScheme())) || u.getHost() == null) {
      throw new CliException(
          Exit.USAGE, "operator URL " + url + ": give http://HOST:PORT or https://HOST:PORT");
    }
    if (u.getRawQuery() != null || u.getRawUserInfo() != null) {
      throw new CliException(Exit.USAGE, "operator URL " + url + ": no user or query, please");
    }
    return u;
  }

  private URI throughService() {
    Service svc = findService();
    ServicePort port = adminPort(svc);
    String ns = svc.getMetadata().getNamespace();
    String name = svc.getMetadata().getName();
    if (Cluster.inCluster()) {
      via = " (service " + ns + "/" + name + ")";
      return URI.create("http://" + name + "." + ns + ".svc:" + port.getPort());
    }
    Map<String, String> selector = svc.getSpec() == null ? null : svc.getSpec().getSelector();
    if (selector == null || selector.isEmpty()) {
      throw new CliException(
          Exit.UNREACHABLE, "service " + ns + "/" + name + " selects no pods to port-forward to");
    }
    List<Pod> pods =
        cluster.call(
            () -> cluster.client().pods().inNamespace(ns).withLabels(selector).list().getItems(),
            "the pods of service " + ns + "/" + name);
    Pod pod = pods.stream().filter(Operator::ready).findFirst().orElse(null);
    if (pod == null) {
      throw new CliException(
          Exit.UNREACHABLE,
          "service " + ns + "/" + name + " has no ready operator pod to port-forward to");
    }
    int target = targetPort(port, pod);
    try {
      forward =
          cluster
              .client()
              .pods()
              .inNamespace(ns)
              .withName(pod.getMetadata().getName())
              .portForward(target);
    } catch (KubernetesClientException e) {
      throw new CliException(
          Exit.UNREACHABLE,
          "port-forward to pod "
              + ns
              + "/"
              + pod.getMetadata().getName()
              + " port "
              + target
              + ": "
              + Cluster.describe(Cluster.rootCause(e)));
    }
    if (!forward.isAlive() || forward.errorOccurred()) {
      throw new CliException(
          Exit.UNREACHABLE,
          "port-forward to pod " + ns + "/" + pod.getMetadata().getName() + " failed");
    }
    via =
        " (a port-forward to pod "
            + ns
            + "/"
            + pod.getMetadata().getName()
            + " port "
            + target
            + ")";
    return URI.create("http://127.0.0.1:" + forward.getLocalPort());
  }

  /** How the admin port is reached, for messages: empty for a URL given. */
  String via() {
    return via;
  }

  private Service findService() {
    if (serviceFlag != null) {
      String ns = cluster.namespace();
      String name = serviceFlag;
      int slash = serviceFlag.indexOf('/');
      if (slash >= 0) {
        ns = serviceFlag.substring(0, slash);
        name = serviceFlag.substring(slash + 1);
      }
      String n = ns;
      String nm = name;
      Service s =
          cluster.call(
              () -> cluster.client().services().inNamespace(n).withName(nm).get(),
              "service " + n + "/" + nm);
      if (s == null) {
        throw new CliException(Exit.NOT_FOUND, "service " + ns + "/" + name + " not found");
      }
      return s;
    }
    List<Service> here =
        withAdminPort(
            cluster.call(
                () ->
                    cluster
                        .client()
                        .services()
                        .inNamespace(cluster.namespace())
                        .withLabel(PART_OF, "chrootbooter")
                        .list()
                        .getItems(),
                "services"));
    if (here.size() == 1) {
      return here.get(0);
    }
    List<Service> all = here;
    if (here.isEmpty()) {
      try {
        all =
            withAdminPort(
                cluster
                    .client()
                    .services()
                    .inAnyNamespace()
                    .withLabel(PART_OF, "chrootbooter")
                    .list()
                    .getItems());
      } catch (KubernetesClientException e) {
        if (e.getCode() != 403) {
          throw cluster.translate(e, "services");
        }
      }
    }
    if (all.size() == 1) {
      return all.get(0);
    }
    if (all.isEmpty()) {
      throw new CliException(
          Exit.UNREACHABLE,
          "no operator found: no Service labelled "
              + PART_OF
              + "=chrootbooter with a port named admin in namespace "
              + cluster.namespace()
              + " (or any namespace you may list); give --operator URL, "
              + ENV
              + "=URL or --operator-service NAMESPACE/NAME");
    }
    List<String> names = new ArrayList<>();
    for (Service s : all) {
      names.add(s.getMetadata().getNamespace() + "/" + s.getMetadata().getName());
    }
    throw new CliException(
        Exit.USAGE,
        "several operators found ("
            + String.join(", ", names)
            + "); choose one with --operator-service NAMESPACE/NAME");
  }

  private static List<Service> withAdminPort(List<Service> services) {
    List<Service> out = new ArrayList<>();
    for (Service s : services) {
      if (s.getSpec() != null
          && s.getSpec().getPorts() != null
          && s.getSpec().getPorts().stream().anyMatch(p -> "admin".equals(p.getName()))) {
        out.add(s);
      }
    }
    return out;
  }

  private static ServicePort adminPort(Service svc) {
    List<ServicePort> ports = svc.getSpec() == null ? null : svc.getSpec().getPorts();
    if (ports == null || ports.isEmpty()) {
      throw new CliException(
          Exit.UNREACHABLE, "service " + svc.getMetadata().getName() + " has no ports");
    }
    return ports.stream()
        .filter(p -> "admin".equals(p.getName()))
        .findFirst()
        .orElse(ports.size() == 1 ? ports.get(0) : null);
  }

  private static boolean ready(Pod pod) {
    return pod.getStatus() != null
        && "Running".equals(pod.getStatus().getPhase())
        && pod.getStatus().getConditions() != null
        && pod.getStatus().getConditions().stream()
            .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
  }

  private static int targetPort(ServicePort port, Pod pod) {
    if (port.getTargetPort() == null) {
      return port.getPort();
    }
    if (port.getTargetPort().getIntVal() != null) {
      return port.getTargetPort().getIntVal();
    }
    String named = port.getTargetPort().getStrVal();
    return pod.getSpec().getContainers().stream()
        .flatMap(
            c -> c.getPorts() == null ? java.util.stream.Stream.empty() : c.getPorts().stream())
        .filter(p -> Objects.equals(named, p.getName()))
        .map(ContainerPort::getContainerPort)
        .findFirst()
        .orElseThrow(
            () ->
                new CliException(
                    Exit.UNREACHABLE,
                    "pod " + pod.getMetadata().getName() + " has no port named " + named));
  }

  HttpClient http() {
    if (http == null) {
      http =
          HttpClient.newBuilder()
              .version(HttpClient.Version.HTTP_1_1)
              .connectTimeout(Duration.ofSeconds(10))
              .followRedirects(HttpClient.Redirect.NEVER)
              .build();
    }
    return http;
  }

  /** The value of the Authorization header, or null without a token. */
  String authorization() {
    String token = cluster.bearerToken();
    return token == null ? null : "Bearer " + token;
  }

  /** A URI on the admin port: {@code path} is already escaped. */
  URI uri(String path) {
    return URI.create(base().toString() + path);
  }

  /**
   * GETs a path and returns the open response when it is 200; any other answer becomes a one-line
   * error that says what the operator said.
   */
  HttpResponse<InputStream> get(String path, String what) {
    URI uri = uri(path);
    HttpRequest.Builder req = HttpRequest.newBuilder(uri).GET();
    String auth = authorization();
    if (auth != null) {
      req.header("Authorization", auth);
    }
    HttpResponse<InputStream> response;
    try {
      response = http().send(req.build(), HttpResponse.BodyHandlers.ofInputStream());
    } catch (IOException e) {
      throw new CliException(
          Exit.UNREACHABLE,
          "cannot reach the operator at " + base() + via + ": " + Cluster.describe(e));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CliException(Exit.FAILED, "interrupted");
    }
    if (response.statusCode() != 200) {
      String body;
      try (InputStream in = response.body()) {
        body = new String(in.readNBytes(4096), StandardCharsets.UTF_8);
      } catch (IOException e) {
        body = "";
      }
      throw refusal(response.statusCode(), body, what, auth != null);
    }
    return response;
  }

  /** The one-line error for an operator's non-200 answer. */
  CliException refusal(int status, String body, String what, boolean hadToken) {
    String reason = Cluster.firstLine(Terminal.printable(body));
    if (reason.isEmpty()) {
      reason = "HTTP " + status;
    }
    return switch (status) {
      case 401 ->
          new CliException(
              Exit.UNREACHABLE,
              "the operator refused the credential: "
                  + reason
                  + (hadToken
                      ? ""
                      : " (the kubeconfig's user has no bearer token; a client certificate is not"
                          + " passed on to the operator)"));
      case 403 -> new CliException(Exit.UNREACHABLE, "not allowed: " + reason);
      case 404 -> new CliException(Exit.NOT_FOUND, reason);
      default ->
          new CliException(Exit.FAILED, what + ": the operator answered " + status + ": " + reason);
    };
  }

  @Override
  public void close() {
    if (forward != null) {
      try {
        forward.close();
      } catch (IOException e) {
        // the process ends anyway
      }
    }
  }
}
