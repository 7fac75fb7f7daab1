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
import java.time.Instant;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Issues and checks the boot nonces and sessions of {@link BootCredentials} with the key held in a
 * Secret, creating the Secret with a fresh random key when it is absent. The key is read at most
 * every {@link #REFRESH} so that a rotation (a new {@code current}, the old one moved to {@code
 * previous}) reaches every replica.
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

  MachineTokens(KubernetesClient client, OperatorConfig config) {
    this.client = client;
    this.config = config;
  }

  /**
   * A fresh one-time boot nonce for the machine with this MAC (lower-case colon form), described by
   * the MachineBoot of this {@code uid}.
   */
  public String nonce(String mac, String uid) {
    return BootCredentials.nonce(keys(), mac, uid, Instant.now(), random);
  }

  /**
   * When {@code nonce} was issued to the machine with this MAC and MachineBoot {@code uid}; empty
   * when it was not.
   */
  public Optional<Instant> nonceIssued(String mac, String uid, String nonce) {
    return BootCredentials.nonceIssued(keys(), mac, uid, nonce);
  }

  /** A new session of the machine with this MAC, valid until {@code expires}. */
  public BootCredentials.Session newSession(String mac, Instant expires) {
    byte[] id = new byte[16];
    random.nextBytes(id);
    return new BootCredentials.Session(mac, id, expires);
  }

  /** The credential of {@code session}. */
  public String credential(BootCredentials.Session session) {
    return BootCredentials.session(keys(), session);
  }

  /** The session a credential holds when the operator's key signed it (expired or not). */
  public Optional<BootCredentials.Session> parseSession(String credential) {
    return BootCredentials.parseSession(keys(), credential);
  }

  /** A forward between replicas bound to {@code binding}, good until {@code expires}. */
  public String forward(byte[] binding, Instant expires) {
    return BootCredentials.forward(keys(), binding, expires, random);
  }

  /** When the forward {@code credential} bound to {@code binding} expires; empty when forged. */
  public Optional<Instant> forwardExpires(byte[] binding, String credential) {
    return BootCredentials.forwardExpires(keys(), binding, credential);
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
      keys = loadOrCreate();
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
