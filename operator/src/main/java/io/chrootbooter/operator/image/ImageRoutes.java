package io.chrootbooter.operator.image;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootSpec;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.agentapi.Enrolments;
import io.chrootbooter.operator.machine.BootFetches;
import io.chrootbooter.operator.machine.MacAddress;
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
import java.util.regex.Matcher;
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
 *   <li>{@code GET|HEAD /verity/{sha256}}: the dm-verity hash tree of a squashfs image, to the
 *       machines the image is served to
 *   <li>{@code GET|HEAD /bootstrap/vmlinuz}, {@code /bootstrap/initramfs}
 * </ul>
 *
 * <p>Images are served only to enrolled machines, and to each only the image its MachineBoot names:
 * {@code Authorization: Bearer <session>} (see {@link Enrolments}); none, garbled, expired or
 * revoked → 401, a session of a machine whose desired state names another image → 403. The
 * bootstrap is public: firmware has no credential to present.
 */
@ApplicationScoped
public class ImageRoutes {
  private static final Pattern SHA256 = Pattern.compile("^[0-9a-f]{64}$");
  private static final Pattern ALIAS = Pattern.compile("^/images/([^/]+)/([^/]+)$");
  private static final String MACHINE = "cb.machine";

  private final ImageStore store;
  private final MachineDirectory directory;
  private final OperatorConfig config;
  private final Enrolments enrolments;
  private final VerityTrees trees;
  private final BootFetches fetches;

  ImageRoutes(
      ImageStore store,
      MachineDirectory directory,
      OperatorConfig config,
      Enrolments enrolments,
      VerityTrees trees,
      BootFetches fetches) {
    this.fetches = fetches;
    this.trees = trees;
    this.store = store;
    this.directory = directory;
    this.config = config;
    this.enrolments = enrolments;
  }

  void routes(@Observes Router router) {
    StaticHandler images =
        StaticHandler.create(FileSystemAccess.ROOT, store.imagesDir().toString())
            .setCachingEnabled(false)
            .setDirectoryListing(false)
            .setIncludeHidden(false)
            .setEnableRangeSupport(true)
            .setSendVaryHeader(false);
    router
        .route("/images/*")
        .method(HttpMethod.GET)
        .method(HttpMethod.HEAD)
        .handler(this::authenticate)
        .handler(this::authorize);
    router.route(HttpMethod.GET, "/images/:namespace/:name").handler(this::alias);
    router.route(HttpMethod.HEAD, "/images/:namespace/:name").handler(this::alias);
    router
        .route("/images/*")
        .method(HttpMethod.GET)
        .method(HttpMethod.HEAD)
        .handler(this::byDigest)
        .handler(images);

    StaticHandler hashTrees =
        StaticHandler.create(FileSystemAccess.ROOT, store.verityDir().toString())
            .setCachingEnabled(false)
            .setDirectoryListing(false)
            .setIncludeHidden(false)
            .setEnableRangeSupport(true)
            .setSendVaryHeader(false);
    router
        .route("/verity/*")
        .method(HttpMethod.GET)
        .method(HttpMethod.HEAD)
        .handler(this::authenticate)
        .handler(this::authorize)
        .handler(this::treeByDigest)
        .handler(hashTrees);

    StaticHandler bootstrap =
        StaticHandler.create(
                FileSystemAccess.ROOT, config.bootstrap().dir().toAbsolutePath().toString())
            .setDirectoryListing(false)
            .setIncludeHidden(false)
            .setEnableRangeSupport(true)
            .setSendVaryHeader(false)
            .setCacheEntryTimeout(1000);
    router
        .route("/bootstrap/*")
        .method(HttpMethod.GET)
        .method(HttpMethod.HEAD)
        .handler(this::timeServed)
        .handler(bootstrap);
  }

  /**
   * A machine's kernel or initramfs ({@code ?mac=}, as its iPXE script names them): when the last
   * byte is written, the flight recorder learns when the request came and how fast it was served
   * ({@link BootFetches}, which attributes it to the machine only from the address its script went
   * to). The file is served the same with or without it.
   */
  private void timeServed(RoutingContext ctx) {
    String file = ctx.normalizedPath().substring("/bootstrap/".length());
    String mac = ctx.request().getParam("mac");
    var remote = ctx.request().remoteAddress();
    if (ctx.request().method() == HttpMethod.GET
        && mac != null
        && remote != null
        && remote.hostAddress() != null
        && (file.equals("vmlinuz") || file.equals("initramfs"))) {
      Optional<String> machine = MacAddress.normalize(mac);
      if (machine.isPresent()) {
        java.time.Instant start = java.time.Instant.now();
        String address = remote.hostAddress();
        ctx.addBodyEndHandler(
            v -> {
              int status = ctx.response().getStatusCode();
              if (status == 200 || status == 206) {
                fetches.fileServed(
                    machine.get(),
                    address,
                    file,
                    start,
                    java.time.Instant.now(),
                    ctx.response().bytesWritten());
              }
            });
      }
    }
    ctx.next();
  }

  /**
   * The session of the request (checked once: an alias is routed again as its digest), or the
   * refusal. The session's record is in memory; only a session issued a moment ago by another
   * replica needs a read of its Lease, which runs on a worker thread.
   */
  private void authenticate(RoutingContext ctx) {
    if (ctx.get(MACHINE) != null) {
      ctx.next();
      return;
    }
    String authorization = ctx.request().getHeader(HttpHeaders.AUTHORIZATION);
    Enrolments.Verdict verdict = enrolments.check(null, authorization, false);
    if (verdict != null) {
      authenticated(ctx, verdict);
      return;
    }
    ctx.vertx()
        .executeBlocking(() -> enrolments.check(null, authorization, true), false)
        .onComplete(
            result -> {
              if (result.succeeded()) {
                authenticated(ctx, result.result());
              } else {
                ctx.fail(result.cause());
              }
            });
  }

  private void authenticated(RoutingContext ctx, Enrolments.Verdict verdict) {
    if (!verdict.ok()) {
      var response = ctx.response().setStatusCode(verdict.status());
      if (verdict.status() == 401) {
        response.putHeader("WWW-Authenticate", "Bearer");
      }
      response
          .putHeader(HttpHeaders.CONTENT_TYPE, "text/plain; charset=utf-8")
          .end(verdict.message() + "\n");
      return;
    }
    ctx.put(MACHINE, verdict.mac());
    ctx.next();
  }

  /**
   * 403 unless the machine's MachineBoot names the image the path does. A digest the store does not
   * hold is 404 to any enrolled machine: digests are no secret, a BootImage's status shows them.
   */
  private void authorize(RoutingContext ctx) {
    String path = ctx.normalizedPath();
    if (path.startsWith("/verity/")) {
      String sha = path.substring("/verity/".length());
      if (!SHA256.matcher(sha).matches() || store.findTree(sha).isEmpty()) {
        ctx.next(); // 404 further on
        return;
      }
      path = "/images/" + sha;
    }
    String rest = path.substring("/images/".length());
    Matcher alias = ALIAS.matcher(path);
    boolean digest = SHA256.matcher(rest).matches();
    if ((!digest && !alias.matches()) || (digest && store.find(rest).isEmpty())) {
      ctx.next(); // no image by that name or digest: 404 further on
      return;
    }
    Optional<MachineBoot> mb = directory.byMac(ctx.get(MACHINE));
    String ns = mb.map(m -> m.getMetadata().getNamespace()).orElse(null);
    // A machine a BootTest holds fetches the image under test.
    String ref = mb.map(TestHold::effectiveSpec).map(MachineBootSpec::imageRef).orElse(null);
    boolean named;
    if (ref == null) {
      named = false;
    } else if (digest) {
      named =
          directory
              .image(ns, ref)
              .map(BootImage::getStatus)
              .map(s -> rest.equals(s.sha256()))
              .orElse(false);
    } else {
      named = alias.group(1).equals(ns) && alias.group(2).equals(ref);
    }
    if (!named) {
      ctx.response()
          .setStatusCode(403)
          .putHeader(HttpHeaders.CONTENT_TYPE, "text/plain; charset=utf-8")
          .end("this machine's MachineBoot does not name this image\n");
      return;
    }
    ctx.next();
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
    immutable(ctx, file.get(), "\"" + sha + "\"");
  }

  /**
   * {@code GET|HEAD /verity/{sha256}}: the dm-verity hash tree of a stored squashfs image, to the
   * machines the image itself is served to; its ETag is the tree's root hash (a tree computed again
   * has another salt, so other bytes).
   */
  private void treeByDigest(RoutingContext ctx) {
    String sha = ctx.normalizedPath().substring("/verity/".length());
    Optional<VerityTree.Header> header =
        SHA256.matcher(sha).matches() ? trees.find(sha) : Optional.empty();
    Optional<Path> file = header.isEmpty() ? Optional.empty() : store.findTree(sha);
    if (file.isEmpty()) {
      ctx.response()
          .setStatusCode(404)
          .end("no hash tree " + (SHA256.matcher(sha).matches() ? "of image " + sha : "") + "\n");
      return;
    }
    immutable(ctx, file.get(), "\"verity-" + header.get().rootHashHex() + "\"");
  }

  /**
   * ETag, If-None-Match, If-Range, Last-Modified and Cache-Control of a file that never changes.
   */
  private void immutable(RoutingContext ctx, Path file, String etag) {
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
    String lastModified = lastModified(file);
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
