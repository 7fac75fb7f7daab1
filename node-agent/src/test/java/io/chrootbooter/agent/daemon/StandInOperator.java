package io.chrootbooter.agent.daemon;

import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import java.util.function.Supplier;
import org.awaitility.core.ConditionTimeoutException;

/**
 * The operator's agent API as the agent sees it, on loopback, for the agent's own tests: the
 * desired-state stream (events pushed by the test; the last one replayed on connect unless the
 * client's {@code Last-Event-ID} names it), status reports recorded, enrolment answered, bearer
 * session checked (images too), and image files served. The real operator's side is tested against
 * the real agent client in e2e.
 */
final class StandInOperator implements AutoCloseable {
  static final String MAC = "52:54:00:aa:bb:01";

  /** The boot nonce the agent is started with, and the session it is exchanged for. */
  static final String NONCE = "test-nonce-0123456789";

  static final String SESSION = "test-session-1";

  private final HttpServer server;
  private final ObjectMapper mapper = new ObjectMapper();
  private final List<OutputStream> streams = new CopyOnWriteArrayList<>();
  private final List<JsonNode> reports = new CopyOnWriteArrayList<>();
  private final List<String> lastEventIds = new CopyOnWriteArrayList<>();
  private final Map<String, Path> files = new ConcurrentHashMap<>();
  private final AtomicInteger connections = new AtomicInteger();
  private final AtomicInteger modulesRequests = new AtomicInteger();
  private final java.util.Set<String> stalled = ConcurrentHashMap.newKeySet();
  private final AtomicInteger stalledRequests = new AtomicInteger();
  private final java.util.concurrent.CountDownLatch closing =
      new java.util.concurrent.CountDownLatch(1);
  private volatile String lastEvent;
  private volatile String lastId;

  StandInOperator() throws IOException {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.setExecutor(Executors.newCachedThreadPool());
    server.createContext("/agent/v1/machines/" + MAC + "/enroll", this::enroll);
    server.createContext("/agent/v1/machines/" + MAC + "/desired", this::desired);
    server.createContext("/agent/v1/machines/" + MAC + "/status", this::status);
    server.createContext("/agent/v1/machines/" + MAC + "/console", this::console);
    server.createContext("/images/", this::image);
    server.createContext("/bootstrap/", this::image);
    server.start();
  }

  String url() {
    return "http://127.0.0.1:" + server.getAddress().getPort();
  }

  /** Serves {@code file} at {@code /images/NAME}; returns its URL. */
  String serve(String name, Path file) {
    files.put(name, file);
    return url() + "/images/" + name;
  }

  /** Serves {@code file} as the bootstrap's modules image, at {@code /bootstrap/modules}. */
  void serveModules(Path file) {
    files.put("bootstrap/modules", file);
  }

  /** How many requests for {@code /bootstrap/modules} there were. */
  int modulesRequests() {
    return modulesRequests.get();
  }

  /**
   * Serves the first half of {@code file} at {@code /images/NAME}, then stalls (the connection
   * stays open, nothing more comes) until this server closes; returns its URL.
   */
  String serveStalled(String name, Path file) {
    stalled.add(name);
    return serve(name, file);
  }

  /** How many requests for stalled files have had their first half. */
  int stalledRequests() {
    return stalledRequests.get();
  }

  /** Pushes a desired state (JSON) with id {@code gen-N} to every open stream. */
  synchronized void push(String json, long generation) throws IOException {
    lastEvent = json;
    lastId = "gen-" + generation;
    for (OutputStream out : streams) {
      try {
        send(out, lastId, json);
      } catch (IOException gone) {
        streams.remove(out);
      }
    }
  }

  /** Ends every open stream, as an operator restart does. */
  void dropStreams() {
    for (OutputStream out : streams) {
      try {
        out.close();
      } catch (IOException ignored) {
        // already gone
      }
    }
    streams.clear();
  }

  private final Map<JsonNode, Long> received =
      java.util.Collections.synchronizedMap(new java.util.IdentityHashMap<>());

  /** When {@code report} (one of {@link #reports()}) arrived here, {@link System#nanoTime()}. */
  long receivedNanos(JsonNode report) {
    return received.get(report);
  }

  List<JsonNode> reports() {
    return reports;
  }

  /** The last report, or null. */
  /**
   * The first last report that meets {@code condition} within 30 s; on timeout, an AssertionError
   * with the last reports and what {@code console} printed.
   */
  JsonNode awaitReport(Predicate<JsonNode> condition, Supplier<String> console) {
    try {
      return await()
          .atMost(Duration.ofSeconds(30))
          .pollInterval(Duration.ofMillis(20))
          .until(
              () -> {
                JsonNode last = last();
                return last != null && condition.test(last) ? last : null;
              },
              r -> r != null);
    } catch (ConditionTimeoutException e) {
      List<JsonNode> all = reports();
      throw new AssertionError(
          "no such report within 30 s; the last reports:\n  "
              + String.join(
                  "\n  ",
                  all.subList(Math.max(0, all.size() - 8), all.size()).stream()
                      .map(JsonNode::toString)
                      .toList())
              + "\nconsole:\n"
              + console.get(),
          e);
    }
  }

  JsonNode last() {
    return reports.isEmpty() ? null : reports.get(reports.size() - 1);
  }

  int connections() {
    return connections.get();
  }

  List<String> lastEventIds() {
    return lastEventIds;
  }

  private static void send(OutputStream out, String id, String json) throws IOException {
    out.write(
        ("event: desired\nid: " + id + "\ndata: " + json + "\n\n")
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

  private void desired(HttpExchange exchange) throws IOException {
    if (!authorized(exchange)) {
      return;
    }
    connections.incrementAndGet();
    String since = exchange.getRequestHeaders().getFirst("Last-Event-ID");
    lastEventIds.add(since == null ? "" : since);
    exchange.getResponseHeaders().add("Content-Type", "text/event-stream");
    exchange.sendResponseHeaders(200, 0);
    OutputStream out = exchange.getResponseBody();
    synchronized (this) {
      if (lastEvent != null && !lastId.equals(since)) {
        send(out, lastId, lastEvent);
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
    JsonNode report = mapper.readTree(exchange.getRequestBody().readAllBytes());
    received.put(report, System.nanoTime());
    reports.add(report);
    exchange.sendResponseHeaders(202, -1);
    exchange.close();
  }

  /** The console chunks the agent posted, in order. */
  final java.util.List<JsonNode> consoleChunks = new java.util.concurrent.CopyOnWriteArrayList<>();

  private void console(HttpExchange exchange) throws IOException {
    if (!authorized(exchange)) {
      return;
    }
    consoleChunks.add(mapper.readTree(exchange.getRequestBody().readAllBytes()));
    exchange.sendResponseHeaders(202, -1);
    exchange.close();
  }

  private void enroll(HttpExchange exchange) throws IOException {
    JsonNode body = new ObjectMapper().readTree(exchange.getRequestBody());
    if (!NONCE.equals(body.path("nonce").asText())) {
      exchange.sendResponseHeaders(401, -1);
      exchange.close();
      return;
    }
    byte[] answer =
        ("{\"session\":\""
                + SESSION
                + "\",\"expiresAt\":\""
                + java.time.Instant.now().plus(Duration.ofHours(1))
                + "\"}")
            .getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    exchange.sendResponseHeaders(200, answer.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(answer);
    }
  }

  private void image(HttpExchange exchange) throws IOException {
    String path = exchange.getRequestURI().getPath();
    if (path.startsWith("/images/") && !authorized(exchange)) {
      return; // as the operator: images only to enrolled machines, the bootstrap to anyone
    }
    String name =
        path.startsWith("/bootstrap/") ? path.substring(1) : path.substring("/images/".length());
    if (name.equals("bootstrap/modules")) {
      modulesRequests.incrementAndGet();
    }
    Path file = files.get(name);
    if (file == null) {
      exchange.sendResponseHeaders(404, -1);
      exchange.close();
      return;
    }
    exchange.sendResponseHeaders(200, Files.size(file));
    try (OutputStream out = exchange.getResponseBody()) {
      if (!stalled.contains(name)) {
        Files.copy(file, out);
        return;
      }
      byte[] bytes = Files.readAllBytes(file);
      out.write(bytes, 0, bytes.length / 2);
      out.flush();
      stalledRequests.incrementAndGet();
      try {
        closing.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  @Override
  public void close() {
    closing.countDown();
    dropStreams();
    server.stop(0);
  }
}
