package io.chrootbooter.agent.fetch;

import java.net.URI;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * The session the agent holds with its operator, for image downloads from the operator: the
 * operator serves {@code /images/} only to enrolled machines. The {@code Authorization} header is
 * added to a request only when its URL has exactly the operator's origin (scheme, host and port),
 * never to another image source, and such a request follows no redirect (the header would travel
 * with it).
 *
 * <p>One per agent process, set once the operator client exists, like the pinned TLS context.
 */
public final class OperatorCredential {
  private static volatile OperatorCredential current;

  private final String origin;
  private final Supplier<String> authorization;

  private OperatorCredential(URI origin, Supplier<String> authorization) {
    this.origin = origin(origin);
    this.authorization = Objects.requireNonNull(authorization, "authorization");
  }

  /**
   * Image downloads from {@code origin} carry {@code authorization.get()} (e.g. {@code Bearer …})
   * from now on.
   */
  public static void use(URI origin, Supplier<String> authorization) {
    current = new OperatorCredential(origin, authorization);
  }

  /** No credential is sent any more (tests, and an agent without an operator). */
  public static void clear() {
    current = null;
  }

  /** The {@code Authorization} value for a request to {@code url}, or null for none. */
  public static String forUrl(URI url) {
    OperatorCredential c = current;
    if (c == null || !c.origin.equals(origin(url))) {
      return null;
    }
    return c.authorization.get();
  }

  /** {@code scheme://host:port} in lower case, the port made explicit. */
  static String origin(URI uri) {
    String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
    int port = uri.getPort();
    if (port < 0) {
      port = scheme.equals("https") ? 443 : scheme.equals("http") ? 80 : -1;
    }
    String host = uri.getHost() == null ? "" : uri.getHost().toLowerCase(Locale.ROOT);
    return scheme + "://" + host + ":" + port;
  }
}
