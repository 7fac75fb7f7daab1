package io.chrootbooter.operator.console;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.agentapi.Enrolments;
import io.chrootbooter.operator.liveness.AgentLeases;
import io.chrootbooter.operator.token.BootCredentials;
import io.chrootbooter.operator.token.MachineTokens;
import jakarta.enterprise.context.ApplicationScoped;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/**
 * Which replica holds a machine's console, and the credential one replica forwards a user's request
 * to another with.
 *
 * <p><b>Where.</b> A replica started with its own admin address ({@code cb.replica.admin-url}, the
 * chart sets {@code http://<pod IP>:9000}) writes it into the machine's agent Lease: {@value
 * #LIVE_ANNOTATION} when the machine's desired-state stream opens on it (where an attach must go),
 * {@value #LOG_ANNOTATION} when it receives the machine's recorded console. It writes only when the
 * Lease (as its watch shows it) names another replica, and at most once per {@link #REPUBLISH} per
 * machine: stream openings and console uploads that stay on one replica cost no write. Another
 * replica reads the annotation from its own watch of the agent Leases.
 *
 * <p><b>Trust.</b> The replica that receives a user's request checks the user's own Kubernetes
 * credential ({@link ConsoleAccess}) and never passes it on. It forwards with a {@code
 * Chrootbooter-Forward} credential instead ({@link BootCredentials#forward}): an HMAC with the
 * machine token key every replica reads from the same Secret, over the address of the replica it is
 * meant for, what is asked ({@code READ} or {@code ATTACH}), the MachineBoot's namespace and name
 * and the user's name (sent in {@code Chrootbooter-Forwarded-User}), good for {@link #LIFETIME} and
 * once: the receiver remembers each one it accepted until it expires. A replica without an admin
 * address of its own accepts no forward at all, and a forwarded request is never forwarded again.
 * Whoever may write the agent Leases of a namespace can point a forward elsewhere; the credential
 * then is good at no replica (it names the address it was sent to), but what the user sees and
 * types goes there, so that right is as strong as {@code create machineboots/console}.
 */
@ApplicationScoped
public class ReplicaForwards {
  /** The Lease annotation naming the admin address of the replica that holds the stream. */
  public static final String LIVE_ANNOTATION = "boot.chrootbooter.io/console-live-replica";

  /** The Lease annotation naming the admin address of the replica that records the console. */
  public static final String LOG_ANNOTATION = "boot.chrootbooter.io/console-log-replica";

  /** The header of the forward credential. */
  public static final String HEADER = "Chrootbooter-Forward";

  /** The header of the user's name (base64url of its UTF-8) that the credential is bound to. */
  public static final String USER_HEADER = "Chrootbooter-Forwarded-User";

  /** How long a forward credential is good. */
  static final Duration LIFETIME = Duration.ofSeconds(30);

  /** Clocks of two replicas may differ this much. */
  static final Duration SKEW = Duration.ofSeconds(30);

  /** The shortest time between two writes of one annotation of one machine by this replica. */
  static final Duration REPUBLISH = Duration.ofSeconds(10);

  /** Forwards remembered as used; more at once are refused. */
  static final int MAX_USED = 4096;

  /** What a replica holds of a machine's console. */
  public enum Held {
    /** The desired-state stream: the live console. */
    LIVE(LIVE_ANNOTATION),
    /** The recorded console. */
    LOG(LOG_ANNOTATION);

    final String annotation;

    Held(String annotation) {
      this.annotation = annotation;
    }
  }

  private final MachineTokens tokens;
  private final Enrolments enrolments;
  private final AgentLeases leases;
  private final Optional<URI> self;
  private final Clock clock = Clock.systemUTC();
  private final Map<String, Long> published = new ConcurrentHashMap<>();
  private final Map<String, Instant> used = new LinkedHashMap<>();

  ReplicaForwards(
      MachineTokens tokens,
      Enrolments enrolments,
      AgentLeases leases,
      @ConfigProperty(name = "cb.replica.admin-url") Optional<String> self) {
    this.tokens = tokens;
    this.enrolments = enrolments;
    this.leases = leases;
    this.self =
        self.filter(s -> !s.isBlank())
            .map(
                s ->
                    address(s)
                        .orElseThrow(
                            () ->
                                new IllegalArgumentException(
                                    "cb.replica.admin-url must be http(s)://host[:port], not "
                                        + s)));
  }

  /** This replica's admin address, when it has one. */
  public Optional<URI> self() {
    return self;
  }

  /**
   * {@code http(s)://host[:port]} of {@code value}: no user, path, query or fragment; empty for
   * anything else.
   */
  static Optional<URI> address(String value) {
    if (value == null || value.length() > 300) {
      return Optional.empty();
    }
    String v = value.endsWith("/") ? value.substring(0, value.length() - 1) : value;
    // An IPv6 pod address put in as it is (http://fd00::5:9000): the port is after the last colon.
    java.util.regex.Matcher bare =
        java.util.regex.Pattern.compile(
                "(https?)://([0-9a-fA-F]*:[0-9a-fA-F:]*:[0-9a-fA-F]*):(\\d+)")
            .matcher(v);
    if (bare.matches()) {
      v = bare.group(1) + "://[" + bare.group(2) + "]:" + bare.group(3);
    }
    try {
      URI uri = new URI(v);
      if (!("http".equals(uri.getScheme()) || "https".equals(uri.getScheme()))
          || uri.getHost() == null
          || uri.getRawUserInfo() != null
          || (uri.getRawPath() != null && !uri.getRawPath().isEmpty())
          || uri.getRawQuery() != null
          || uri.getRawFragment() != null) {
        return Optional.empty();
      }
      return Optional.of(uri);
    } catch (URISyntaxException e) {
      return Optional.empty();
    }
  }

  /**
   * The admin address of the other replica that holds {@code held} of {@code mb}, as this replica's
   * watch of its agent Lease shows it; empty when none is named, it is this replica, or the value
   * is no admin address. Never blocks.
   */
  public Optional<URI> elsewhere(MachineBoot mb, Held held) {
    return enrolments
        .watchedLease(mb)
        .map(l -> l.getMetadata().getAnnotations())
        .map(a -> a.get(held.annotation))
        .flatMap(ReplicaForwards::address)
        .filter(uri -> self.map(s -> !s.equals(uri)).orElse(true));
  }

  /**
   * This replica holds {@code held} of {@code mb}: written into its agent Lease in the background
   * when the Lease names another replica (or none). Never blocks.
   */
  public void publish(MachineBoot mb, Held held) {
    if (self.isEmpty()) {
      return;
    }
    String mine = self.get().toString();
    String named =
        enrolments
            .watchedLease(mb)
            .map(l -> l.getMetadata().getAnnotations())
            .map(a -> a.get(held.annotation))
            .orElse(null);
    if (mine.equals(named)) {
      return;
    }
    String key =
        mb.getMetadata().getNamespace() + "/" + mb.getMetadata().getName() + "/" + held.name();
    long now = System.nanoTime();
    Long last = published.get(key);
    if (last != null && now - last < REPUBLISH.toNanos()) {
      return;
    }
    published.put(key, now);
    leases.annotate(mb, held.annotation, mine);
  }

  /** Forgets what this replica published of a machine that is gone. */
  public void forget(String namespace, String name) {
    for (Held h : Held.values()) {
      published.remove(namespace + "/" + name + "/" + h.name());
    }
  }

  /** The headers of a forward of {@code user}'s request {@code want} to the replica {@code to}. */
  public Map<String, String> headers(
      URI to, ConsoleAccess.Want want, String namespace, String name, String user) {
    String credential =
        tokens.forward(binding(to, want, namespace, name, user), clock.instant().plus(LIFETIME));
    return Map.of(
        HEADER,
        credential,
        USER_HEADER,
        Base64.getUrlEncoder()
            .withoutPadding()
            .encodeToString(user.getBytes(StandardCharsets.UTF_8)));
  }

  /**
   * The user another replica checked and forwarded with {@code credential} and {@code userHeader},
   * when that credential was made for this replica, for {@code want} on {@code namespace/name}, is
   * not expired and was not used before; empty for anything else.
   */
  public Optional<String> accept(
      String credential,
      String userHeader,
      ConsoleAccess.Want want,
      String namespace,
      String name) {
    if (self.isEmpty() || credential == null || userHeader == null || userHeader.length() > 2048) {
      return Optional.empty();
    }
    String user;
    try {
      user = new String(Base64.getUrlDecoder().decode(userHeader), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
    if (user.isEmpty()) {
      return Optional.empty();
    }
    Optional<Instant> expires =
        tokens.forwardExpires(binding(self.get(), want, namespace, name, user), credential);
    Instant now = clock.instant();
    if (expires.isEmpty()
        || !expires.get().isAfter(now)
        || expires.get().isAfter(now.plus(LIFETIME).plus(SKEW))) {
      return Optional.empty();
    }
    String hash = BootCredentials.hash(credential);
    synchronized (used) {
      for (Iterator<Instant> it = used.values().iterator(); it.hasNext(); ) {
        if (!it.next().isAfter(now)) {
          it.remove();
        }
      }
      if (used.containsKey(hash) || used.size() >= MAX_USED) {
        return Optional.empty();
      }
      used.put(hash, expires.get());
    }
    return Optional.of(user);
  }

  private static byte[] binding(
      URI to, ConsoleAccess.Want want, String namespace, String name, String user) {
    return String.join("\u0000", to.toString(), want.name(), namespace, name, user)
        .getBytes(StandardCharsets.UTF_8);
  }
}
