package io.chrootbooter.operator.console;

import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatus;
import io.fabric8.kubernetes.api.model.authentication.UserInfo;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import jakarta.enterprise.context.ApplicationScoped;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * Who may read or attach to a machine's console: Kubernetes decides. The user's own bearer
 * credential goes to the API server in a {@code TokenReview} (who is this?), then a {@code
 * SubjectAccessReview} asks whether that user may {@code get} {@code machineboots/log} (read the
 * recorded console) or {@code create} {@code machineboots/console} (attach) in the MachineBoot's
 * namespace, in group {@code boot.chrootbooter.io}.
 *
 * <p>Both answers are kept for {@code cb.console.auth-cache} (default 5 s, at most 10 s) in bounded
 * maps ({@link #MAX_CACHED} entries each, the oldest go first): a {@code kubectl boot logs -f}
 * reconnecting in a loop does not become a stream of reviews, and a revoked RoleBinding takes
 * effect within seconds. Credentials are kept only as their SHA-256, never logged.
 */
@ApplicationScoped
public class ConsoleAccess {
  private static final Logger LOG = Logger.getLogger(ConsoleAccess.class);

  /** The API group of the subresources checked. */
  public static final String GROUP = "boot.chrootbooter.io";

  /** Entries kept per cache. */
  static final int MAX_CACHED = 1024;

  /** What is asked for. */
  public enum Want {
    /** {@code get machineboots/log}: the recorded console. */
    READ("get", "log"),
    /** {@code create machineboots/console}: the live console. */
    ATTACH("create", "console");

    final String verb;
    final String subresource;

    Want(String verb, String subresource) {
      this.verb = verb;
      this.subresource = subresource;
    }

    /** As RBAC and error messages write it: {@code create machineboots/console}. */
    public String rule() {
      return verb + " machineboots/" + subresource;
    }
  }

  /**
   * The answer: {@code status} 200 (allowed), 401 (no or bad credential), 403 (not allowed) or 503
   * (the API server could not be asked); {@code user} the authenticated user's name (null on 401);
   * {@code reason} one line for the refused.
   */
  public record Decision(int status, String user, String reason) {
    public boolean allowed() {
      return status == 200;
    }
  }

  private record Identity(String user, String uid, List<String> groups, String error) {}

  private record Timed<T>(T value, long until) {}

  private final KubernetesClient client;
  private final long ttlNanos;
  private final Map<String, Timed<Identity>> identities = lru();
  private final Map<String, Timed<Boolean>> grants = lru();

  ConsoleAccess(
      KubernetesClient client,
      @ConfigProperty(name = "cb.console.auth-cache", defaultValue = "5S") Duration ttl) {
    if (ttl.isNegative() || ttl.compareTo(Duration.ofSeconds(10)) > 0) {
      throw new IllegalArgumentException(
          "cb.console.auth-cache must be between 0s and 10s, not " + ttl);
    }
    this.client = client;
    this.ttlNanos = ttl.toNanos();
  }

  /**
   * Decides whether the holder of {@code authorization} (the request's header, {@code Bearer
   * <token>}) may do {@code want} on the MachineBoot {@code namespace/name}. Blocks on the API
   * server (run it off the event loop).
   */
  public Decision check(String authorization, String namespace, String name, Want want) {
    Optional<String> token = bearer(authorization);
    if (token.isEmpty()) {
      return new Decision(
          401, null, "send your Kubernetes credential: Authorization: Bearer <token>");
    }
    Identity identity;
    try {
      identity = cached(identities, digest(token.get()), k -> review(token.get()));
    } catch (KubernetesClientException e) {
      LOG.warnf("TokenReview failed: HTTP %d", e.getCode());
      return new Decision(503, null, "the Kubernetes API could not check the credential");
    }
    if (identity.user() == null) {
      return new Decision(
          401,
          null,
          "the Kubernetes API does not accept this credential"
              + (identity.error() == null || identity.error().isBlank()
                  ? ""
                  : " (" + oneLine(identity.error()) + ")"));
    }
    String key =
        String.join(
            "\u0000",
            identity.user(),
            String.join(",", identity.groups()),
            namespace,
            name,
            want.name());
    boolean allowed;
    try {
      allowed = cached(grants, key, k -> access(identity, namespace, name, want));
    } catch (KubernetesClientException e) {
      LOG.warnf("SubjectAccessReview failed: HTTP %d", e.getCode());
      return new Decision(503, identity.user(), "the Kubernetes API could not check access");
    }
    if (!allowed) {
      return new Decision(
          403,
          identity.user(),
          "user \""
              + oneLine(identity.user())
              + "\" may not "
              + want.rule()
              + " ("
              + GROUP
              + ") in namespace "
              + namespace);
    }
    return new Decision(200, identity.user(), null);
  }

  private Identity review(String token) {
    TokenReview review =
        client
            .authentication()
            .v1()
            .tokenReviews()
            .create(new TokenReviewBuilder().withNewSpec().withToken(token).endSpec().build());
    TokenReviewStatus status = review == null ? null : review.getStatus();
    if (status == null
        || !Boolean.TRUE.equals(status.getAuthenticated())
        || status.getUser() == null
        || status.getUser().getUsername() == null
        || status.getUser().getUsername().isEmpty()) {
      return new Identity(null, null, List.of(), status == null ? null : status.getError());
    }
    UserInfo user = status.getUser();
    return new Identity(
        user.getUsername(),
        user.getUid(),
        user.getGroups() == null ? List.of() : List.copyOf(user.getGroups()),
        null);
  }

  private boolean access(Identity identity, String namespace, String name, Want want) {
    SubjectAccessReview review =
        client
            .authorization()
            .v1()
            .subjectAccessReview()
            .create(
                new SubjectAccessReviewBuilder()
                    .withNewSpec()
                    .withUser(identity.user())
                    .withUid(identity.uid())
                    .withGroups(identity.groups())
                    .withNewResourceAttributes()
                    .withGroup(GROUP)
                    .withResource("machineboots")
                    .withSubresource(want.subresource)
                    .withVerb(want.verb)
                    .withNamespace(namespace)
                    .withName(name)
                    .endResourceAttributes()
                    .endSpec()
                    .build());
    return review != null
        && review.getStatus() != null
        && Boolean.TRUE.equals(review.getStatus().getAllowed());
  }

  private <T> T cached(Map<String, Timed<T>> cache, String key, Function<String, T> compute) {
    long now = System.nanoTime();
    synchronized (cache) {
      Timed<T> hit = cache.get(key);
      if (hit != null && now - hit.until() < 0) {
        return hit.value();
      }
    }
    T value = compute.apply(key);
    if (ttlNanos > 0) {
      synchronized (cache) {
        cache.put(key, new Timed<>(value, now + ttlNanos));
      }
    }
    return value;
  }

  /** The token of {@code Bearer <token>}; empty when the header is missing or malformed. */
  static Optional<String> bearer(String authorization) {
    if (authorization == null || authorization.length() > 16 * 1024) {
      return Optional.empty();
    }
    String[] parts = authorization.trim().split("\\s+", 2);
    if (parts.length != 2
        || !parts[0].equalsIgnoreCase("Bearer")
        || parts[1].isEmpty()
        || !parts[1].chars().allMatch(c -> c > 0x20 && c < 0x7f)) {
      return Optional.empty();
    }
    return Optional.of(parts[1]);
  }

  private static String oneLine(String s) {
    String line = s.replaceAll("\\p{Cntrl}", " ");
    return line.length() > 200 ? line.substring(0, 200) + "…" : line;
  }

  private static String digest(String token) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
    }
  }

  private static <T> Map<String, Timed<T>> lru() {
    return new LinkedHashMap<>(64, 0.75f, false) {
      @Override
      protected boolean removeEldestEntry(Map.Entry<String, Timed<T>> eldest) {
        return size() > MAX_CACHED;
      }
    };
  }
}
