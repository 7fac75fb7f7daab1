package io.chrootbooter.operator.token;

import io.chrootbooter.operator.OperatorConfig;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.quarkus.runtime.StartupEvent;
import io.vertx.core.Vertx;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.net.HttpURLConnection;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Issues and verifies machine tokens with the key held in a Secret, creating the Secret with a
 * fresh random key when it is absent. The key is read at most every {@link #REFRESH} so that a
 * rotation (a new {@code current}, the old one moved to {@code previous}) reaches every replica.
 */
@ApplicationScoped
public class MachineTokens {
  static final String CURRENT = "current";
  static final String PREVIOUS = "previous";
  private static final Duration REFRESH = Duration.ofSeconds(30);
  private static final Logger LOG = Logger.getLogger(MachineTokens.class);

  private final KubernetesClient client;
  private final OperatorConfig config;
  private final SecureRandom random = new SecureRandom();
  private volatile TokenKeys keys;

  /** Tokens issued with the current keys, to tell another machine's token from a forged one. */
  private final Map<String, String> issued = new java.util.concurrent.ConcurrentHashMap<>();

  /** The token of each MAC issued with the current keys. */
  private final Map<String, String> byMac = new java.util.concurrent.ConcurrentHashMap<>();

  MachineTokens(KubernetesClient client, OperatorConfig config) {
    this.client = client;
    this.config = config;
  }

  /** The token of the machine with this MAC (lower-case colon form). */
  public String issue(String mac) {
    TokenKeys current = keys();
    // Computed once per MAC and key: the iPXE endpoint issues a token on every request.
    return byMac.computeIfAbsent(
        mac,
        m -> {
          String token = current.issue(m);
          issued.put(token, m);
          return token;
        });
  }

  /** The MAC a token was issued to by this operator, if it issued it. */
  public Optional<String> issuedTo(String token) {
    return Optional.ofNullable(issued.get(token));
  }

  /** Whether {@code token} belongs to the machine with this MAC. */
  public boolean verify(String mac, String token) {
    return keys().verify(mac, token);
  }

  /** Whether the key has been read: tokens can be issued and checked without an API call. */
  public boolean ready() {
    return keys != null;
  }

  /**
   * Reads the key at start and then every {@link #REFRESH} on a worker thread, so issuing and
   * checking tokens never waits for the API server.
   */
  void start(@Observes StartupEvent event, Vertx vertx) {
    vertx.setPeriodic(
        1,
        REFRESH.toMillis(),
        id ->
            vertx.executeBlocking(
                () -> {
                  refresh();
                  return null;
                },
                false));
  }

  private TokenKeys keys() {
    TokenKeys current = keys;
    if (current == null) {
      synchronized (this) {
        if (keys == null) {
          refresh();
        }
        return keys;
      }
    }
    return current;
  }

  private synchronized void refresh() {
    try {
      TokenKeys loaded = loadOrCreate();
      if (keys != null && !java.util.Arrays.equals(keys.current(), loaded.current())) {
        issued.clear();
        byMac.clear();
      }
      keys = loaded;
    } catch (KubernetesClientException e) {
      if (keys == null) {
        throw e;
      }
      LOG.warnf(
          "Could not re-read the machine token key; keeping the last one: %s", e.getMessage());
    }
  }

  private TokenKeys loadOrCreate() {
    String namespace = config.tokens().namespace().orElse(client.getNamespace());
    String name = config.tokens().secretName();
    Secret secret = client.secrets().inNamespace(namespace).withName(name).get();
    if (secret == null) {
      byte[] key = new byte[32];
      random.nextBytes(key);
      Secret fresh =
          new SecretBuilder()
              .withNewMetadata()
              .withName(name)
              .withNamespace(namespace)
              .addToLabels("app.kubernetes.io/part-of", "chrootbooter")
              .endMetadata()
              .withType("Opaque")
              .withData(Map.of(CURRENT, Base64.getEncoder().encodeToString(key)))
              .build();
      try {
        secret = client.secrets().inNamespace(namespace).resource(fresh).create();
        LOG.infof("Created the machine token key in Secret %s/%s", namespace, name);
      } catch (KubernetesClientException e) {
        if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
          throw e;
        }
        // Another replica created it first: use theirs.
        secret = client.secrets().inNamespace(namespace).withName(name).require();
      }
    }
    Map<String, String> data = secret.getData() == null ? Map.of() : secret.getData();
    String current = data.get(CURRENT);
    if (current == null) {
      throw new IllegalStateException(
          "Secret " + namespace + "/" + name + " has no data key \"" + CURRENT + "\"");
    }
    return new TokenKeys(
        Base64.getDecoder().decode(current),
        Optional.ofNullable(data.get(PREVIOUS)).map(Base64.getDecoder()::decode));
  }
}
