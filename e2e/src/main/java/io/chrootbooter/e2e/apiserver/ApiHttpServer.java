package io.chrootbooter.e2e.apiserver;

import io.fabric8.mockwebserver.dsl.HttpMethod;
import io.fabric8.mockwebserver.http.Buffer;
import io.fabric8.mockwebserver.http.Headers;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.fabric8.mockwebserver.vertx.ServerWebSocketHandler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The HTTP front of the embedded API, on Vert.x (which the fabric8 mock server already brings).
 *
 * <p>It exists because of watches: the mock server answers a watch only with a WebSocket upgrade,
 * which the fabric8 client uses but client-go (kubectl) does not; client-go reads a watch as a
 * chunked HTTP stream of JSON events. This front hands WebSocket upgrades to the mock server's own
 * {@link ServerWebSocketHandler} and serves every other watch as an {@link HttpWatchStream} fed by
 * the same CRUD-dispatcher listener. All other requests go through {@link ApiDispatcher}.
 */
final class ApiHttpServer implements AutoCloseable {

  private static final long START_TIMEOUT_SECONDS = 10;

  private final Vertx vertx;
  private final ApiDispatcher dispatcher;
  private final HttpServer server;

  private ApiHttpServer(Vertx vertx, ApiDispatcher dispatcher, HttpServer server) {
    this.vertx = vertx;
    this.dispatcher = dispatcher;
    this.server = server;
  }

  /**
   * Listens on {@code bind:port} (port 0 picks a free one).
   *
   * @throws IllegalStateException when the port cannot be bound
   */
  static ApiHttpServer start(ApiDispatcher dispatcher, String bind, int port) {
    Vertx vertx = Vertx.vertx();
    HttpServer http = vertx.createHttpServer(new HttpServerOptions().setHost(bind).setPort(port));
    ApiHttpServer server = new ApiHttpServer(vertx, dispatcher, http);
    http.requestHandler(server::handle);
    try {
      http.listen()
          .toCompletionStage()
          .toCompletableFuture()
          .get(START_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (Exception e) {
      vertx.close();
      throw new IllegalStateException("cannot listen on " + bind + ":" + port + ": " + e, e);
    }
    return server;
  }

  /** The bound port. */
  int port() {
    return server.actualPort();
  }

  private void handle(HttpServerRequest req) {
    boolean upgrade = "websocket".equalsIgnoreCase(req.getHeader("Upgrade"));
    if (upgrade) {
      MockResponse response = dispatcher.dispatch(recorded(req, new byte[0]));
      if (response.getWebSocketListener() != null) {
        req.toWebSocket()
            .onSuccess(new ServerWebSocketHandler(recorded(req, new byte[0]), response));
      } else {
        write(req, response);
      }
      return;
    }
    req.body()
        .onSuccess(
            body -> {
              RecordedRequest recorded = recorded(req, body.getBytes());
              MockResponse response = dispatcher.dispatch(recorded);
              if (response.getWebSocketListener() != null) {
                HttpWatchStream.open(vertx, req, recorded, response, dispatcher);
              } else {
                write(req, response);
              }
            })
        .onFailure(e -> req.response().setStatusCode(400).end(String.valueOf(e.getMessage())));
  }

  private static RecordedRequest recorded(HttpServerRequest req, byte[] body) {
    return new RecordedRequest(
        req.version().alpnName().toUpperCase(Locale.ROOT),
        HttpMethod.fromVertx(req.method()),
        req.uri(),
        Headers.builder().addAll(req.headers()).build(),
        new Buffer(body));
  }

  private static void write(HttpServerRequest req, MockResponse response) {
    var out = req.response().setStatusCode(response.code());
    response.getHeaders().toMultimap().forEach((name, values) -> out.headers().add(name, values));
    byte[] body = response.getBody() == null ? new byte[0] : response.getBody().getBytes();
    out.end(io.vertx.core.buffer.Buffer.buffer(body));
  }

  @Override
  public void close() {
    try {
      server
          .close()
          .toCompletionStage()
          .toCompletableFuture()
          .get(START_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("cannot close the HTTP server: " + e, e);
    } finally {
      vertx.close();
    }
  }
}
