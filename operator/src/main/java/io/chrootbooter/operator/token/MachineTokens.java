package io.chrootbooter.operator.token;

import io.chrootbooter.operator.OperatorConfig;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import jakarta.enterprise.context.ApplicationScoped;
import java.net.HttpURLConnection;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
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

  private volatile Instant loadedAt = Instant.MIN;

  MachineTokens(KubernetesClient client, OperatorConfig config) {
    this.client = client;
    this.config = config;
  }

  /** The token of the machine with this MAC (lower-case colon form). */
  public String issue(String mac) {
    String token = keys().issue(mac);
    issued.put(token, mac);
    return token;
  }

  /** The MAC a token was issued to by this operator, if it issued it. */
  public Optional<String> issuedTo(String token) {
    return Optional.ofNullable(issued.get(token));
  }

  /** Whether {@code token} belongs to the machine with this MAC. */
  public boolean verify(String mac, String token) {
    return keys().verify(mac, token);
  }

  private TokenKeys keys() {
    Instant now = Instant.now();
    if (keys == null || now.isAfter(loadedAt.plus(REFRESH))) {
      synchronized (this) {
        if (keys == null || now.isAfter(loadedAt.plus(REFRESH))) {
          TokenKeys loaded = loadOrCreate();
          if (keys != null && !java.util.Arrays.equals(keys.current(), loaded.current())) {
            issued.clear();
          }
          keys = loaded;
          loadedAt = now;
        }
      }
    }
    return keys;
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
