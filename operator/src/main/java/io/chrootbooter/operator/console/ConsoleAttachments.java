package io.chrootbooter.operator.console;

import io.vertx.core.Vertx;
import io.vertx.core.http.ServerWebSocket;
import jakarta.enterprise.context.ApplicationScoped;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * Pairs a user's attach WebSocket with the console connection its machine's agent opens for it. An
 * attach waits under a fresh random ticket ({@link #await}) that the desired-state stream hands the
 * agent; the agent opens {@code /agent/v1/machines/{mac}/console/live?ticket=…} with its session,
 * and {@link #claim} joins the two: every binary frame of one side is written to the other, the
 * reader paused while the writer's queue is full (a slow user slows the agent's sending, whose
 * bounded queue then drops: never the target). A ticket is good once, for its machine only, for
 * {@code cb.console.attach-timeout} (default 10 s); then the user's socket is closed with 1011.
 */
@ApplicationScoped
public class ConsoleAttachments {
  private static final Logger LOG = Logger.getLogger(ConsoleAttachments.class);
  private static final SecureRandom RANDOM = new SecureRandom();

  /** The most attaches waiting for their agents at once. */
  static final int MAX_WAITING = 256;

  /** WebSocket close codes (RFC 6455 §7.4.1). */
  public static final short NORMAL = 1000;

  public static final short POLICY = 1008;
  public static final short SERVER_ERROR = 1011;

  private record Waiting(String mac, String machine, ServerWebSocket user, long timer) {}

  private final Vertx vertx;
  private final long timeoutMillis;
  private final Map<String, Waiting> waiting = new ConcurrentHashMap<>();

  ConsoleAttachments(
      Vertx vertx,
      @ConfigProperty(name = "cb.console.attach-timeout", defaultValue = "10S")
          java.time.Duration timeout) {
    this.vertx = vertx;
    this.timeoutMillis = Math.max(1, timeout.toMillis());
  }

  /**
   * Holds {@code user}, attached to the machine {@code mac} (named {@code machine} in messages),
   * until its agent connects; returns the ticket the agent must present, or empty when too many
   * attaches wait already.
   */
  public Optional<String> await(String mac, String machine, ServerWebSocket user) {
    if (waiting.size() >= MAX_WAITING) {
      return Optional.empty();
    }
    byte[] bytes = new byte[24];
    RANDOM.nextBytes(bytes);
    String ticket = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    // Keystrokes typed before the agent is there wait in the socket, not in memory.
    user.pause();
    long timer =
        vertx.setTimer(
            timeoutMillis,
            id -> {
              Waiting w = waiting.remove(ticket);
              if (w != null) {
                close(
                    w.user(),
                    SERVER_ERROR,
                    "the agent of "
                        + machine
                        + " did not open its console connection within "
                        + timeoutMillis / 1000
                        + " s");
              }
            });
    waiting.put(ticket, new Waiting(mac, machine, user, timer));
    user.closeHandler(
        v -> {
          Waiting w = waiting.remove(ticket);
          if (w != null) {
            vertx.cancelTimer(w.timer());
          }
        });
    return Optional.of(ticket);
  }

  /** Forgets a ticket whose agent could not be told (the user's socket is closed by the caller). */
  public void cancel(String ticket) {
    Waiting w = waiting.remove(ticket);
    if (w != null) {
      vertx.cancelTimer(w.timer());
    }
  }

  /** Whether {@code ticket} waits for the agent of {@code mac}. */
  public boolean waits(String mac, String ticket) {
    Waiting w = ticket == null ? null : waiting.get(ticket);
    return w != null && w.mac().equals(mac);
  }

  /**
   * Joins the agent's console connection to the user waiting under {@code ticket}; false (and the
   * agent's socket closed with 1008) when no user waits under it for this machine.
   */
  public boolean claim(String mac, String ticket, ServerWebSocket agent) {
    Waiting w = ticket == null ? null : waiting.get(ticket);
    if (w == null || !w.mac().equals(mac) || !waiting.remove(ticket, w)) {
      close(agent, POLICY, "no attach waits under this ticket");
      return false;
    }
    vertx.cancelTimer(w.timer());
    ServerWebSocket user = w.user();
    if (user.isClosed()) {
      close(agent, NORMAL, "the user has gone");
      return false;
    }
    pipe(agent, user);
    pipe(user, agent);
    agent.closeHandler(
        v -> {
          Short code = agent.closeStatusCode();
          String reason = agent.closeReason();
          if (code == null) {
            close(user, SERVER_ERROR, "the console connection of " + w.machine() + " was lost");
          } else if (code == NORMAL) {
            close(user, NORMAL, reason == null || reason.isEmpty() ? "the target ended" : reason);
          } else {
            close(user, code, reason == null ? "" : reason);
          }
        });
    user.closeHandler(v -> close(agent, NORMAL, "the user detached"));
    agent.exceptionHandler(e -> LOG.debugf("console of %s: %s", w.machine(), e.getMessage()));
    user.exceptionHandler(e -> LOG.debugf("console user of %s: %s", w.machine(), e.getMessage()));
    user.resume();
    return true;
  }

  /**
   * Binary frames of {@code from} to {@code to}; text frames are not keystrokes and are dropped.
   */
  private static void pipe(ServerWebSocket from, ServerWebSocket to) {
    from.binaryMessageHandler(
        buf -> {
          if (to.isClosed()) {
            return;
          }
          to.writeBinaryMessage(buf);
          if (to.writeQueueFull()) {
            from.pause();
            to.drainHandler(v -> from.resume());
          }
        });
  }

  public static void close(ServerWebSocket socket, short code, String reason) {
    if (socket.isClosed()) {
      return;
    }
    // A close reason is at most 123 bytes of UTF-8.
    String r = reason;
    while (r.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 123) {
      r = r.substring(0, r.length() - 1);
    }
    socket.close(code, r);
  }
}
