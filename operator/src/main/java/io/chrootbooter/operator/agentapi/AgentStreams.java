package io.chrootbooter.operator.agentapi;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.chrootbooter.operator.liveness.AgentLeases;
import io.chrootbooter.operator.liveness.LivenessRules;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.GoDuration;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.StartupEvent;
import io.vertx.core.Vertx;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.ws.rs.sse.OutboundSseEvent;
import jakarta.ws.rs.sse.Sse;
import jakarta.ws.rs.sse.SseEventSink;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * The open desired-state streams, by MAC. When a MachineBoot or its BootImage changes, the
 * machine's desired state is computed again and sent to its streams whose last event differs.
 *
 * <p>An event's id is the generation and a digest of the state: the same state always has the same
 * id, so an agent that reconnects with {@code Last-Event-ID} gets the current state at once when it
 * changed, and nothing when it did not.
 */
@ApplicationScoped
public class AgentStreams {
  private static final Logger LOG = Logger.getLogger(AgentStreams.class);

  /** Comments this often keep idle connections open through proxies. */
  private static final long HEARTBEAT_MILLIS = 15_000;

  /**
   * Heartbeats go out in this many rounds spread over the period, each stream in one of them: a
   * single round to 10,000 streams holds an event loop long enough to delay desired-state events.
   */
  private static final int HEARTBEAT_ROUNDS = 15;

  private long heartbeatTick;

  private final MachineDirectory directory;
  private final ObjectMapper mapper;
  private final Vertx vertx;
  private final MeterRegistry registry;
  private final SwitchTimer switches;
  private final AgentLeases leases;
  private final Enrolments enrolments;
  private final String heartbeat;
  private final Map<String, Set<Stream>> streams = new ConcurrentHashMap<>();

  /** One open stream and the id of the last event sent on it. */
  private static final class Stream {
    final SseEventSink sink;
    final Sse sse;
    final String baseUrl;
    final String session;
    volatile String lastId;
    final int round = java.util.concurrent.ThreadLocalRandom.current().nextInt(HEARTBEAT_ROUNDS);

    Stream(SseEventSink sink, Sse sse, String baseUrl, String session, String lastId) {
      this.session = session;
      this.sink = sink;
      this.sse = sse;
      this.baseUrl = baseUrl;
      this.lastId = lastId;
    }
  }

  private final io.chrootbooter.operator.console.ReplicaForwards forwards;

  AgentStreams(
      MachineDirectory directory,
      ObjectMapper mapper,
      Vertx vertx,
      MeterRegistry registry,
      SwitchTimer switches,
      AgentLeases leases,
      Enrolments enrolments,
      io.chrootbooter.operator.console.ReplicaForwards forwards) {
    this.leases = leases;
    this.forwards = forwards;
    this.enrolments = enrolments;
    this.heartbeat = GoDuration.format(LivenessRules.heartbeat(leases.lostAfter()));
    this.directory = directory;
    this.switches = switches;
    this.mapper = mapper;
    this.vertx = vertx;
    this.registry = registry;
  }

  void start(@Observes StartupEvent event) {
    directory.onChange(this::changed);
    vertx.setPeriodic(HEARTBEAT_MILLIS / HEARTBEAT_ROUNDS, id -> heartbeat());
    Gauge.builder("chrootbooter.agent.streams", this::count)
        .description("Open desired-state streams")
        .register(registry);
  }

  /**
   * Opens a stream for {@code mac}, authenticated with the session whose id has the hash {@code
   * session}; {@code lastEventId} is the agent's, or null. The stream is closed at a heartbeat once
   * that session is revoked (the machine enrolled again).
   */
  public void open(
      String mac, SseEventSink sink, Sse sse, String baseUrl, String session, String lastEventId) {
    Stream stream = new Stream(sink, sse, baseUrl, session, lastEventId);
    streams.computeIfAbsent(mac, m -> ConcurrentHashMap.newKeySet()).add(stream);
    // A stream opening is a sign of life; the agent's report follows at once. An attach at
    // another replica is forwarded here.
    directory
        .byMac(mac)
        .ifPresent(
            mb -> {
              leases.heard(mb);
              forwards.publish(mb, io.chrootbooter.operator.console.ReplicaForwards.Held.LIVE);
            });
    send(mac, stream, current(mac, baseUrl));
  }

  /** Whether the agent of {@code mac} follows its desired state on this replica. */
  public boolean connected(String mac) {
    Set<Stream> open = streams.get(mac);
    return open != null && open.stream().anyMatch(s -> !s.sink.isClosed());
  }

  /**
   * Asks the agent of {@code mac} to open a console connection with {@code ticket}: an event {@code
   * console} (no id: it is not a desired state, and a reconnecting agent must not be handed it
   * again) on its open streams. False when no stream of it is open on this replica.
   */
  public boolean console(String mac, String ticket) {
    Set<Stream> open = streams.get(mac);
    if (open == null || open.isEmpty()) {
      return false;
    }
    String json = "{\"ticket\":\"" + ticket + "\"}";
    boolean sent = false;
    for (Stream stream : open) {
      if (stream.sink.isClosed()) {
        continue;
      }
      try {
        stream.sink.send(stream.sse.newEventBuilder().name("console").data(json).build());
        sent = true;
      } catch (IllegalStateException closed) {
        close(mac, stream);
      }
    }
    return sent;
  }

  private void changed(String mac) {
    Set<Stream> open = streams.get(mac);
    if (open == null || open.isEmpty()) {
      return;
    }
    Map<String, Event> byBase = new java.util.HashMap<>();
    open.forEach(
        stream -> send(mac, stream, byBase.computeIfAbsent(stream.baseUrl, b -> current(mac, b))));
  }

  private record Event(String id, String json, DesiredState state) {}

  private Event current(String mac, String baseUrl) {
    DesiredState state =
        directory
            .byMac(mac)
            .map(
                mb ->
                    DesiredStates.of(
                        mb,
                        MachineDirectory.imageRef(mb)
                            .flatMap(ref -> directory.image(mb.getMetadata().getNamespace(), ref)),
                        baseUrl))
            .orElseGet(() -> DesiredStates.hold(0, "no MachineBoot names this machine"))
            .withHeartbeat(heartbeat);
    try {
      String json = mapper.writeValueAsString(state);
      return new Event(state.generation() + "-" + digest(json), json, state);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("desired state does not serialise", e);
    }
  }

  private void send(String mac, Stream stream, Event event) {
    synchronized (stream) {
      if (event.id().equals(stream.lastId)) {
        return;
      }
      stream.lastId = event.id();
    }
    switches.pushed(mac, event.state(), directory.byMac(mac), System.nanoTime());
    OutboundSseEvent sse =
        stream.sse.newEventBuilder().name("desired").id(event.id()).data(event.json()).build();
    CompletionStage<?> sent;
    try {
      // The agent may have gone between the change and this send: the sink then refuses with
      // IllegalStateException ("Already closed") instead of failing the returned stage.
      sent = stream.sink.send(sse);
    } catch (IllegalStateException closed) {
      LOG.debugf("stream of %s closed: %s", mac, closed.getMessage());
      close(mac, stream);
      return;
    }
    sent.whenComplete(
        (ok, failure) -> {
          if (failure != null) {
            LOG.debugf("stream of %s closed: %s", mac, failure.getMessage());
            close(mac, stream);
          }
        });
  }

  private void heartbeat() {
    long round = heartbeatTick++ % HEARTBEAT_ROUNDS;
    streams.forEach(
        (mac, open) ->
            open.forEach(
                stream -> {
                  if (stream.round != round) {
                    return;
                  }
                  if (stream.sink.isClosed() || enrolments.revoked(mac, stream.session)) {
                    close(mac, stream);
                  } else {
                    // Once more, in case the Lease named another replica since, or had yet to
                    // be made when the stream opened: a write only when it names another.
                    directory
                        .byMac(mac)
                        .ifPresent(
                            mb ->
                                forwards.publish(
                                    mb,
                                    io.chrootbooter.operator.console.ReplicaForwards.Held.LIVE));
                    stream
                        .sink
                        .send(stream.sse.newEventBuilder().comment("heartbeat").build())
                        .whenComplete(
                            (ok, failure) -> {
                              if (failure != null) {
                                close(mac, stream);
                              }
                            });
                  }
                }));
  }

  private void close(String mac, Stream stream) {
    Set<Stream> open = streams.get(mac);
    if (open != null) {
      open.remove(stream);
    }
    if (!stream.sink.isClosed()) {
      stream.sink.close();
    }
  }

  private long count() {
    return streams.values().stream().mapToLong(Set::size).sum();
  }

  private static String digest(String json) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(json.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d, 0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
    }
  }
}
