package io.chrootbooter.operator.agentapi;

import io.chrootbooter.operator.console.ConsoleAttachments;
import io.chrootbooter.operator.machine.MacAddress;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpHeaders;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;

/**
 * {@code GET /agent/v1/machines/{mac}/console/live?ticket=…}, upgraded to a WebSocket: the console
 * connection an agent opens, outbound, when the desired-state stream hands it a ticket (a user
 * attached, see {@link ConsoleAttachments}). Authenticated with the machine's session like every
 * agent call (401, 403 as {@link AgentAuth}); a ticket that no attach of this machine waits under
 * is refused with 404 before the upgrade. Binary frames: the console's output towards the user,
 * keystrokes towards the machine.
 */
@ApplicationScoped
public class ConsoleLive {
  private final Enrolments enrolments;
  private final ConsoleAttachments attachments;
  private final Vertx vertx;

  ConsoleLive(Enrolments enrolments, ConsoleAttachments attachments, Vertx vertx) {
    this.enrolments = enrolments;
    this.attachments = attachments;
    this.vertx = vertx;
  }

  void routes(@Observes Router router) {
    router.get("/agent/v1/machines/:mac/console/live").handler(this::live);
  }

  private void live(RoutingContext ctx) {
    String mac = MacAddress.normalize(ctx.pathParam("mac")).orElse(null);
    if (mac == null) {
      plain(ctx, 400, "not a MAC address");
      return;
    }
    String ticket = ctx.request().getParam("ticket");
    String authorization = ctx.request().getHeader(HttpHeaders.AUTHORIZATION);
    ctx.request().pause();
    vertx
        .executeBlocking(() -> enrolments.check(mac, authorization, true), false)
        .onComplete(
            ar -> {
              if (ar.failed() || !ar.result().ok() || !attachments.waits(mac, ticket)) {
                ctx.request().resume(); // a plain answer follows, no upgrade
              }
              if (ar.failed()) {
                plain(ctx, 503, "the session could not be checked");
                return;
              }
              Enrolments.Verdict verdict = ar.result();
              if (!verdict.ok()) {
                if (verdict.status() == 401) {
                  ctx.response().putHeader("WWW-Authenticate", "Bearer");
                }
                plain(ctx, verdict.status(), verdict.message());
                return;
              }
              if (!attachments.waits(mac, ticket)) {
                plain(ctx, 404, "no attach of this machine waits under this ticket");
                return;
              }
              ctx.request()
                  .toWebSocket()
                  .onSuccess(agent -> attachments.claim(mac, ticket, agent))
                  .onFailure(e -> ctx.fail(e));
            });
  }

  private static void plain(RoutingContext ctx, int status, String message) {
    ctx.response()
        .setStatusCode(status)
        .putHeader(HttpHeaders.CONTENT_TYPE, "text/plain; charset=utf-8")
        .end(message + "\n");
  }
}
