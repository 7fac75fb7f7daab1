package io.chrootbooter.operator.statuspage;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.agentapi.AgentStreams;
import io.chrootbooter.operator.console.ConsoleAccess;
import io.chrootbooter.operator.console.ConsoleAttachments;
import io.chrootbooter.operator.console.ConsoleLogs;
import io.chrootbooter.operator.console.ReplicaForwards;
import io.chrootbooter.operator.machine.MacAddress;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.protocol.MachinePhase;
import io.quarkus.runtime.StartupEvent;
import io.quarkus.vertx.http.ManagementInterface;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.ServerWebSocket;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * A machine's console on the admin port, for users with a Kubernetes credential of their own
 * ({@code Authorization: Bearer <token>}, checked by {@link ConsoleAccess}: 401 without one, 403
 * without the right, no byte of any console either way).
 *
 * <ul>
 *   <li>{@code GET /machines/{namespace}/{name}/console} ({@code get machineboots/log}): the
 *       recorded console of the current (or last) boot, {@code ?boot=previous} the one before, as
 *       plain text with credentials redacted as on the status page. Headers name the boot ({@code
 *       Chrootbooter-Boot}), its image and whether the target is gone. {@code &follow=true} keeps
 *       the response open and streams what is recorded next until that boot ends or the reader
 *       goes.
 *   <li>{@code GET /machines/{namespace}/{name}/console/attach} ({@code create
 *       machineboots/console}), upgraded to a WebSocket: the live console, read-write. Binary
 *       frames both ways (keystrokes in, the console's output out). Each attach is a {@code
 *       ConsoleAttached} Event on the MachineBoot naming the user: the target's console, or in the
 *       bootstrap its own console shell. Closed with 1011 when the machine's agent is not up yet or
 *       is connected to no replica this one can reach, 1000 when the target (or the bootstrap's
 *       turn) ends.
 * </ul>
 *
 * <p>With several replicas, a request whose machine's console another replica holds (its agent's
 * stream for an attach, its recorded console for a read, as the machine's agent Lease names it:
 * {@link ReplicaForwards}) is checked here and then forwarded there, with a forward credential
 * instead of the user's: the attach is relayed frame by frame, the read streamed through. A
 * forwarded request ({@code Chrootbooter-Forward}) is served from this replica's own state only.
 */
@ApplicationScoped
public class ConsoleRoutes {
  private static final Logger LOG = Logger.getLogger(ConsoleRoutes.class);
  private static final String NAME = "[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?";

  /** A follower whose response holds this much unsent is cut off (it reads again). */
  static final int FOLLOW_QUEUE_BYTES = 1024 * 1024;

  private final ConsoleLogs logs;
  private final MachineDirectory directory;
  private final ConsoleAccess access;
  private final ConsoleAttachments attachments;
  private final AgentStreams streams;
  private final EventRecorder events;
  private final ReplicaForwards forwards;
  private final Vertx vertx;
  private volatile io.vertx.core.http.HttpClient httpClient;
  private volatile io.vertx.core.http.WebSocketClient webSocketClient;

  /** How long a forward waits for the other replica's connection. */
  static final int FORWARD_CONNECT_MILLIS = 5000;

  /** The user's checked identity, and whether another replica checked it (a forward). */
  private record Caller(String user, boolean forwarded) {}

  ConsoleRoutes(
      ConsoleLogs logs,
      MachineDirectory directory,
      ConsoleAccess access,
      ConsoleAttachments attachments,
      AgentStreams streams,
      EventRecorder events,
      ReplicaForwards forwards,
      Vertx vertx) {
    this.forwards = forwards;
    this.logs = logs;
    this.directory = directory;
    this.access = access;
    this.attachments = attachments;
    this.streams = streams;
    this.events = events;
    this.vertx = vertx;
  }

  void start(@Observes StartupEvent event) {
    // The logs of a machine that is deleted go with it.
    directory.onResourceChange(
        r -> {
          if (r.getKind().equals("MachineBoot")
              && directory
                  .machine(r.getMetadata().getNamespace(), r.getMetadata().getName())
                  .isEmpty()) {
            logs.forget(r.getMetadata().getNamespace(), r.getMetadata().getName());
            forwards.forget(r.getMetadata().getNamespace(), r.getMetadata().getName());
          }
        });
  }

  void routes(@Observes ManagementInterface admin) {
    admin.router().get("/machines/:namespace/:name/console").handler(this::console);
    admin.router().get("/machines/:namespace/:name/console/attach").handler(this::attach);
  }

  /**
   * Checks the request's credential for {@code want} off the event loop (the request paused
   * meanwhile, so that an upgrade can follow) and hands the MachineBoot and the caller to {@code
   * then}; answers 400, 401, 403, 404 or 503 itself. A forward from another replica is checked with
   * its forward credential, without asking the API server again.
   */
  private void authorize(
      RoutingContext ctx,
      ConsoleAccess.Want want,
      java.util.function.BiConsumer<MachineBoot, Caller> then) {
    String namespace = ctx.pathParam("namespace");
    String name = ctx.pathParam("name");
    if (!namespace.matches(NAME) || !name.matches(NAME)) {
      plain(ctx, 400, "not a namespace and name of a MachineBoot\n");
      return;
    }
    String forward = ctx.request().getHeader(ReplicaForwards.HEADER);
    if (forward != null) {
      Optional<String> user =
          forwards.accept(
              forward, ctx.request().getHeader(ReplicaForwards.USER_HEADER), want, namespace, name);
      if (user.isEmpty()) {
        plain(ctx, 401, "this forward is not good at this replica\n");
        return;
      }
      Optional<MachineBoot> machine = directory.machine(namespace, name);
      if (machine.isEmpty()) {
        plain(ctx, 404, "no MachineBoot " + namespace + "/" + name + "\n");
        return;
      }
      ctx.request().pause();
      then.accept(machine.get(), new Caller(user.get(), true));
      return;
    }
    String authorization = ctx.request().getHeader(HttpHeaders.AUTHORIZATION);
    ctx.request().pause();
    vertx
        .executeBlocking(() -> access.check(authorization, namespace, name, want), false)
        .onComplete(
            ar -> {
              if (ar.failed()) {
                LOG.warnf("console access check: %s", ar.cause().toString());
                ctx.request().resume();
                plain(ctx, 503, "the Kubernetes API could not check access\n");
                return;
              }
              ConsoleAccess.Decision d = ar.result();
              if (!d.allowed()) {
                ctx.request().resume();
                if (d.status() == 401) {
                  ctx.response().putHeader("WWW-Authenticate", "Bearer");
                }
                plain(ctx, d.status(), d.reason() + "\n");
                return;
              }
              Optional<MachineBoot> machine = directory.machine(namespace, name);
              if (machine.isEmpty()) {
                ctx.request().resume();
                plain(ctx, 404, "no MachineBoot " + namespace + "/" + name + "\n");
                return;
              }
              then.accept(machine.get(), new Caller(d.user(), false));
            });
  }

  private void console(RoutingContext ctx) {
    String boot = Optional.ofNullable(ctx.request().getParam("boot")).orElse("current");
    String follow = Optional.ofNullable(ctx.request().getParam("follow")).orElse("false");
    if (!boot.equals("current") && !boot.equals("previous")) {
      plain(ctx, 400, "boot: current or previous\n");
      return;
    }
    if (!follow.equals("true") && !follow.equals("false")) {
      plain(ctx, 400, "follow: true or false\n");
      return;
    }
    authorize(
        ctx,
        ConsoleAccess.Want.READ,
        (mb, caller) -> {
          ctx.request().resume(); // paused for the access check; a plain answer follows
          Optional<java.net.URI> other =
              caller.forwarded()
                  ? Optional.empty()
                  : forwards.elsewhere(mb, ReplicaForwards.Held.LOG);
          if (other.isPresent()) {
            forwardRead(ctx, other.get(), mb, caller.user(), boot, follow.equals("true"));
          } else {
            read(ctx, mb, boot, follow.equals("true"));
          }
        });
  }

  /** The console as this replica recorded it. */
  private void read(RoutingContext ctx, MachineBoot mb, String boot, boolean follow) {
    String namespace = mb.getMetadata().getNamespace();
    String name = mb.getMetadata().getName();
    if (follow && boot.equals("current")) {
      follow(ctx, namespace, name);
      return;
    }
    Optional<ConsoleLogs.View> view =
        boot.equals("current") ? logs.current(namespace, name) : logs.previous(namespace, name);
    if (view.isEmpty()) {
      plain(ctx, 404, notRecorded(boot, namespace, name));
      return;
    }
    headers(ctx, view.get());
    plain(ctx, 200, StatusView.redact(view.get().text()));
  }

  /**
   * The console as the replica at {@code to} recorded it, streamed through; this replica's own
   * record when that replica cannot be reached (it may have gone, and the agent come here).
   */
  private void forwardRead(
      RoutingContext ctx,
      java.net.URI to,
      MachineBoot mb,
      String user,
      String boot,
      boolean follow) {
    String namespace = mb.getMetadata().getNamespace();
    String name = mb.getMetadata().getName();
    io.vertx.core.http.RequestOptions options =
        new io.vertx.core.http.RequestOptions()
            .setMethod(io.vertx.core.http.HttpMethod.GET)
            .setSsl("https".equals(to.getScheme()))
            .setHost(to.getHost())
            .setPort(port(to))
            .setURI(
                "/machines/"
                    + namespace
                    + "/"
                    + name
                    + "/console?boot="
                    + boot
                    + "&follow="
                    + follow)
            .setConnectTimeout(FORWARD_CONNECT_MILLIS);
    forwards
        .headers(to, ConsoleAccess.Want.READ, namespace, name, user)
        .forEach(options::putHeader);
    HttpServerResponse response = ctx.response();
    http()
        .request(options)
        .compose(
            request -> {
              response.closeHandler(v -> request.reset());
              return request.send();
            })
        .onSuccess(
            remote -> {
              response.setStatusCode(remote.statusCode());
              for (String h :
                  java.util.List.of(
                      HttpHeaders.CONTENT_TYPE.toString(),
                      HttpHeaders.CACHE_CONTROL.toString(),
                      "X-Content-Type-Options",
                      "Chrootbooter-Boot",
                      "Chrootbooter-Image",
                      "Chrootbooter-Started",
                      "Chrootbooter-Ended")) {
                String value = remote.getHeader(h);
                if (value != null) {
                  response.putHeader(h, value);
                }
              }
              response.setChunked(true);
              remote.pipeTo(response);
            })
        .onFailure(
            e -> {
              LOG.warnf(
                  "could not forward the console read of %s/%s to %s: %s",
                  namespace, name, to, e.toString());
              if (response.headWritten()) {
                response.reset();
              } else {
                read(ctx, mb, boot, follow);
              }
            });
  }

  private io.vertx.core.http.HttpClient http() {
    if (httpClient == null) {
      synchronized (this) {
        if (httpClient == null) {
          httpClient = vertx.createHttpClient();
        }
      }
    }
    return httpClient;
  }

  private io.vertx.core.http.WebSocketClient webSockets() {
    if (webSocketClient == null) {
      synchronized (this) {
        if (webSocketClient == null) {
          webSocketClient = vertx.createWebSocketClient();
        }
      }
    }
    return webSocketClient;
  }

  private static int port(java.net.URI uri) {
    return uri.getPort() > 0 ? uri.getPort() : "https".equals(uri.getScheme()) ? 443 : 80;
  }

  private static String notRecorded(String boot, String namespace, String name) {
    return "no " + boot + " console of " + namespace + "/" + name + " recorded by this replica\n";
  }

  private static void headers(RoutingContext ctx, ConsoleLogs.View v) {
    ctx.response()
        .putHeader("Chrootbooter-Boot", v.boot())
        .putHeader("Chrootbooter-Image", StatusView.redact(v.image() == null ? "" : v.image()))
        .putHeader("Chrootbooter-Started", v.started() == null ? "" : v.started())
        .putHeader("Chrootbooter-Ended", Boolean.toString(v.ended()));
  }

  /** The current boot's log, then what is recorded next, until the boot ends or the reader goes. */
  private void follow(RoutingContext ctx, String namespace, String name) {
    HttpServerResponse response = ctx.response();
    io.vertx.core.Context context = vertx.getOrCreateContext();
    AtomicBoolean done = new AtomicBoolean();
    Object lock = new Object();
    ConsoleLogs.Follower follower =
        (boot, data, ended) ->
            context.runOnContext(
                v -> {
                  synchronized (lock) {
                    if (done.get()) {
                      return;
                    }
                    if (data.length > 0) {
                      response.write(
                          Buffer.buffer(
                              StatusView.redact(new String(data, StandardCharsets.UTF_8))));
                    }
                    if (ended) {
                      done.set(true);
                      response.end();
                    } else if (response.writeQueueFull()) {
                      done.set(true);
                      response.end("\r\n[chrootbooter: this reader fell behind; read again]\r\n");
                    }
                  }
                });
    Optional<ConsoleLogs.Following> following = logs.follow(namespace, name, follower);
    if (following.isEmpty()) {
      plain(ctx, 404, notRecorded("current", namespace, name));
      return;
    }
    ConsoleLogs.View view = following.get().view();
    headers(ctx, view);
    response
        .setStatusCode(200)
        .setChunked(true)
        .setWriteQueueMaxSize(FOLLOW_QUEUE_BYTES)
        .putHeader(HttpHeaders.CONTENT_TYPE, "text/plain; charset=utf-8")
        .putHeader(HttpHeaders.CACHE_CONTROL, "no-store")
        .putHeader("X-Content-Type-Options", "nosniff");
    response.closeHandler(v -> following.get().close());
    response.endHandler(v -> following.get().close());
    synchronized (lock) {
      response.write(StatusView.redact(view.text()));
      if (view.ended()) {
        done.set(true);
        response.end();
      }
    }
  }

  private void attach(RoutingContext ctx) {
    String upgrade = ctx.request().getHeader(HttpHeaders.UPGRADE);
    if (upgrade == null || !upgrade.equalsIgnoreCase("websocket")) {
      plain(ctx, 400, "attach: a WebSocket upgrade request (Upgrade: websocket)\n");
      return;
    }
    authorize(
        ctx,
        ConsoleAccess.Want.ATTACH,
        (mb, caller) ->
            ctx.request()
                .toWebSocket()
                .onSuccess(socket -> attached(mb, caller, socket))
                .onFailure(ctx::fail));
  }

  private void attached(MachineBoot mb, Caller caller, ServerWebSocket socket) {
    String namespace = mb.getMetadata().getNamespace();
    String name = mb.getMetadata().getName();
    String machine = namespace + "/" + name;
    String user = caller.user();
    if (caller.forwarded()) {
      LOG.infof("%s attached to the console of %s through another replica", user, machine);
    } else {
      LOG.infof("%s attached to the console of %s", user, machine);
      String who = user.replaceAll("\\p{Cntrl}", "?");
      vertx.executeBlocking(
          () -> {
            events.record(mb, "Normal", "ConsoleAttached", who + " attached to the console");
            return null;
          },
          false);
    }
    Optional<MachineBoot> now = directory.machine(namespace, name);
    if (now.isEmpty()) {
      ConsoleAttachments.close(
          socket, ConsoleAttachments.POLICY, "MachineBoot " + machine + " is gone");
      return;
    }
    MachinePhase phase = now.get().getStatus() == null ? null : now.get().getStatus().phase();
    // A target's console, or the bootstrap's own console shell between targets: either once its
    // agent is up.
    if (phase == null || phase == MachinePhase.Pending || phase == MachinePhase.PXEBooting) {
      ConsoleAttachments.close(
          socket,
          ConsoleAttachments.SERVER_ERROR,
          "machine " + name + " is not running a target or its bootstrap yet (" + phase + ")");
      return;
    }
    String mac = MacAddress.normalize(now.get().getSpec().macAddress()).orElse("");
    if (!streams.connected(mac)) {
      Optional<java.net.URI> other =
          caller.forwarded()
              ? Optional.empty()
              : forwards.elsewhere(now.get(), ReplicaForwards.Held.LIVE);
      if (other.isPresent()) {
        forwardAttach(socket, other.get(), now.get(), user);
        return;
      }
      ConsoleAttachments.close(
          socket,
          ConsoleAttachments.SERVER_ERROR,
          "the agent of machine " + name + " is not connected to this operator replica");
      return;
    }
    Optional<String> ticket = attachments.await(mac, name, socket);
    if (ticket.isEmpty()) {
      ConsoleAttachments.close(
          socket, ConsoleAttachments.SERVER_ERROR, "too many consoles wait for their agents");
      return;
    }
    if (!streams.console(mac, ticket.get())) {
      attachments.cancel(ticket.get());
      ConsoleAttachments.close(
          socket,
          ConsoleAttachments.SERVER_ERROR,
          "the agent of machine " + name + " is not connected to this operator replica");
    }
  }

  /**
   * Relays the user's {@code socket} to the attach at the replica {@code to}, which holds the
   * machine's stream: binary frames both ways (each reader paused while the other side's queue is
   * full), the close of either side passed on.
   */
  private void forwardAttach(ServerWebSocket socket, java.net.URI to, MachineBoot mb, String user) {
    String namespace = mb.getMetadata().getNamespace();
    String name = mb.getMetadata().getName();
    socket.pause(); // keystrokes wait in the socket meanwhile
    io.vertx.core.http.WebSocketConnectOptions options =
        new io.vertx.core.http.WebSocketConnectOptions()
            .setSsl("https".equals(to.getScheme()))
            .setHost(to.getHost())
            .setPort(port(to))
            .setURI("/machines/" + namespace + "/" + name + "/console/attach")
            .setConnectTimeout(FORWARD_CONNECT_MILLIS);
    forwards
        .headers(to, ConsoleAccess.Want.ATTACH, namespace, name, user)
        .forEach(options::putHeader);
    webSockets()
        .connect(options)
        .onSuccess(
            remote -> {
              if (socket.isClosed()) {
                remote.close(ConsoleAttachments.NORMAL, "the user detached");
                return;
              }
              relay(socket, remote);
              relay(remote, socket);
              remote.closeHandler(
                  v -> {
                    Short code = remote.closeStatusCode();
                    String reason = remote.closeReason();
                    ConsoleAttachments.close(
                        socket,
                        code == null ? ConsoleAttachments.SERVER_ERROR : code,
                        code == null
                            ? "the replica that holds the console of " + name + " was lost"
                            : reason == null ? "" : reason);
                  });
              socket.closeHandler(
                  v -> {
                    if (!remote.isClosed()) {
                      remote.close(ConsoleAttachments.NORMAL, "the user detached");
                    }
                  });
              remote.exceptionHandler(e -> LOG.debugf("forwarded console of %s: %s", name, e));
              socket.resume();
            })
        .onFailure(
            e -> {
              String why =
                  e instanceof io.vertx.core.http.UpgradeRejectedException r
                      ? "refused it (HTTP " + r.getStatus() + ")"
                      : "could not be reached";
              LOG.warnf(
                  "could not forward the attach of %s/%s to %s: %s",
                  namespace, name, to, e.toString());
              ConsoleAttachments.close(
                  socket,
                  ConsoleAttachments.SERVER_ERROR,
                  "the replica that holds the console of " + name + " " + why);
            });
  }

  /** Binary frames of {@code from} to {@code to}; text frames are not keystrokes. */
  private static void relay(
      io.vertx.core.http.WebSocketBase from, io.vertx.core.http.WebSocketBase to) {
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

  private static void plain(RoutingContext ctx, int status, String body) {
    ctx.response()
        .setStatusCode(status)
        .putHeader(HttpHeaders.CONTENT_TYPE, "text/plain; charset=utf-8")
        .putHeader(HttpHeaders.CACHE_CONTROL, "no-store")
        .putHeader("X-Content-Type-Options", "nosniff")
        .end(body);
  }
}
