package io.chrootbooter.agent.operator;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.failsafe.Execution;
import dev.failsafe.RetryPolicy;
import io.chrootbooter.agent.fetch.Retries;
import io.chrootbooter.protocol.ConsoleChunk;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.Enrolment;
import io.chrootbooter.protocol.Session;
import io.chrootbooter.protocol.StatusReport;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import org.jboss.logging.Logger;

/**
 * The agent's HTTP client for its operator: enrols (exchanges the boot nonce of its iPXE script for
 * a session of this boot, see {@link #enrol}), follows the desired-state stream (reconnecting with
 * backoff and {@code Last-Event-ID}, surviving operator restarts and network loss), posts status
 * reports and renews the session. The session travels only in the {@code Authorization} header, is
 * kept in memory and in a root-only {@link SessionFile}, and is never logged.
 */
public final class OperatorClient implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(OperatorClient.class);

  /** No line (not even a heartbeat, sent every 15 s) for this long: the stream is dead. */
  static final Duration SILENCE = Duration.ofSeconds(45);

  /** How long a failed session renewal waits before the next try. */
  static final Duration MAX_BACKOFF = Retries.OPERATOR.maxDelay();

  /** Enrolment and the stream's reconnections: for ever, on the agent's schedule. */
  private static final RetryPolicy<Object> RETRY = Retries.policy(Retries.OPERATOR);

  /** What a reconnection records when the previous connection ended without an exception. */
  private static final IOException ENDED = new IOException("the stream ended");

  // A newer operator may send fields, actions and formats this agent does not know: fields are
  // ignored, an unknown action or format reads as null (the event is skipped, or its load fails
  // naming the formats this agent knows).
  private static final ObjectMapper MAPPER =
      new ObjectMapper()
          .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false)
          .enable(DeserializationFeature.READ_UNKNOWN_ENUM_VALUES_AS_NULL);

  private final String base;
  private final String mac;
  private final URI machine;
  private final String nonce;
  private final String bootId;
  private final SessionFile sessionFile;
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
  private volatile String authorization;
  private volatile Instant expires;
  private volatile Instant renewAt;
  private volatile String refused;
  private volatile Consumer<String> onConsole = ticket -> {};

  /**
   * @param operator the operator's base URL ({@code cb.operator})
   * @param mac the machine's MAC, lowercase with colons
   * @param nonce the boot nonce ({@code cb.nonce}); null or blank when there is none
   * @param bootId this boot's id ({@code /proc/sys/kernel/random/boot_id})
   * @param sessionFile where this boot's session is kept for a restarted agent
   * @param tls the pinned TLS context for an {@code https} operator, empty for the JDK default
   */
  public OperatorClient(
      URI operator,
      String mac,
      String nonce,
      String bootId,
      SessionFile sessionFile,
      Optional<SSLContext> tls) {
    String base = operator.toString().replaceAll("/+$", "");
    if (!base.startsWith("http://") && !base.startsWith("https://")) {
      throw new IllegalArgumentException(
          "cb.operator \"" + operator + "\" is not an http:// or https:// URL");
    }
    if (!mac.matches("([0-9a-f]{2}:){5}[0-9a-f]{2}")) {
      throw new IllegalArgumentException("cb.mac \"" + mac + "\" is not a MAC address");
    }
    if (nonce != null && !nonce.isBlank() && !nonce.matches("[A-Za-z0-9_-]{16,128}")) {
      throw new IllegalArgumentException("cb.nonce holds characters a boot nonce has not");
    }
    if (bootId == null || !bootId.matches("[0-9A-Za-z-]{1,64}")) {
      throw new IllegalArgumentException("the boot id is missing or malformed");
    }
    this.base = base;
    this.mac = mac;
    this.machine = URI.create(base + "/agent/v1/machines/" + mac);
    this.nonce = nonce == null || nonce.isBlank() ? null : nonce;
    this.bootId = bootId;
    this.sessionFile = sessionFile;
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

  /** The operator's origin ({@code scheme://host:port}): where the session may be sent. */
  public URI origin() {
    URI uri = URI.create(base);
    return URI.create(uri.getScheme() + "://" + uri.getRawAuthority());
  }

  /** {@code Bearer <session>}, or null before the enrolment succeeded. */
  public String authorization() {
    return authorization;
  }

  /** Why the operator refused this boot's enrolment, once it did. */
  public Optional<String> refusal() {
    return Optional.ofNullable(refused);
  }

  /**
   * Gets a session of this boot: the one a previous run of the agent kept in the session file, when
   * it is this boot's and unexpired, else an enrolment with the boot nonce. Retries with backoff
   * while the operator cannot be reached or answers 5xx.
   *
   * @return true with a session; false when the operator refused (the reason is logged as an error
   *     and in {@link #refusal()}) or there is no nonce to enrol with
   */
  public boolean enrol() throws InterruptedException {
    if (authorization != null) {
      return true;
    }
    if (refused != null) {
      return false; // a refusal is final for this boot: the nonce is not offered again
    }
    Optional<SessionFile.Stored> kept =
        sessionFile
            .read()
            .filter(
                s ->
                    base.equals(s.operator())
                        && mac.equals(s.mac())
                        && bootId.equals(s.bootId())
                        && s.session() != null
                        && Instant.now().isBefore(s.expires()));
    if (kept.isPresent()) {
      LOG.infof("using this boot's session from %s (the agent was restarted)", sessionFile.path());
      hold(kept.get().session(), kept.get().expires(), false);
      return true;
    }
    if (nonce == null) {
      return refuse(
          "no cb.nonce on the kernel command line and no session of this boot in "
              + sessionFile.path()
              + ": boot the machine from the operator's iPXE script again");
    }
    Execution<Object> attempts = Execution.of(RETRY);
    while (!closed) {
      try {
        byte[] body = MAPPER.writeValueAsBytes(new Enrolment(nonce, bootId));
        HttpRequest request =
            HttpRequest.newBuilder(URI.create(machine + "/enroll"))
                .header("Content-Type", "application/json")
                .timeout(Duration.ofSeconds(10))
                .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                .build();
        HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
        int code = response.statusCode();
        if (code == 200) {
          Session session = MAPPER.readValue(response.body(), Session.class);
          hold(session.session(), Instant.parse(session.expiresAt()), true);
          LOG.infof("enrolled with the operator at %s", base);
          return true;
        }
        if (code / 100 == 4 && code != 408 && code != 429) {
          return refuse("HTTP " + code + ": " + response.body().strip());
        }
        LOG.warnf("enrolment at %s: HTTP %d; retrying", machine, code);
      } catch (IOException | RuntimeException e) {
        LOG.warnf(
            "enrolment at %s: %s; retrying",
            machine, e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName());
      }
      Thread.sleep(nextWait(attempts));
    }
    return false;
  }

  private boolean refuse(String why) {
    refused = why;
    LOG.errorf(
        "ENROLMENT FAILED: the operator at %s refused this machine (%s): %s. The agent cannot"
            + " follow its desired state; it waits at the console.",
        base, mac, why);
    return false;
  }

  private void hold(String session, Instant expiresAt, boolean store) {
    authorization = "Bearer " + session;
    expires = expiresAt;
    Instant now = Instant.now();
    renewAt = now.plus(Duration.between(now, expiresAt).dividedBy(2));
    if (store) {
      try {
        sessionFile.write(new SessionFile.Stored(base, mac, bootId, session, expiresAt));
      } catch (IOException e) {
        LOG.warnf(
            "cannot keep the session in %s (a restarted agent will have to wait for a reboot): %s",
            sessionFile.path(), e.getMessage());
      }
    }
  }

  /**
   * Renews the session when half of its time is gone; a refusal (revoked: the machine enrolled
   * again, or expired) is logged as an error.
   */
  void renewIfDue() throws InterruptedException {
    Instant due = renewAt;
    if (authorization == null || due == null || Instant.now().isBefore(due)) {
      return;
    }
    try {
      HttpRequest request =
          HttpRequest.newBuilder(URI.create(machine + "/session"))
              .header("Authorization", authorization)
              .timeout(Duration.ofSeconds(10))
              .POST(HttpRequest.BodyPublishers.noBody())
              .build();
      HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
      if (response.statusCode() == 200) {
        Session session = MAPPER.readValue(response.body(), Session.class);
        hold(session.session(), Instant.parse(session.expiresAt()), true);
        LOG.debugf("session renewed until %s", session.expiresAt());
      } else if (response.statusCode() == 401 || response.statusCode() == 403) {
        renewAt = Instant.now().plus(MAX_BACKOFF);
        LOG.errorf(
            "the operator refuses to renew this boot's session: HTTP %d %s",
            response.statusCode(), response.body().strip());
      } else {
        renewAt = Instant.now().plus(MAX_BACKOFF);
      }
    } catch (IOException e) {
      renewAt = Instant.now().plus(MAX_BACKOFF);
      LOG.debugf("session renewal failed: %s", e.getMessage());
    }
  }

  /** Records the attempt that just ended; the milliseconds to wait before the next. */
  private static long nextWait(Execution<Object> attempts) {
    attempts.recordException(ENDED);
    return attempts.getDelay().toMillis();
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

  /** The client every call of this agent uses (TLS pinned for an https operator). */
  public HttpClient http() {
    return http;
  }

  /**
   * Called on the stream's thread with the ticket of each {@code console} event (a user attached at
   * the operator: open the console connection, {@link #consoleUri}); must not block.
   */
  public void onConsole(Consumer<String> listener) {
    this.onConsole = listener == null ? ticket -> {} : listener;
  }

  /** The console connection's URL for {@code ticket}: ws(s) to this machine's agent API. */
  public URI consoleUri(String ticket) {
    String ws =
        base.startsWith("https://") ? "wss://" + base.substring(8) : "ws://" + base.substring(7);
    return URI.create(ws + "/agent/v1/machines/" + mac + "/console/live?ticket=" + ticket);
  }

  /** The ticket of a {@code console} event's data ({@code {"ticket":"…"}}), if it has one. */
  static Optional<String> consoleTicket(String data) {
    try {
      com.fasterxml.jackson.databind.JsonNode node = MAPPER.readTree(data);
      com.fasterxml.jackson.databind.JsonNode ticket = node == null ? null : node.get("ticket");
      if (ticket == null
          || !ticket.isTextual()
          || !ticket.asText().matches("[A-Za-z0-9_-]{16,128}")) {
        return Optional.empty();
      }
      return Optional.of(ticket.asText());
    } catch (JsonProcessingException e) {
      return Optional.empty();
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
    try {
      if (!enrol()) {
        return;
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    }
    Execution<Object> attempts = Execution.of(RETRY);
    while (!closed) {
      try {
        renewIfDue();
        if (streamOnce(onDesired, onConnected)) {
          attempts = Execution.of(RETRY); // it was up: the next attempt starts fresh
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
      try {
        Thread.sleep(nextWait(attempts));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
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
                    ? " (the operator refuses this boot's session)"
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
                try {
                  renewIfDue();
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
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
                  } else if ("console".equals(event.name())) {
                    consoleTicket(event.data()).ifPresent(onConsole);
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
    String authorization = this.authorization;
    if (authorization == null) {
      return refused != null; // not enrolled yet: later; refused: it can never be sent
    }
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

  /**
   * Posts one piece of a boot's recorded console ({@link ConsoleChunk}).
   *
   * @return true when the operator accepted it, or refused it for good (4xx other than 408 and
   *     429); false when it should be sent again later
   */
  public boolean console(ConsoleChunk chunk) throws InterruptedException {
    String authorization = this.authorization;
    if (authorization == null) {
      return refused != null;
    }
    try {
      HttpRequest request =
          HttpRequest.newBuilder(URI.create(machine + "/console"))
              .header("Authorization", authorization)
              .header("Content-Type", "application/json")
              .timeout(Duration.ofSeconds(10))
              .POST(HttpRequest.BodyPublishers.ofByteArray(MAPPER.writeValueAsBytes(chunk)))
              .build();
      HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
      int code = response.statusCode();
      if (code / 100 == 2) {
        return true;
      }
      LOG.debugf("console chunk refused: HTTP %d", code);
      return code / 100 == 4 && code != 408 && code != 429;
    } catch (IOException e) {
      LOG.debugf("console chunk not sent: %s", e.getMessage());
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
