package io.chrootbooter.pxe;

import io.chrootbooter.pxe.dhcp.KnownMachines;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Asks the operator whether a MAC has a MachineBoot: {@code GET <operator>/boot/<mac>.ipxe}, 200 =
 * known, 404 = unknown. Answers are cached for {@link #ttl} so a client's DHCP retransmissions and
 * its later iPXE DHCP run cost one request. An operator that cannot be reached, or answers anything
 * else, means "unknown" for that round (the client retries) and a warning.
 */
public final class OperatorMachines implements KnownMachines {
  private static final Logger LOG = System.getLogger(OperatorMachines.class.getName());

  /** Bounds the cache against a flood of made-up MACs. */
  private static final int MAX_ENTRIES = 4096;

  private final URI operator;
  private final Duration ttl;
  private final Clock clock;
  private final HttpClient http;
  private final Map<String, Entry> cache = new ConcurrentHashMap<>();

  private record Entry(boolean known, Instant expires) {}

  /**
   * @param operator base URL, e.g. {@code http://10.0.0.1:8080}
   * @param ttl how long an answer is reused
   */
  public OperatorMachines(URI operator, Duration ttl, Clock clock) {
    String base = operator.toString();
    this.operator = URI.create(base.endsWith("/") ? base.substring(0, base.length() - 1) : base);
    this.ttl = ttl;
    this.clock = clock;
    this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
  }

  @Override
  public boolean isKnown(String mac) {
    Instant now = clock.instant();
    Entry cached = cache.get(mac);
    if (cached != null && now.isBefore(cached.expires())) {
      return cached.known();
    }
    URI uri = URI.create(operator + "/boot/" + mac + ".ipxe");
    HttpRequest request = HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(2)).GET().build();
    int status;
    try {
      status = http.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
    } catch (IOException e) {
      LOG.log(Level.WARNING, "GET " + uri + ": " + e + "; treating " + mac + " as unknown");
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
    if (status != 200 && status != 404) {
      LOG.log(
          Level.WARNING,
          "GET " + uri + " answered " + status + "; expected 200 or 404; treating as unknown");
      return false;
    }
    if (cache.size() >= MAX_ENTRIES) {
      cache.clear();
    }
    cache.put(mac, new Entry(status == 200, now.plus(ttl)));
    return status == 200;
  }
}
