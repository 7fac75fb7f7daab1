package io.chrootbooter.operator;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsParameters;
import com.sun.net.httpserver.HttpsServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;

/**
 * An image source on loopback that the tests control: it serves files with {@code Range} support
 * and an {@code ETag}, and can answer an error, redirect, drop the connection after some bytes,
 * stall until released, or announce more bytes than it sends. Over https with {@link
 * #https(SSLContext)}.
 *
 * <p>It listens on {@link #HOST}, the one loopback address the test profile allows image sources on
 * ({@code cb.store.allowed-sources}); a server on any other address stands for a source the
 * operator must refuse.
 */
public final class ImageServer implements AutoCloseable {
  /** The address image servers listen on, unless told otherwise. */
  public static final String HOST = "127.0.0.2";

  private static final Pattern RANGE = Pattern.compile("^bytes=(\\d+)-$");

  /** How one file misbehaves. */
  public record Behaviour(int status, long dropAfter, long stallAt, boolean lieAboutLength) {
    public static Behaviour normal() {
      return new Behaviour(200, -1, -1, false);
    }
  }

  private final HttpServer server;
  private final Map<String, byte[]> files = new ConcurrentHashMap<>();
  private final Map<String, Behaviour> behaviours = new ConcurrentHashMap<>();
  private final Map<String, Long> announced = new ConcurrentHashMap<>();
  private final Map<String, Duration> paces = new ConcurrentHashMap<>();
  private final Map<String, Map.Entry<Integer, String>> redirects = new ConcurrentHashMap<>();
  private final AtomicInteger handshakes;
  private final String scheme;
  private final List<String> requests = new CopyOnWriteArrayList<>();
  private volatile CountDownLatch stall = new CountDownLatch(0);
  private final java.util.Set<String> stallEachTime =
      java.util.concurrent.ConcurrentHashMap.newKeySet();

  public ImageServer() throws IOException {
    this(HOST);
  }

  /** A server on {@code host}, such as a loopback address the operator must not fetch from. */
  public ImageServer(String host) throws IOException {
    this(HttpServer.create(new InetSocketAddress(host, 0), 0), "http");
  }

  /** A server on https with the certificate of {@code tls}; counts the TLS connections. */
  public static ImageServer https(SSLContext tls) throws IOException {
    HttpsServer server = HttpsServer.create(new InetSocketAddress(HOST, 0), 0);
    AtomicInteger handshakes = new AtomicInteger();
    server.setHttpsConfigurator(
        new HttpsConfigurator(tls) {
          @Override
          public void configure(HttpsParameters params) {
            // Called once per accepted connection, before its handshake.
            handshakes.incrementAndGet();
            super.configure(params);
          }
        });
    return new ImageServer(server, "https", handshakes);
  }

  private ImageServer(HttpServer server, String scheme) {
    this(server, scheme, new AtomicInteger());
  }

  private ImageServer(HttpServer server, String scheme, AtomicInteger handshakes) {
    this.server = server;
    this.scheme = scheme;
    this.handshakes = handshakes;
    server.setExecutor(Executors.newCachedThreadPool());
    server.createContext("/", this::handle);
    server.start();
  }

  /** The URL of a file. */
  public String url(String name) {
    return scheme
        + "://"
        + server.getAddress().getAddress().getHostAddress()
        + ":"
        + server.getAddress().getPort()
        + "/"
        + name;
  }

  /** The URL of a file with another host name for the server's address, such as localhost. */
  public String url(String host, String name) {
    return scheme + "://" + host + ":" + server.getAddress().getPort() + "/" + name;
  }

  /** Answers requests for {@code name} with {@code status} and this Location. */
  public void redirect(String name, int status, String location) {
    redirects.put(name, Map.entry(status, location));
  }

  /** Serves {@code bytes} as {@code name}; returns their SHA-256. */
  public String put(String name, byte[] bytes) {
    files.put(name, bytes);
    behaviours.put(name, Behaviour.normal());
    return sha256(bytes);
  }

  public void behave(String name, Behaviour behaviour) {
    behaviours.put(name, behaviour);
  }

  /** Announces {@code length} as the Content-Length of {@code name}, whatever it sends. */
  public void announce(String name, long length) {
    announced.put(name, length);
  }

  /** Sends {@code name} slowly: one 4 KiB chunk per {@code perChunk}. */
  public void pace(String name, Duration perChunk) {
    paces.put(name, perChunk);
  }

  /** The TLS connections accepted so far (https only). */
  public int handshakes() {
    return handshakes.get();
  }

  /**
   * Makes the next response that reaches its {@code stallAt} byte wait for {@link #release()}; the
   * file then stalls no more.
   */
  public void holdStalls() {
    stall = new CountDownLatch(1);
  }

  public void release() {
    stall.countDown();
  }

  /**
   * Makes every response of {@code name} that reaches its {@code stallAt} byte wait for {@link
   * #release()}, a resumed one too: a download that stays in progress however often the mirror
   * gives up on a stalled connection and resumes.
   */
  public void stallEachTime(String name) {
    stallEachTime.add(name);
  }

  /** Every request so far, as {@code "GET /name Range: … If-Range: …"}. */
  public List<String> requests() {
    return List.copyOf(requests);
  }

  private void handle(HttpExchange ex) throws IOException {
    String name = ex.getRequestURI().getPath().substring(1);
    String range = ex.getRequestHeaders().getFirst("Range");
    String ifRange = ex.getRequestHeaders().getFirst("If-Range");
    requests.add(
        ex.getRequestMethod()
            + " /"
            + name
            + (range == null ? "" : " Range: " + range)
            + (ifRange == null ? "" : " If-Range: " + ifRange));
    Map.Entry<Integer, String> redirect = redirects.get(name);
    if (redirect != null) {
      ex.getResponseHeaders().add("Location", redirect.getValue());
      ex.sendResponseHeaders(redirect.getKey(), -1);
      ex.close();
      return;
    }
    byte[] bytes = files.get(name);
    Behaviour b = behaviours.getOrDefault(name, Behaviour.normal());
    if (bytes == null || b.status() != 200) {
      ex.sendResponseHeaders(bytes == null ? 404 : b.status(), -1);
      ex.close();
      return;
    }
    String etag = "\"" + sha256(bytes).substring(0, 16) + "\"";
    ex.getResponseHeaders().add("ETag", etag);
    long start = 0;
    Matcher m = range == null ? null : RANGE.matcher(range);
    if (m != null && m.matches() && (ifRange == null || ifRange.equals(etag))) {
      start = Long.parseLong(m.group(1));
      ex.getResponseHeaders()
          .add("Content-Range", "bytes " + start + "-" + (bytes.length - 1) + "/" + bytes.length);
      ex.sendResponseHeaders(206, bytes.length - start);
    } else {
      long length = announced.getOrDefault(name, (long) bytes.length);
      ex.sendResponseHeaders(200, b.lieAboutLength() ? length + 1000 : length);
    }
    try (OutputStream out = ex.getResponseBody()) {
      for (long i = start; i < bytes.length; i += 4096) {
        if (b.dropAfter() >= 0 && i >= b.dropAfter() && start == 0) {
          // Drop the connection mid-body, once: a resumed request gets the rest.
          behaviours.put(name, new Behaviour(200, -1, b.stallAt(), false));
          throw new IOException("dropping the connection at byte " + i);
        }
        if (b.stallAt() >= 0 && i >= b.stallAt()) {
          // Stall once (a resumed request gets the rest), unless it stalls each time.
          if (!stallEachTime.contains(name)) {
            behaviours.put(name, new Behaviour(200, -1, -1, false));
          }
          try {
            stall.await();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
          }
        }
        Duration pace = paces.get(name);
        if (pace != null) {
          try {
            Thread.sleep(pace.toMillis());
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
          }
        }
        out.write(bytes, (int) i, (int) Math.min(4096, bytes.length - i));
        out.flush();
      }
    }
  }

  public static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    release();
    server.stop(0);
    ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
  }
}
