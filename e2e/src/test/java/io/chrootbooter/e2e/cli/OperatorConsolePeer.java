package io.chrootbooter.e2e.cli;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.ServerWebSocket;
import java.io.ByteArrayOutputStream;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * The peer of the operator's console contract, on loopback: the admin port's side of {@code kubectl
 * boot logs}, {@code console} and {@code test-report} as the contract says the operator answers
 * them (bearer token required: 401 without or with an unknown one, 403 for a token that may read
 * but not attach; {@code ?boot=current|previous&follow=true}; the attach WebSocket with binary
 * frames both ways and close codes 1000, 1008, 1011; {@code /tests/{ns}/{name}/junit.xml}). It
 * stands in for the operator until the operator's side is tested against the real CLI.
 *
 * <p>Its machine {@code m1} answers a typed line the way a shell on a serial console does: it
 * echoes the keystrokes and answers {@code uname -r} with {@link #KERNEL}. Machine {@code m2} is
 * not running a target: an attach is closed with 1011 after the upgrade.
 */
final class OperatorConsolePeer implements AutoCloseable {

  static final String ADMIN_TOKEN = "tok-admin-5f2c";
  static final String VIEWER_TOKEN = "tok-viewer-81aa";
  static final String KERNEL = "6.1.0-42-amd64";
  static final String CURRENT = "[  OK  ] Reached target multi-user.target.\r\nm1 login: ";
  static final String PREVIOUS =
      "[  OK  ] Finished systemd-poweroff.service - System Power Off.\r\n"
          + "reboot: Power down\r\n";
  static final String JUNIT =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          + "<testsuites name=\"debian-smoke\" tests=\"1\" failures=\"0\" errors=\"0\">\n"
          + "  <testsuite name=\"m1\" tests=\"1\" failures=\"0\" errors=\"0\">\n"
          + "    <testcase classname=\"m1\" name=\"boots\" time=\"41.2\"/>\n"
          + "  </testsuite>\n</testsuites>\n";

  private final Vertx vertx = Vertx.vertx();
  private final HttpServer server;

  /** What each request path was asked with: the Authorization header ("" when none). */
  final Map<String, String> authorizations = new ConcurrentHashMap<>();

  /** The keystrokes each attach received, in order. */
  final List<ByteArrayOutputStream> typed = new CopyOnWriteArrayList<>();

  /** Whether the last attach ended (the client closed or went). */
  volatile boolean attachEnded;

  OperatorConsolePeer() throws Exception {
    server = vertx.createHttpServer(new HttpServerOptions().setHost("127.0.0.1").setPort(0));
    server.requestHandler(this::handle);
    server.listen().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  String url() {
    return "http://127.0.0.1:" + server.actualPort();
  }

  private void handle(HttpServerRequest req) {
    String auth = req.getHeader("Authorization");
    authorizations.put(req.path(), auth == null ? "" : auth);
    String path = req.path();
    boolean attach = path.endsWith("/console/attach");
    if (auth == null) {
      plain(req, 401, "no bearer token: log in with a kubeconfig that has one");
      return;
    }
    boolean admin = auth.equals("Bearer " + ADMIN_TOKEN);
    boolean viewer = auth.equals("Bearer " + VIEWER_TOKEN);
    if (!admin && !viewer) {
      plain(req, 401, "the token is not valid (TokenReview: not authenticated)");
      return;
    }
    if (attach && !admin) {
      plain(req, 403, "user viewer may not create machineboots/console in namespace default");
      return;
    }
    if (path.equals("/machines/default/m1/console/attach")
        || path.equals("/machines/default/m2/console/attach")) {
      req.toWebSocket().onSuccess(ws -> attached(path.contains("/m2/") ? "m2" : "m1", ws));
      return;
    }
    if (path.equals("/machines/default/m1/console")) {
      String boot = req.getParam("boot", "current");
      if (boot.equals("previous")) {
        plain(req, 200, PREVIOUS);
      } else if ("true".equals(req.getParam("follow"))) {
        follow(req);
      } else {
        plain(req, 200, CURRENT);
      }
      return;
    }
    if (path.equals("/tests/default/debian-smoke/junit.xml")) {
      req.response().putHeader("Content-Type", "application/xml").end(JUNIT);
      return;
    }
    plain(req, 404, "no such thing here: " + path);
  }

  /** A followed console: three pieces 200 ms apart, then the boot ends. */
  private void follow(HttpServerRequest req) {
    var response = req.response().setChunked(true).putHeader("Content-Type", "text/plain");
    response.write(CURRENT);
    vertx.setTimer(
        200,
        t1 -> {
          response.write("root\r\nPassword: ");
          vertx.setTimer(200, t2 -> response.end("\r\nreboot: Power down\r\n"));
        });
  }

  private void attached(String machine, ServerWebSocket ws) {
    attachEnded = false;
    ws.closeHandler(v -> attachEnded = true);
    if (machine.equals("m2")) {
      ws.close((short) 1011, "machine m2 is not running a target");
      return;
    }
    ByteArrayOutputStream keys = new ByteArrayOutputStream();
    typed.add(keys);
    StringBuilder line = new StringBuilder();
    ws.writeBinaryMessage(Buffer.buffer("\r\nDebian GNU/Linux 12 m1 ttyS0\r\n\r\nroot@m1:~# "));
    ws.binaryMessageHandler(
        b -> {
          byte[] bytes = b.getBytes();
          synchronized (keys) {
            keys.writeBytes(bytes);
          }
          for (byte x : bytes) {
            if (x == '\r' || x == '\n') {
              String cmd = line.toString();
              line.setLength(0);
              ws.writeBinaryMessage(Buffer.buffer("\r\n"));
              if (cmd.equals("uname -r")) {
                ws.writeBinaryMessage(Buffer.buffer(KERNEL + "\r\n"));
              } else if (cmd.equals("poweroff")) {
                ws.close((short) 1000, "the target ended");
                return;
              }
              ws.writeBinaryMessage(Buffer.buffer("root@m1:~# "));
            } else {
              line.append((char) x);
              ws.writeBinaryMessage(Buffer.buffer(new byte[] {x}));
            }
          }
        });
  }

  /** The keystrokes of the last attach. */
  String lastTyped() {
    if (typed.isEmpty()) {
      return "";
    }
    ByteArrayOutputStream keys = typed.get(typed.size() - 1);
    synchronized (keys) {
      return keys.toString(java.nio.charset.StandardCharsets.UTF_8);
    }
  }

  private static void plain(HttpServerRequest req, int status, String text) {
    req.response()
        .setStatusCode(status)
        .putHeader("Content-Type", "text/plain; charset=utf-8")
        .end(text + (status == 200 ? "" : "\n"));
  }

  @Override
  public void close() throws Exception {
    try {
      server.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }
}
