package io.chrootbooter.e2e.apiserver;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * A request URI split the way the API server routes it: {@code
 * /apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]?<query>}, or {@code
 * /api/v1/...} for the core group.
 *
 * @param group API group, empty for the core group
 * @param version API version
 * @param namespace namespace, or null for cluster scope or all namespaces
 * @param plural resource name
 * @param name object name, or null for the collection
 * @param subresource {@code status}, or null
 * @param query URL-decoded query parameters
 */
public record ResourcePath(
    String group,
    String version,
    String namespace,
    String plural,
    String name,
    String subresource,
    Map<String, String> query) {

  public ResourcePath {
    query = Map.copyOf(query);
  }

  /** Parses a resource URI; empty for discovery and other non-resource paths. */
  public static Optional<ResourcePath> parse(String uri) {
    int q = uri.indexOf('?');
    String path = q < 0 ? uri : uri.substring(0, q);
    Map<String, String> query = parseQuery(q < 0 ? "" : uri.substring(q + 1));
    String[] s = path.replaceAll("^/+|/+$", "").split("/");
    int at;
    String group;
    if (s.length >= 3 && s[0].equals("api")) {
      group = "";
      at = 1;
    } else if (s.length >= 4 && s[0].equals("apis")) {
      group = s[1];
      at = 2;
    } else {
      return Optional.empty();
    }
    String version = s[at++];
    String namespace = null;
    // "/api/v1/namespaces/default" is the namespace object itself, not a scope.
    if (s.length - at >= 3 && s[at].equals("namespaces")) {
      namespace = s[at + 1];
      at += 2;
    }
    String plural = s[at++];
    String name = at < s.length ? s[at++] : null;
    String sub = at < s.length ? s[at] : null;
    return Optional.of(new ResourcePath(group, version, namespace, plural, name, sub, query));
  }

  /** Decodes {@code a=b&c=d%3De}; the last value of a repeated key wins. */
  static Map<String, String> parseQuery(String raw) {
    Map<String, String> query = new LinkedHashMap<>();
    for (String pair : raw.split("&")) {
      if (pair.isEmpty()) {
        continue;
      }
      int eq = pair.indexOf('=');
      String key = eq < 0 ? pair : pair.substring(0, eq);
      String value = eq < 0 ? "" : pair.substring(eq + 1);
      query.put(decode(key), decode(value));
    }
    return query;
  }

  private static String decode(String s) {
    return URLDecoder.decode(s, StandardCharsets.UTF_8);
  }

  /** Whether this addresses a whole collection ({@code list} or {@code watch}). */
  public boolean isCollection() {
    return name == null;
  }

  /** Whether the client asked for a watch stream. */
  public boolean isWatch() {
    String watch = query.get("watch");
    return "true".equals(watch) || "1".equals(watch);
  }
}
