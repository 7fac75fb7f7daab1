package io.chrootbooter.operator.boottest;

import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.Patterns;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.vertx.http.ManagementInterface;
import io.vertx.core.http.HttpHeaders;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.regex.Pattern;

/**
 * {@code GET /tests/{namespace}/{name}/junit.xml} on the admin port (the management interface): a
 * BootTest's results as JUnit XML ({@link JunitReport}), for CI systems. Not on the machine port:
 * machines have no business reading test results.
 */
@ApplicationScoped
public class BootTestRoutes {
  private static final Pattern NAME = Pattern.compile(Patterns.OBJECT_NAME);

  private final KubernetesClient client;

  BootTestRoutes(KubernetesClient client) {
    this.client = client;
  }

  void routes(@Observes ManagementInterface admin) {
    admin.router().get("/tests/:namespace/:name/junit.xml").blockingHandler(this::junit, false);
  }

  private void junit(RoutingContext ctx) {
    String ns = ctx.pathParam("namespace");
    String name = ctx.pathParam("name");
    if (!NAME.matcher(ns).matches() || !NAME.matcher(name).matches()) {
      ctx.response()
          .setStatusCode(400)
          .putHeader(HttpHeaders.CONTENT_TYPE, "text/plain; charset=utf-8")
          .end("not a namespace and BootTest name\n");
      return;
    }
    BootTest bt = client.resources(BootTest.class).inNamespace(ns).withName(name).get();
    if (bt == null) {
      ctx.response()
          .setStatusCode(404)
          .putHeader(HttpHeaders.CONTENT_TYPE, "text/plain; charset=utf-8")
          .end("no BootTest " + ns + "/" + name + "\n");
      return;
    }
    ctx.response()
        .putHeader(HttpHeaders.CONTENT_TYPE, "application/xml; charset=utf-8")
        .end(JunitReport.of(bt));
  }
}
