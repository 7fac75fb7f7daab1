package io.chrootbooter.operator.image;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.netty.handler.codec.DateFormatter;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.FileSystemAccess;
import io.vertx.ext.web.handler.StaticHandler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Date;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Serves images and the bootstrap with Vert.x's {@link StaticHandler}: {@code sendfile} (zero-copy,
 * never on the heap, never blocking the event loop), single {@code Range} → 206, an unsatisfiable
 * range → 416, {@code Last-Modified}. Images additionally carry their digest as {@code ETag},
 * answer {@code If-None-Match} with 304 and honour {@code If-Range}: their bytes never change under
 * a digest.
 *
 * <ul>
 *   <li>{@code GET|HEAD /images/{sha256}}
 *   <li>{@code GET|HEAD /images/{namespace}/{name}}: the BootImage's current image
 *   <li>{@code GET|HEAD /bootstrap/vmlinuz}, {@code /bootstrap/initramfs}
 * </ul>
 */
@ApplicationScoped
public class ImageRoutes {
  private static final Pattern SHA256 = Pattern.compile("^[0-9a-f]{64}$");

  private final ImageStore store;
  private final MachineDirectory directory;
  private final OperatorConfig config;

  ImageRoutes(ImageStore store, MachineDirectory directory, OperatorConfig config) {
    this.store = store;
    this.directory = directory;
    this.config = config;
  }

  void routes(@Observes Router router) {
    StaticHandler images =
        StaticHandler.create(FileSystemAccess.ROOT, store.imagesDir().toString())
            .setCachingEnabled(false)
            .setDirectoryListing(false)
            .setIncludeHidden(false)
            .setEnableRangeSupport(true)
            .setSendVaryHeader(false);
    router.route(HttpMethod.GET, "/images/:namespace/:name").handler(this::alias);
    router.route(HttpMethod.HEAD, "/images/:namespace/:name").handler(this::alias);
    router
        .route("/images/*")
        .method(HttpMethod.GET)
        .method(HttpMethod.HEAD)
        .handler(this::byDigest)
        .handler(images);

    StaticHandler bootstrap =
        StaticHandler.create(
                FileSystemAccess.ROOT, config.bootstrap().dir().toAbsolutePath().toString())
            .setDirectoryListing(false)
            .setIncludeHidden(false)
            .setEnableRangeSupport(true)
            .setSendVaryHeader(false)
            .setCacheEntryTimeout(1000);
    router.route("/bootstrap/*").method(HttpMethod.GET).method(HttpMethod.HEAD).handler(bootstrap);
  }

  private void alias(RoutingContext ctx) {
    Optional<String> sha =
        directory
            .image(ctx.pathParam("namespace"), ctx.pathParam("name"))
            .filter(i -> i.getStatus() != null && i.getStatus().phase() == BootImagePhase.Ready)
            .map(BootImage::getStatus)
            .map(s -> s.sha256());
    if (sha.isEmpty()) {
      ctx.response()
          .setStatusCode(404)
          .end(
              "no Ready BootImage "
                  + ctx.pathParam("namespace")
                  + "/"
                  + ctx.pathParam("name")
                  + "\n");
      return;
    }
    ctx.reroute("/images/" + sha.get());
  }

  private void byDigest(RoutingContext ctx) {
    String sha = ctx.normalizedPath().substring("/images/".length());
    Optional<Path> file = SHA256.matcher(sha).matches() ? store.find(sha) : Optional.empty();
    if (file.isEmpty()) {
      ctx.response()
          .setStatusCode(404)
          .end("no image " + (SHA256.matcher(sha).matches() ? sha : "") + "\n");
      return;
    }
    String etag = "\"" + sha + "\"";
    String ifNoneMatch = ctx.request().getHeader(HttpHeaders.IF_NONE_MATCH);
    if (ifNoneMatch != null && (ifNoneMatch.equals(etag) || ifNoneMatch.equals("*"))) {
      ctx.response().setStatusCode(304).putHeader(HttpHeaders.ETAG, etag).end();
      return;
    }
    String ifRange = ctx.request().getHeader("If-Range");
    if (ifRange != null && !ifRange.equals(etag)) {
      // RFC 9110 §13.1.5: a validator that does not match means "send the whole thing".
      ctx.request().headers().remove("Range");
    }
    // The StaticHandler writes Last-Modified only with its caching on, which images do not use:
    // their ETag and Cache-Control say more. A stat of a file the lookup above just found.
    String lastModified = lastModified(file.get());
    ctx.addHeadersEndHandler(
        v ->
            ctx.response()
                .putHeader(HttpHeaders.ETAG, etag)
                .putHeader(HttpHeaders.LAST_MODIFIED, lastModified)
                .putHeader(HttpHeaders.CACHE_CONTROL, "public, max-age=31536000, immutable")
                .putHeader(HttpHeaders.CONTENT_TYPE, "application/octet-stream"));
    ctx.next();
  }

  /** The file's modification time as an HTTP-date (RFC 9110 §5.6.7). */
  private static String lastModified(Path file) {
    try {
      return DateFormatter.format(new Date(Files.getLastModifiedTime(file).toMillis()));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot stat " + file, e);
    }
  }
}
