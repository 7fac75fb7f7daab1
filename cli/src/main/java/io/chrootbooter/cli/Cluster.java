package io.chrootbooter.cli;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceList;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.NonNamespaceOperation;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import java.io.File;
import java.io.IOException;
import java.net.ConnectException;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The cluster of the kubeconfig, as kubectl would pick it: {@code --kubeconfig} or {@code
 * KUBECONFIG} or {@code ~/.kube/config}, {@code --context} or the current context, {@code -n} or
 * the context's namespace or {@code default}. Nothing is read before a command needs it.
 */
final class Cluster implements AutoCloseable {

  static final String GROUP = "boot.chrootbooter.io";
  static final String VERSION = "v1alpha1";

  static final ResourceDefinitionContext MACHINE_BOOT = crd("MachineBoot", "machineboots");
  static final ResourceDefinitionContext BOOT_IMAGE = crd("BootImage", "bootimages");
  static final ResourceDefinitionContext BOOT_TEST = crd("BootTest", "boottests");

  private final String kubeconfig;
  private final String context;
  private final String namespaceFlag;
  private Config config;
  private KubernetesClient client;

  Cluster(String kubeconfig, String context, String namespace) {
    this.kubeconfig = kubeconfig;
    this.context = context;
    this.namespaceFlag = namespace;
  }

  private static ResourceDefinitionContext crd(String kind, String plural) {
    return new ResourceDefinitionContext.Builder()
        .withGroup(GROUP)
        .withVersion(VERSION)
        .withKind(kind)
        .withPlural(plural)
        .withNamespaced(true)
        .build();
  }

  /** The client's configuration, read from the kubeconfig. */
  Config config() {
    if (config == null) {
      try {
        if (kubeconfig != null) {
          Path file = Path.of(kubeconfig);
          if (!Files.isReadable(file)) {
            throw new CliException(Exit.USAGE, "--kubeconfig " + kubeconfig + ": no such file");
          }
          config = Config.fromKubeconfig(context, file.toFile());
        } else {
          config = Config.autoConfigure(context);
        }
      } catch (KubernetesClientException e) {
        throw new CliException(Exit.USAGE, "the kubeconfig: " + firstLine(e.getMessage()));
      }
      if (context != null && !context.equals(currentContextName(config))) {
        throw new CliException(
            Exit.USAGE, "--context " + context + ": no such context in the kubeconfig");
      }
      if (config.getMasterUrl() == null || config.getMasterUrl().isBlank()) {
        throw new CliException(Exit.USAGE, "the kubeconfig names no cluster");
      }
      // Like kubectl: a refused connection is an answer, not something to retry for seconds.
      config.setRequestRetryBackoffLimit(0);
    }
    return config;
  }

  private static String currentContextName(Config c) {
    return c.getCurrentContext() == null ? null : c.getCurrentContext().getName();
  }

  /** The namespace commands work in. */
  String namespace() {
    if (namespaceFlag != null) {
      return namespaceFlag;
    }
    String ns = config().getNamespace();
    return ns == null || ns.isBlank() ? "default" : ns;
  }

  KubernetesClient client() {
    if (client == null) {
      client = new KubernetesClientBuilder().withConfig(config()).build();
    }
    return client;
  }

  /** The API server's URL, for messages. */
  String apiUrl() {
    return config().getMasterUrl();
  }

  /**
   * The bearer token of the kubeconfig's user (a token, a token file or an exec plugin's), for the
   * operator; null when the user has none (a client certificate, say). Never printed.
   */
  String bearerToken() {
    Config c = config();
    if (c.getOauthTokenProvider() != null) {
      return c.getOauthTokenProvider().getToken();
    }
    String token = c.getOauthToken();
    if (token == null || token.isBlank()) {
      token = c.getAutoOAuthToken();
    }
    return token == null || token.isBlank() ? null : token;
  }

  NonNamespaceOperation<
          GenericKubernetesResource,
          GenericKubernetesResourceList,
          Resource<GenericKubernetesResource>>
      in(ResourceDefinitionContext type) {
    return client().genericKubernetesResources(type).inNamespace(namespace());
  }

  /** A MachineBoot of the namespace; a one-line error when there is none. */
  GenericKubernetesResource machine(String name) {
    return getOrFail(MACHINE_BOOT, name, "machineboot");
  }

  GenericKubernetesResource getOrFail(ResourceDefinitionContext type, String name, String what) {
    GenericKubernetesResource r = call(() -> in(type).withName(name).get(), what + " " + name);
    if (r == null) {
      throw new CliException(
          Exit.NOT_FOUND, what + " " + name + " not found in namespace " + namespace());
    }
    return r;
  }

  /** Runs an API call; its failures become one-line errors naming {@code what}. */
  <T> T call(java.util.function.Supplier<T> call, String what) {
    try {
      return call.get();
    } catch (KubernetesClientException e) {
      throw translate(e, what);
    }
  }

  /** The one-line error of a failed API call about {@code what}. */
  CliException translate(KubernetesClientException e, String what) {
    for (Throwable c = e; c != null && c.getCause() != c; c = c.getCause()) {
      if (c instanceof ConnectException || c instanceof UnknownHostException) {
        String why =
            c.getMessage() != null
                ? firstLine(c.getMessage())
                : c instanceof ConnectException ? "connection refused" : "unknown host";
        return new CliException(
            Exit.UNREACHABLE, "cannot reach the Kubernetes API at " + apiUrl() + ": " + why);
      }
    }
    Throwable cause = rootCause(e);
    if (cause instanceof IOException && e.getCode() == 0) {
      return new CliException(
          Exit.UNREACHABLE, "the Kubernetes API at " + apiUrl() + ": " + describe(cause));
    }
    String reason =
        e.getStatus() != null && e.getStatus().getMessage() != null
            ? e.getStatus().getMessage()
            : firstLine(e.getMessage());
    return switch (e.getCode()) {
      case 401 ->
          new CliException(
              Exit.UNREACHABLE,
              "the Kubernetes API refused the kubeconfig's credential: " + reason);
      case 403 -> new CliException(Exit.UNREACHABLE, "not allowed: " + firstLine(reason));
      case 404 ->
          new CliException(
              Exit.NOT_FOUND, what + " not found in namespace " + namespace() + ": " + reason);
      default -> new CliException(Exit.FAILED, what + ": " + firstLine(reason));
    };
  }

  static Throwable rootCause(Throwable t) {
    Throwable c = t;
    while (c.getCause() != null && c.getCause() != c) {
      c = c.getCause();
    }
    return c;
  }

  /** What went wrong, in a few words: the first message in the chain of causes. */
  static String describe(Throwable t) {
    for (Throwable c = t; c != null && c.getCause() != c; c = c.getCause()) {
      if (c instanceof ConnectException) {
        return c.getMessage() == null ? "connection refused" : firstLine(c.getMessage());
      }
    }
    for (Throwable c = t; c != null && c.getCause() != c; c = c.getCause()) {
      if (c.getMessage() != null && !c.getMessage().isBlank()) {
        return firstLine(c.getMessage());
      }
    }
    return t.getClass().getSimpleName();
  }

  static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    String line = s.strip();
    int nl = line.indexOf('\n');
    return nl < 0 ? line : line.substring(0, nl).strip();
  }

  /** Whether this process runs in a pod of a cluster (where Services resolve by name). */
  static boolean inCluster() {
    return System.getenv("KUBERNETES_SERVICE_HOST") != null
        && new File("/var/run/secrets/kubernetes.io/serviceaccount").isDirectory();
  }

  @Override
  public void close() {
    if (client != null) {
      client.close();
    }
  }
}
