package io.chrootbooter.agent.bootstrap;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The operator's agent API as a bootstrap in QEMU sees it, on 127.0.0.1, for one squashfs image:
 * enrolment (one nonce, one session), the desired-state stream (the state the test sets, sent on
 * connect and pushed on change), status and console posts recorded, the image at {@code
 * /images/NAME} with HEAD, {@code Range: bytes=a-b} answers (206, its digest as ETag) and whole
 * GETs, and its dm-verity hash tree at {@code /verity/SHA256}; the session is required for all but
 * enrolment. It counts range answers and whole downloads of the image, so that a test can tell a
 * Lazy load from a download.
 */
final class LazyOperator implements AutoCloseable {
  static final String NONCE = "lazy-boot-nonce-0123456789";
  static final String SESSION = "lazy-boot-session";
  private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-(\\d+)");

  private final HttpServer server;
  private final ExecutorService executor = Executors.newCachedThreadPool();
  private final Path image;
  private final String sha256;
  private final Path tree;
  private final List<OutputStream> streams = new CopyOnWriteArrayList<>();
  private final List<String> reports = new CopyOnWriteArrayList<>();
  private final AtomicInteger ranges = new AtomicInteger();
  private final AtomicInteger wholeDownloads = new AtomicInteger();
  private final AtomicInteger treeDownloads = new AtomicInteger();
  private volatile String state;
  private volatile String stateId;

  LazyOperator(String mac, Path image, String sha256, Path tree) throws IOException {
    this.image = image;
    this.sha256 = sha256;
    this.tree = tree;
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.setExecutor(executor);
    String machine = "/agent/v1/machines/" + mac;
    server.createContext(machine + "/enroll", this::enroll);
    server.createContext(machine + "/session", this::enroll);
    server.createContext(machine + "/desired", this::desired);
    server.createContext(machine + "/status", this::status);
    server.createContext(machine + "/console", this::console);
    server.createContext("/images/", this::image);
    server.createContext("/verity/", this::tree);
    server.start();
  }

  int port() {
    return server.getAddress().getPort();
  }

  /** Sets the desired state (JSON) and pushes it, as event {@code gen-GENERATION}. */
  synchronized void push(String json, long generation) {
    state = json;
    stateId = "gen-" + generation;
    for (OutputStream out : streams) {
      try {
        send(out);
      } catch (IOException gone) {
        streams.remove(out);
      }
    }
  }

  /** The status reports, as the agent posted them, oldest first. */
  List<String> reports() {
    return reports;
  }

  /** The image's range requests answered 206. */
  int ranges() {
    return ranges.get();
  }

  /** GETs of the whole image (no Range). */
  int wholeDownloads() {
    return wholeDownloads.get();
  }

  /** Downloads of the hash tree. */
  int treeDownloads() {
    return treeDownloads.get();
  }

  private void send(OutputStream out) throws IOException {
    out.write(
        ("event: desired\nid: " + stateId + "\ndata: " + state + "\n\n")
            .getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  private boolean authorized(HttpExchange exchange) throws IOException {
    if (!("Bearer " + SESSION).equals(exchange.getRequestHeaders().getFirst("Authorization"))) {
      exchange.sendResponseHeaders(401, -1);
      exchange.close();
      return false;
    }
    return true;
  }

  private void enroll(HttpExchange exchange) throws IOException {
    String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
    boolean refresh = exchange.getRequestURI().getPath().endsWith("/session");
    if (refresh ? !authorized(exchange) : !body.contains("\"" + NONCE + "\"")) {
      if (!refresh) {
        exchange.sendResponseHeaders(401, -1);
        exchange.close();
      }
      return;
    }
    byte[] answer =
        ("{\"session\":\""
                + SESSION
                + "\",\"expiresAt\":\""
                + Instant.now().plus(Duration.ofHours(1))
                + "\"}")
            .getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    exchange.sendResponseHeaders(200, answer.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(answer);
    }
  }

  private void desired(HttpExchange exchange) throws IOException {
    if (!authorized(exchange)) {
      return;
    }
    String since = exchange.getRequestHeaders().getFirst("Last-Event-ID");
    exchange.getResponseHeaders().add("Content-Type", "text/event-stream");
    exchange.sendResponseHeaders(200, 0);
    OutputStream out = exchange.getResponseBody();
    synchronized (this) {
      if (state != null && !stateId.equals(since)) {
        send(out);
      } else {
        out.write(": connected\n\n".getBytes(StandardCharsets.UTF_8));
        out.flush();
      }
      streams.add(out);
    }
  }

  private void status(HttpExchange exchange) throws IOException {
    if (!authorized(exchange)) {
      return;
    }
    reports.add(new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
    exchange.sendResponseHeaders(202, -1);
    exchange.close();
  }

  private void console(HttpExchange exchange) throws IOException {
    if (!authorized(exchange)) {
      return;
    }
    exchange.getRequestBody().readAllBytes();
    exchange.sendResponseHeaders(202, -1);
    exchange.close();
  }

  private void tree(HttpExchange exchange) throws IOException {
    try (exchange) {
      if (!authorized(exchange)) {
        return;
      }
      if (!exchange.getRequestURI().getPath().equals("/verity/" + sha256)) {
        exchange.sendResponseHeaders(404, -1);
        return;
      }
      treeDownloads.incrementAndGet();
      exchange.sendResponseHeaders(200, Files.size(tree));
      Files.copy(tree, exchange.getResponseBody());
    } catch (IOException gone) {
      // the client went away
    }
  }

  private void image(HttpExchange exchange) throws IOException {
    try (exchange) {
      if (!authorized(exchange)) {
        return;
      }
      if (!exchange.getRequestURI().getPath().equals("/images/" + image.getFileName())) {
        exchange.sendResponseHeaders(404, -1);
        return;
      }
      long length = Files.size(image);
      exchange.getResponseHeaders().add("ETag", "\"" + sha256 + "\"");
      exchange.getResponseHeaders().add("Accept-Ranges", "bytes");
      if (exchange.getRequestMethod().equals("HEAD")) {
        exchange.getResponseHeaders().add("Content-Length", String.valueOf(length));
        exchange.sendResponseHeaders(200, -1);
        return;
      }
      String range = exchange.getRequestHeaders().getFirst("Range");
      Matcher m = range == null ? null : RANGE.matcher(range);
      if (m == null || !m.matches()) {
        wholeDownloads.incrementAndGet();
        exchange.sendResponseHeaders(200, length);
        Files.copy(image, exchange.getResponseBody());
        return;
      }
      long from = Long.parseLong(m.group(1));
      long to = Math.min(Long.parseLong(m.group(2)), length - 1);
      if (from > to) {
        exchange.sendResponseHeaders(416, -1);
        return;
      }
      byte[] part = new byte[Math.toIntExact(to - from + 1)];
      try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "r")) {
        f.seek(from);
        f.readFully(part);
      }
      exchange.getResponseHeaders().add("Content-Range", "bytes " + from + "-" + to + "/" + length);
      ranges.incrementAndGet();
      exchange.sendResponseHeaders(206, part.length);
      exchange.getResponseBody().write(part);
    } catch (IOException gone) {
      // the client went away
    }
  }

  @Override
  public void close() {
    for (OutputStream out : streams) {
      try {
        out.close();
      } catch (IOException ignored) {
        // already gone
      }
    }
    server.stop(0);
    executor.shutdownNow();
  }
}
