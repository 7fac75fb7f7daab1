package io.chrootbooter.operator.statuspage;

import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * Debian's headless {@code chromium}, driven through the Chrome DevTools Protocol over the JDK's
 * WebSocket client: no Selenium, no driver binary. It owns the browser process, its children and a
 * fresh profile folder, and {@link #close()} ends the processes and deletes the folder on every
 * path.
 */
public final class HeadlessChromium implements AutoCloseable {
  private static final Duration TIMEOUT = Duration.ofSeconds(30);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Process process;
  private final Path profile;
  private final WebSocket socket;
  private final AtomicLong ids = new AtomicLong();
  private final Map<Long, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
  private final List<String> problems = new CopyOnWriteArrayList<>();

  /** The {@code chromium} on the PATH, if any. */
  public static Optional<Path> executable() {
    return Stream.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
        .filter(dir -> !dir.isEmpty())
        .map(dir -> Path.of(dir, "chromium"))
        .filter(Files::isExecutable)
        .findFirst();
  }

  /** Starts the browser, logging its output to {@code log}. */
  public static HeadlessChromium start(Path executable, Path log) throws IOException {
    Path profile = Files.createTempDirectory("cb-chromium-");
    Process process = null;
    try {
      process =
          new ProcessBuilder(
                  executable.toString(),
                  "--headless",
                  "--no-sandbox",
                  "--disable-gpu",
                  "--disable-quic",
                  "--disable-dev-shm-usage",
                  "--no-first-run",
                  "--disable-background-networking",
                  "--disable-component-update",
                  "--disable-sync",
                  "--hide-scrollbars",
                  "--user-data-dir=" + profile,
                  "--remote-debugging-port=0",
                  "about:blank")
              .redirectErrorStream(true)
              .redirectOutput(log.toFile())
              .start();
      return new HeadlessChromium(process, profile);
    } catch (IOException | RuntimeException | Error e) {
      stop(process, profile);
      throw e;
    }
  }

  private HeadlessChromium(Process process, Path profile) {
    this.process = process;
    this.profile = profile;
    Path activePort = profile.resolve("DevToolsActivePort");
    // Chromium writes the port it chose and the browser's WebSocket path once it listens.
    List<String> lines =
        await("chromium writes " + activePort)
            .atMost(TIMEOUT)
            .pollInterval(Duration.ofMillis(100))
            .until(
                () -> {
                  if (!process.isAlive()) {
                    throw new IllegalStateException(
                        "chromium exited with status " + process.exitValue());
                  }
                  return Files.exists(activePort) ? Files.readAllLines(activePort) : List.of();
                },
                l -> l.size() >= 2);
    URI uri = URI.create("ws://127.0.0.1:" + lines.get(0).trim() + lines.get(1).trim());
    socket =
        HttpClient.newHttpClient()
            .newWebSocketBuilder()
            .connectTimeout(TIMEOUT)
            .buildAsync(uri, new Listener())
            .orTimeout(TIMEOUT.toSeconds(), TimeUnit.SECONDS)
            .join();
  }

  /** Opens a tab of {@code width}×{@code height} CSS pixels on {@code url}. */
  public Tab open(String url, int width, int height) {
    String target =
        call(null, "Target.createTarget", Map.of("url", "about:blank")).get("targetId").asText();
    String session =
        call(null, "Target.attachToTarget", Map.of("targetId", target, "flatten", true))
            .get("sessionId")
            .asText();
    Tab tab = new Tab(session);
    call(session, "Runtime.enable", Map.of());
    call(session, "Page.enable", Map.of());
    call(session, "Log.enable", Map.of());
    tab.resize(width, height);
    call(session, "Page.navigate", Map.of("url", url));
    return tab;
  }

  /**
   * Uncaught page exceptions, console errors, failed loads and policy violations seen so far, as
   * text: a page that works has none.
   */
  public List<String> problems() {
    return List.copyOf(problems);
  }

  /** One tab, attached through a flat DevTools session. */
  public final class Tab {
    private final String session;

    private Tab(String session) {
      this.session = session;
    }

    /** The value of a JavaScript expression (awaited if a promise), as JSON. */
    public JsonNode evaluate(String expression) {
      JsonNode result =
          call(
              session,
              "Runtime.evaluate",
              Map.of("expression", expression, "returnByValue", true, "awaitPromise", true));
      if (result.has("exceptionDetails")) {
        throw new IllegalStateException(
            "JavaScript `" + expression + "` threw: " + result.get("exceptionDetails"));
      }
      return result.path("result").path("value");
    }

    /** Resizes the viewport. */
    public void resize(int width, int height) {
      call(
          session,
          "Emulation.setDeviceMetricsOverride",
          Map.of("width", width, "height", height, "deviceScaleFactor", 1, "mobile", false));
    }

    /** Saves a PNG of the whole page to {@code file}. */
    public void screenshot(Path file) throws IOException {
      int width = evaluate("document.documentElement.clientWidth").asInt();
      int height = evaluate("document.documentElement.scrollHeight").asInt();
      resize(width, height);
      String data =
          call(session, "Page.captureScreenshot", Map.of("format", "png")).get("data").asText();
      Files.createDirectories(file.toAbsolutePath().getParent());
      Files.write(file, Base64.getDecoder().decode(data));
    }
  }

  private JsonNode call(String session, String method, Map<String, Object> params) {
    long id = ids.incrementAndGet();
    ObjectNode message = JSON.createObjectNode();
    message.put("id", id);
    message.put("method", method);
    message.set("params", JSON.valueToTree(params));
    if (session != null) {
      message.put("sessionId", session);
    }
    CompletableFuture<JsonNode> reply = new CompletableFuture<>();
    pending.put(id, reply);
    synchronized (socket) {
      // The JDK's WebSocket takes one outstanding send at a time.
      socket
          .sendText(message.toString(), true)
          .orTimeout(TIMEOUT.toSeconds(), TimeUnit.SECONDS)
          .join();
    }
    JsonNode response = reply.orTimeout(TIMEOUT.toSeconds(), TimeUnit.SECONDS).join();
    if (response.has("error")) {
      throw new IllegalStateException(method + " failed: " + response.get("error"));
    }
    return response.path("result");
  }

  private final class Listener implements WebSocket.Listener {
    private final StringBuilder text = new StringBuilder();

    @Override
    public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
      text.append(data);
      if (last) {
        received(text.toString());
        text.setLength(0);
      }
      ws.request(1);
      return null;
    }

    @Override
    public void onError(WebSocket ws, Throwable error) {
      pending.values().forEach(f -> f.completeExceptionally(error));
    }

    private void received(String raw) {
      JsonNode message;
      try {
        message = JSON.readTree(raw);
      } catch (IOException e) {
        throw new UncheckedIOException("DevTools sent no JSON: " + raw, e);
      }
      if (message.has("id")) {
        CompletableFuture<JsonNode> reply = pending.remove(message.get("id").asLong());
        if (reply != null) {
          reply.complete(message);
        }
        return;
      }
      String method = message.path("method").asText();
      JsonNode params = message.path("params");
      switch (method) {
        case "Runtime.exceptionThrown" ->
            problems.add("exception: " + params.path("exceptionDetails"));
        case "Runtime.consoleAPICalled" -> {
          if (params.path("type").asText().equals("error")) {
            problems.add("console.error: " + params.path("args"));
          }
        }
        case "Log.entryAdded" -> {
          // Failed loads and Content-Security-Policy violations end up here.
          if (params.path("entry").path("level").asText().equals("error")) {
            problems.add("log: " + params.path("entry").path("text").asText());
          }
        }
        default -> {}
      }
    }
  }

  @Override
  public void close() {
    try {
      socket.abort();
    } finally {
      stop(process, profile);
    }
  }

  /** Ends the browser and every process it started, then deletes its profile. */
  private static void stop(Process process, Path profile) {
    if (process != null) {
      List<ProcessHandle> children = new ArrayList<>(process.descendants().toList());
      process.destroy();
      try {
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
          process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
      }
      children.forEach(ProcessHandle::destroyForcibly);
      children.forEach(
          c -> c.onExit().orTimeout(10, TimeUnit.SECONDS).exceptionally(t -> c).join());
    }
    deleteTree(profile);
  }

  private static void deleteTree(Path root) {
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (NoSuchFileException gone) {
      // Nothing left to delete.
    } catch (IOException e) {
      throw new UncheckedIOException("deleting chromium's profile " + root, e);
    }
  }
}
