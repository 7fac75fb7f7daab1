package io.chrootbooter.e2e.apiserver;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.http.ByteString;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.fabric8.mockwebserver.http.WebSocket;
import io.fabric8.mockwebserver.http.WebSocketListener;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A watch served as client-go reads it: one chunked HTTP response, one JSON {@code WatchEvent} per
 * line. It poses as the {@link WebSocket} the CRUD dispatcher's watch listener writes to, so event
 * selection stays the mock server's.
 *
 * <p>On the way out each event is adjusted to what a real API server would send:
 *
 * <ul>
 *   <li>the listener replays every existing object as {@code ADDED} when it opens; a client that
 *       watches from a {@code resourceVersion} (kubectl after its initial list) has seen those, so
 *       {@code ADDED} events at or below that version are dropped;
 *   <li>the {@code fieldSelector} is applied (the listener only knows {@code metadata.name});
 *   <li>with {@code Accept: ...as=Table} the object becomes a one-row {@code Table} ({@code kubectl
 *       get -w});
 *   <li>{@code timeoutSeconds} ends the stream, as informers expect.
 * </ul>
 */
final class HttpWatchStream implements WebSocket {

  private final RecordedRequest request;
  private final HttpServerResponse response;
  private final Context context;
  private final ResourcePath path;
  private final Optional<ResourceType> tableType;
  private final TableConverter tables;
  private final long sinceVersion;
  private final FieldSelector selector;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final ObjectMapper mapper = Serialization.jsonMapper();

  private HttpWatchStream(
      RecordedRequest request,
      HttpServerResponse response,
      Context context,
      ResourcePath path,
      Optional<ResourceType> tableType,
      TableConverter tables) {
    this.request = request;
    this.response = response;
    this.context = context;
    this.path = path;
    this.tableType = tableType;
    this.tables = tables;
    this.sinceVersion = parseVersion(path.query().get("resourceVersion"));
    this.selector = FieldSelector.parse(path.query().getOrDefault("fieldSelector", ""));
  }

  /** Starts streaming the events of the listener in {@code dispatched}. */
  static void open(
      Vertx vertx,
      HttpServerRequest req,
      RecordedRequest recorded,
      MockResponse dispatched,
      ApiDispatcher dispatcher) {
    ResourcePath path = ResourcePath.parse(recorded.getPath()).orElseThrow();
    Optional<ResourceType> tableType =
        TableConverter.wantsTable(recorded.getHeader("Accept"))
            ? dispatcher.catalog().find(path.group(), path.version(), path.plural())
            : Optional.empty();
    HttpServerResponse out =
        req.response()
            .setStatusCode(200)
            .setChunked(true)
            .putHeader("Content-Type", "application/json")
            .putHeader("Transfer-Encoding", "chunked");
    out.write("");
    HttpWatchStream stream =
        new HttpWatchStream(
            recorded, out, vertx.getOrCreateContext(), path, tableType, dispatcher.tables());
    WebSocketListener listener = dispatched.getWebSocketListener();
    out.closeHandler(v -> stream.closedByClient(listener));
    String timeout = path.query().get("timeoutSeconds");
    if (timeout != null && timeout.matches("[0-9]{1,6}") && Long.parseLong(timeout) > 0) {
      vertx.setTimer(Long.parseLong(timeout) * 1000, t -> stream.close(1000, "timeout"));
      out.endHandler(v -> stream.closedByClient(listener));
    }
    listener.onOpen(stream, dispatched);
  }

  private void closedByClient(WebSocketListener listener) {
    if (closed.compareAndSet(false, true)) {
      listener.onClosed(this, 1000, "client went away");
    }
  }

  private static long parseVersion(String rv) {
    return rv != null && rv.matches("[0-9]{1,18}") ? Long.parseLong(rv) : 0;
  }

  @Override
  public RecordedRequest request() {
    return request;
  }

  @Override
  public boolean send(String text) {
    if (closed.get()) {
      return false;
    }
    Optional<String> line = adjust(text);
    line.ifPresent(
        l ->
            context.runOnContext(
                v -> {
                  if (!closed.get()) {
                    response.write(l + "\n");
                  }
                }));
    return true;
  }

  @Override
  public boolean send(byte[] bytes) {
    return send(new String(bytes, java.nio.charset.StandardCharsets.UTF_8));
  }

  @Override
  public boolean send(ByteString bytes) {
    return send(bytes.utf8());
  }

  @Override
  public boolean close(int code, String reason) {
    context.runOnContext(
        v -> {
          if (!response.ended() && !response.closed()) {
            response.end();
          }
        });
    return true;
  }

  private Optional<String> adjust(String text) {
    JsonNode event;
    try {
      event = mapper.readTree(text);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("the watch listener sent invalid JSON: " + text, e);
    }
    JsonNode object = event.path("object");
    String type = event.path("type").asText();
    long version = parseVersion(object.path("metadata").path("resourceVersion").asText());
    if (type.equals("ADDED") && sinceVersion > 0 && version <= sinceVersion) {
      return Optional.empty();
    }
    if (!selector.matches(object)) {
      return Optional.empty();
    }
    if (tableType.isPresent() && event instanceof ObjectNode e) {
      e.set("object", tables.table(tableType.get(), object, path.query().get("includeObject")));
    }
    return Optional.of(event.toString());
  }
}
