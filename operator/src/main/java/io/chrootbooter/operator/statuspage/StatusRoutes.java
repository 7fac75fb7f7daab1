package io.chrootbooter.operator.statuspage;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.quarkus.runtime.StartupEvent;
import io.quarkus.vertx.http.ManagementInterface;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * The live status page, on the admin port (the management interface) only: {@code GET /} renders
 * every MachineBoot, BootImage and BootTest from the informer caches, and {@code GET
 * /status/events} pushes the rows that changed as Server-Sent Events.
 *
 * <p>Changes are coalesced: the first change arms a timer, and {@link #COALESCE_MILLIS} later one
 * batch carries every row changed meanwhile, each rendered once for all browsers, so a burst of
 * status patches costs at most a few renders a second. The last event of a batch carries its id; a
 * browser that reconnects with another {@code Last-Event-ID} (it missed something, or the operator
 * restarted) gets the whole content again. A browser that does not keep up is disconnected once its
 * write queue holds {@link #WRITE_QUEUE_BYTES}: it never holds back the others or the operator, and
 * its EventSource reconnects and resynchronises.
 */
@ApplicationScoped
public class StatusRoutes {
  private static final Logger LOG = Logger.getLogger(StatusRoutes.class);

  static final long COALESCE_MILLIS = 250;
  static final long HEARTBEAT_MILLIS = 15_000;
  static final int WRITE_QUEUE_BYTES = 512 * 1024;
  static final int MAX_STREAMS = 256;

  private static final SecureRandom RANDOM = new SecureRandom();
  private static final String MACHINE = HasMetadata.getKind(MachineBoot.class);
  private static final String IMAGE = HasMetadata.getKind(BootImage.class);
  private static final String TEST = HasMetadata.getKind(BootTest.class);

  /** An object whose row may have changed. */
  record Ref(String kind, String namespace, String name) {
    String id() {
      return StatusView.rowId(
          kind.equals(MACHINE) ? "m" : kind.equals(TEST) ? "t" : "i", namespace, name);
    }
  }

  private final MachineDirectory directory;
  private final RecentEvents events;
  private final Vertx vertx;
  private final StatusPage page = new StatusPage();
  private final Clock clock = Clock.systemUTC();

  /** Tells this process's batch ids from those of an earlier one. */
  private final String instance = Long.toString(RANDOM.nextLong() & Long.MAX_VALUE, 36);

  private final Set<Ref> dirty = ConcurrentHashMap.newKeySet();
  private final AtomicBoolean scheduled = new AtomicBoolean();
  private final Set<HttpServerResponse> streams = ConcurrentHashMap.newKeySet();

  /** The number of the last batch; guarded by {@code this}, as is every write of a batch. */
  private long seq;

  private final io.chrootbooter.operator.console.ConsoleLogs consoles;
  private final int consoleLines;

  StatusRoutes(
      MachineDirectory directory,
      RecentEvents events,
      Vertx vertx,
      io.chrootbooter.operator.console.ConsoleLogs consoles,
      @org.eclipse.microprofile.config.inject.ConfigProperty(
              name = "cb.statuspage.console-lines",
              defaultValue = "5")
          int consoleLines) {
    this.directory = directory;
    this.events = events;
    this.vertx = vertx;
    this.consoles = consoles;
    this.consoleLines = Math.max(0, Math.min(consoleLines, 50));
  }

  /** The last lines of a machine's current console, raw; null when none or switched off. */
  private String console(MachineBoot mb) {
    return consoles
        .tail(mb.getMetadata().getNamespace(), mb.getMetadata().getName(), consoleLines)
        .orElse(null);
  }

  void start(@Observes StartupEvent event) {
    directory.onResourceChange(
        r ->
            changed(
                new Ref(r.getKind(), r.getMetadata().getNamespace(), r.getMetadata().getName())));
    events.onRecorded(e -> changed(new Ref(e.kind(), e.namespace(), e.name())));
    if (consoleLines > 0) {
      consoles.onAppend((namespace, name) -> changed(new Ref(MACHINE, namespace, name)));
    }
    vertx.setPeriodic(HEARTBEAT_MILLIS, id -> streams.forEach(s -> send(s, ": heartbeat\n\n")));
  }

  /**
   * The page and its stream are served by the management interface (the admin port), not by the
   * port machines reach: they list every machine's MAC, name and address.
   */
  void routes(@Observes ManagementInterface admin) {
    Router router = admin.router();
    router.get("/").blockingHandler(this::page, false);
    router.get("/status/events").blockingHandler(this::events, false);
  }

  private void page(RoutingContext ctx) {
    String id;
    synchronized (this) {
      id = batchId();
    }
    // Read after the id: a change the caches get later is in a batch with a later id.
    String nonce = nonce();
    String html = page.page(snapshot(), id, nonce);
    ctx.response()
        .putHeader(HttpHeaders.CONTENT_TYPE, "text/html; charset=utf-8")
        .putHeader(HttpHeaders.CACHE_CONTROL, "no-store")
        .putHeader("Content-Security-Policy", contentSecurityPolicy(nonce))
        .putHeader("X-Content-Type-Options", "nosniff")
        .putHeader("Referrer-Policy", "no-referrer")
        .end(html);
  }

  private void events(RoutingContext ctx) {
    HttpServerResponse response = ctx.response();
    if (streams.size() >= MAX_STREAMS) {
      response
          .setStatusCode(503)
          .putHeader(HttpHeaders.RETRY_AFTER, "10")
          .end("too many status page streams open; at most " + MAX_STREAMS + "\n");
      return;
    }
    String last =
        Optional.ofNullable(ctx.request().getHeader("Last-Event-ID"))
            .orElse(ctx.request().getParam("since"));
    response
        .setChunked(true)
        .putHeader(HttpHeaders.CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .putHeader(HttpHeaders.CACHE_CONTROL, "no-store")
        .putHeader("X-Accel-Buffering", "no")
        .setWriteQueueMaxSize(WRITE_QUEUE_BYTES);
    response.closeHandler(v -> streams.remove(response));
    synchronized (this) {
      StringBuilder first = new StringBuilder("retry: 2000\n\n");
      String current = batchId();
      if (!current.equals(last)) {
        first.append(event("reset", page.content(snapshot()), current));
      }
      response.write(first.toString());
      streams.add(response);
    }
  }

  private void changed(Ref ref) {
    dirty.add(ref);
    if (scheduled.compareAndSet(false, true)) {
      vertx.setTimer(
          COALESCE_MILLIS,
          t ->
              vertx.executeBlocking(
                  () -> {
                    flush();
                    return null;
                  },
                  false));
    }
  }

  private void flush() {
    // Reset before draining: a change that comes in from here on arms the next batch.
    scheduled.set(false);
    List<Ref> refs = new ArrayList<>();
    for (var it = dirty.iterator(); it.hasNext(); ) {
      refs.add(it.next());
      it.remove();
    }
    refs.sort(Comparator.comparing(Ref::id));
    synchronized (this) {
      seq++;
      Instant now = clock.instant();
      StringBuilder batch = new StringBuilder();
      for (Ref ref : refs) {
        Optional<String> row = streams.isEmpty() ? Optional.empty() : row(ref, now);
        if (row.isPresent()) {
          batch.append(event("row", row.get(), null));
        } else if (!exists(ref)) {
          events.forget(ref.kind(), ref.namespace(), ref.name());
          batch.append(event("remove", ref.id(), null));
        }
      }
      if (streams.isEmpty()) {
        return;
      }
      batch.append(
          event(
              "summary",
              page.summary(StatusView.summary(directory.machines(), directory.images())),
              batchId()));
      String text = batch.toString();
      streams.forEach(s -> send(s, text));
    }
  }

  private Optional<String> row(Ref ref, Instant now) {
    if (ref.kind().equals(MACHINE)) {
      return directory
          .machine(ref.namespace(), ref.name())
          .map(mb -> page.machine(StatusView.machine(mb, events.of(mb), console(mb), now)));
    }
    if (ref.kind().equals(IMAGE)) {
      return directory
          .image(ref.namespace(), ref.name())
          .map(i -> page.image(StatusView.image(i, events.of(i), now)));
    }
    if (ref.kind().equals(TEST)) {
      return directory
          .test(ref.namespace(), ref.name())
          .map(t -> page.test(StatusView.test(t, events.of(t), now)));
    }
    return Optional.empty();
  }

  private boolean exists(Ref ref) {
    if (ref.kind().equals(MACHINE)) {
      return directory.machine(ref.namespace(), ref.name()).isPresent();
    }
    if (ref.kind().equals(TEST)) {
      return directory.test(ref.namespace(), ref.name()).isPresent();
    }
    return directory.image(ref.namespace(), ref.name()).isPresent();
  }

  /** Writes to one browser, or disconnects it when it is gone or does not keep up. */
  private void send(HttpServerResponse response, String text) {
    if (response.closed() || response.ended()) {
      streams.remove(response);
      return;
    }
    if (response.writeQueueFull()) {
      streams.remove(response);
      LOG.debugf("status page stream does not keep up; closing it so it reconnects");
      response.close();
      return;
    }
    try {
      response.write(text);
    } catch (IllegalStateException closedMeanwhile) {
      // The browser went between the check and the write; its close handler forgets it too.
      streams.remove(response);
    }
  }

  private StatusView.Page snapshot() {
    return StatusView.page(
        directory.machines(),
        directory.images(),
        directory.tests(),
        events::of,
        this::console,
        clock.instant());
  }

  private String batchId() {
    return instance + "-" + seq;
  }

  /**
   * One Server-Sent Event. Every line break of {@code data} starts another {@code data:} line, so
   * no value can end the event early or add a field (WHATWG HTML §9.2.6).
   */
  static String event(String name, String data, String id) {
    StringBuilder sb = new StringBuilder("event: ").append(name).append('\n');
    for (String line : data.split("\r\n|\r|\n", -1)) {
      sb.append("data: ").append(line).append('\n');
    }
    if (id != null) {
      sb.append("id: ").append(id).append('\n');
    }
    return sb.append('\n').toString();
  }

  private static String nonce() {
    byte[] bytes = new byte[16];
    RANDOM.nextBytes(bytes);
    return Base64.getEncoder().encodeToString(bytes);
  }

  private static String contentSecurityPolicy(String nonce) {
    return "default-src 'none'; script-src 'nonce-"
        + nonce
        + "'; style-src 'nonce-"
        + nonce
        + "'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none';"
        + " frame-ancestors 'none'";
  }
}
