package io.chrootbooter.agent.operator;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.StatusReport;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import org.jboss.logging.Logger;

/**
 * The agent's HTTP client for its operator: follows the desired-state stream (reconnecting with
 * backoff and {@code Last-Event-ID}, surviving operator restarts and network loss) and posts status
 * reports. The token travels only in the {@code Authorization} header and is never logged.
 */
public final class OperatorClient implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(OperatorClient.class);

  /** No line (not even a heartbeat, sent every 15 s) for this long: the stream is dead. */
  static final Duration SILENCE = Duration.ofSeconds(45);

  static final Duration FIRST_BACKOFF = Duration.ofMillis(500);
  static final Duration MAX_BACKOFF = Duration.ofSeconds(30);

  // A newer operator may send fields, actions and formats this agent does not know: fields are
  // ignored, an unknown action or format reads as null (the event is skipped, or its load fails
  // naming the formats this agent knows).
  private static final ObjectMapper MAPPER =
      new ObjectMapper()
          .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false)
          .enable(DeserializationFeature.READ_UNKNOWN_ENUM_VALUES_AS_NULL);

  private final URI machine;
  private final String authorization;
  private final HttpClient http;
  private final ScheduledExecutorService watchdog =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "cb-stream-watchdog");
            t.setDaemon(true);
            return t;
          });
  private volatile boolean closed;
  private volatile InputStream open;
  private volatile String lastEventId;

  /**
   * @param operator the operator's base URL ({@code cb.operator})
   * @param mac the machine's MAC, lowercase with colons
   * @param token the machine token ({@code cb.token})
   * @param tls the pinned TLS context for an {@code https} operator, empty for the JDK default
   */
  public OperatorClient(URI operator, String mac, String token, Optional<SSLContext> tls) {
    String base = operator.toString().replaceAll("/+$", "");
    if (!base.startsWith("http://") && !base.startsWith("https://")) {
      throw new IllegalArgumentException(
          "cb.operator \"" + operator + "\" is not an http:// or https:// URL");
    }
    if (!mac.matches("([0-9a-f]{2}:){5}[0-9a-f]{2}")) {
      throw new IllegalArgumentException("cb.mac \"" + mac + "\" is not a MAC address");
    }
    if (token == null || token.isBlank() || !token.matches("[\\x21-\\x7e]+")) {
      throw new IllegalArgumentException("cb.token is missing or holds non-printable characters");
    }
    this.machine = URI.create(base + "/agent/v1/machines/" + mac);
    this.authorization = "Bearer " + token;
    HttpClient.Builder builder =
        HttpClient.newBuilder()
            .connectTimeout(Duration.ofSeconds(5))
            .version(HttpClient.Version.HTTP_1_1);
    if (tls.isPresent()) {
      builder.sslContext(tls.get());
    } else if (base.startsWith("http://")) {
      builder.sslContext(trustingNothing());
    }
    this.http = builder.build();
  }

  /**
   * The TLS context of a client for an {@code http://} operator, which never makes a TLS
   * connection: one that trusts no certificate. Without it the client builds the JDK's default
   * context, which reads and parses the whole trust store (seconds in an emulated guest).
   */
  private static SSLContext trustingNothing() {
    try {
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(new KeyManager[0], new TrustManager[0], null);
      return context;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("TLS context for an http:// operator: " + e.getMessage(), e);
    }
  }

  /** The URL of this machine's agent API, for messages. */
  public URI machineUrl() {
    return machine;
  }

  /**
   * Follows the stream until {@link #close()}: every {@code desired} event goes to {@code
   * onDesired} (on this thread, in order); {@code onConnected} runs after each (re)connection.
   * Blocks; run it on its own thread.
   */
  public void follow(Consumer<DesiredState> onDesired, Runnable onConnected) {
    Duration backoff = FIRST_BACKOFF;
    while (!closed) {
      try {
        if (streamOnce(onDesired, onConnected)) {
          backoff = FIRST_BACKOFF; // it was up: the next attempt starts fresh
        }
      } catch (IOException e) {
        if (!closed) {
          // java.net.http's ConnectException has no message: name the failure by its class.
          LOG.warnf(
              "desired-state stream from %s: %s; retrying",
              machine, e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName());
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      if (closed) {
        return;
      }
      long millis = backoff.toMillis();
      long jittered = millis / 2 + ThreadLocalRandom.current().nextLong(millis / 2 + 1);
      try {
        Thread.sleep(jittered);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      backoff =
          backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0
              ? MAX_BACKOFF
              : backoff.multipliedBy(2);
    }
  }

  /** One connection; true when it was established (200). */
  private boolean streamOnce(Consumer<DesiredState> onDesired, Runnable onConnected)
      throws IOException, InterruptedException {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(URI.create(machine + "/desired"))
            .header("Authorization", authorization)
            .header("Accept", "text/event-stream")
            .GET();
    String last = lastEventId;
    if (last != null) {
      request.header("Last-Event-ID", last);
    }
    HttpResponse<InputStream> response =
        http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
    try (InputStream body = response.body()) {
      if (response.statusCode() != 200) {
        String text = new String(body.readNBytes(512), java.nio.charset.StandardCharsets.UTF_8);
        throw new IOException(
            "HTTP "
                + response.statusCode()
                + (response.statusCode() == 401 || response.statusCode() == 403
                    ? " (the operator refuses this machine's token)"
                    : "")
                + ": "
                + text.strip());
      }
      open = body;
      LOG.infof("following the desired state at %s/desired", machine);
      onConnected.run();
      AtomicLong lastActivity = new AtomicLong(System.nanoTime());
      ScheduledFuture<?> check =
          watchdog.scheduleAtFixedRate(
              () -> {
                if (System.nanoTime() - lastActivity.get() > SILENCE.toNanos()) {
                  LOG.warnf("no heartbeat for %d s; reconnecting", SILENCE.toSeconds());
                  closeQuietly(body);
                }
              },
              5,
              5,
              TimeUnit.SECONDS);
      try {
        new SseReader(
                event -> {
                  if (event.id() != null) {
                    lastEventId = event.id();
                  }
                  if ("desired".equals(event.name())) {
                    desiredState(event.data()).ifPresent(onDesired);
                  }
                },
                () -> lastActivity.set(System.nanoTime()))
            .read(body);
      } finally {
        check.cancel(false);
        open = null;
      }
      if (!closed) {
        LOG.warn("the operator ended the desired-state stream; reconnecting");
      }
      return true;
    }
  }

  /** The desired state of one event's data; empty (and logged) when there is none to apply. */
  static Optional<DesiredState> desiredState(String data) {
    try {
      DesiredState state = MAPPER.readValue(data, DesiredState.class);
      if (state == null || state.action() == null) {
        LOG.warn("a desired-state event without an action this agent knows; ignored");
        return Optional.empty();
      }
      return Optional.of(state);
    } catch (JsonProcessingException e) {
      LOG.warnf(
          "a desired-state event that is not valid JSON; ignored: %s", e.getOriginalMessage());
      return Optional.empty();
    }
  }

  /**
   * Posts one status report.
   *
   * @return true when the operator accepted it, or refused it for good (4xx: sending it again would
   *     not help); false when it should be sent again later
   */
  public boolean report(StatusReport report) throws InterruptedException {
    try {
      byte[] json = MAPPER.writeValueAsBytes(report);
      HttpRequest request =
          HttpRequest.newBuilder(URI.create(machine + "/status"))
              .header("Authorization", authorization)
              .header("Content-Type", "application/json")
              .timeout(Duration.ofSeconds(10))
              .POST(HttpRequest.BodyPublishers.ofByteArray(json))
              .build();
      HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
      int code = response.statusCode();
      if (code / 100 == 2) {
        return true;
      }
      LOG.warnf(
          "status report (phase %s) refused: HTTP %d %s",
          report.phase(), code, response.body().strip());
      return code / 100 == 4 && code != 408 && code != 429;
    } catch (IOException e) {
      LOG.debugf("status report not sent: %s", e.getMessage());
      return false;
    }
  }

  private static void closeQuietly(InputStream in) {
    try {
      in.close();
    } catch (IOException ignored) {
      // closing a dead stream: nothing to do
    }
  }

  @Override
  public void close() {
    closed = true;
    InputStream in = open;
    if (in != null) {
      closeQuietly(in);
    }
    watchdog.shutdownNow();
  }
}
