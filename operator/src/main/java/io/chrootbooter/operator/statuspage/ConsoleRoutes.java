package io.chrootbooter.operator.statuspage;

import io.chrootbooter.operator.console.ConsoleLogs;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.quarkus.runtime.StartupEvent;
import io.quarkus.vertx.http.ManagementInterface;
import io.vertx.core.http.HttpHeaders;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.Optional;

/**
 * A machine's recorded console on the admin port: {@code GET /machines/{namespace}/{name}/console}
 * the current (or last) boot's, {@code ?boot=previous} the one before, as plain text with
 * credentials redacted as on the status page. Headers name the boot ({@code Chrootbooter-Boot}),
 * its image and whether the target is gone.
 */
@ApplicationScoped
public class ConsoleRoutes {
  private static final String NAME = "[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?";

  private final ConsoleLogs logs;
  private final MachineDirectory directory;

  ConsoleRoutes(ConsoleLogs logs, MachineDirectory directory) {
    this.logs = logs;
    this.directory = directory;
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
          }
        });
  }

  void routes(@Observes ManagementInterface admin) {
    admin.router().get("/machines/:namespace/:name/console").blockingHandler(this::console, false);
  }

  private void console(RoutingContext ctx) {
    String namespace = ctx.pathParam("namespace");
    String name = ctx.pathParam("name");
    String boot = Optional.ofNullable(ctx.request().getParam("boot")).orElse("current");
    if (!namespace.matches(NAME) || !name.matches(NAME)) {
      plain(ctx, 400, "not a namespace and name of a MachineBoot\n");
      return;
    }
    if (!boot.equals("current") && !boot.equals("previous")) {
      plain(ctx, 400, "boot: current or previous\n");
      return;
    }
    if (directory.machine(namespace, name).isEmpty()) {
      plain(ctx, 404, "no MachineBoot " + namespace + "/" + name + "\n");
      return;
    }
    Optional<ConsoleLogs.View> view =
        boot.equals("current") ? logs.current(namespace, name) : logs.previous(namespace, name);
    if (view.isEmpty()) {
      plain(
          ctx,
          404,
          "no " + boot + " console of " + namespace + "/" + name + " recorded by this replica\n");
      return;
    }
    ConsoleLogs.View v = view.get();
    ctx.response()
        .putHeader("Chrootbooter-Boot", v.boot())
        .putHeader("Chrootbooter-Image", StatusView.redact(v.image() == null ? "" : v.image()))
        .putHeader("Chrootbooter-Ended", Boolean.toString(v.ended()));
    plain(ctx, 200, StatusView.redact(v.text()));
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
