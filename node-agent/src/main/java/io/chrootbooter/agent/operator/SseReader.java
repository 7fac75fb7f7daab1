package io.chrootbooter.agent.operator;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * Reads a {@code text/event-stream} (the WHATWG HTML "server-sent events" format) and hands each
 * complete event to a consumer. Pure apart from the stream; bounded, because the server is not
 * trusted: a line or an event larger than {@link #MAX_EVENT} bytes fails the stream.
 */
public final class SseReader {
  /** The largest event accepted; a desired state is well under 4 KiB. */
  public static final int MAX_EVENT = 256 * 1024;

  private final Consumer<SseEvent> events;
  private final Runnable activity;
  private final StringBuilder data = new StringBuilder();
  private String name;
  private String id;
  private boolean hasData;

  /**
   * @param events receives each dispatched event
   * @param activity runs for every line, comments (heartbeats) included: the caller's liveness
   */
  public SseReader(Consumer<SseEvent> events, Runnable activity) {
    this.events = events;
    this.activity = activity;
  }

  /** Reads until the stream ends; an event cut off by the end is dropped, as the format says. */
  public void read(InputStream in) throws IOException {
    byte[] line = new byte[MAX_EVENT];
    int length = 0;
    boolean lastWasCr = false;
    byte[] buffer = new byte[8192];
    int n;
    while ((n = in.read(buffer)) >= 0) {
      for (int i = 0; i < n; i++) {
        byte b = buffer[i];
        if (b == '\n' && lastWasCr) {
          lastWasCr = false;
          continue; // the LF of a CRLF
        }
        lastWasCr = b == '\r';
        if (b == '\n' || b == '\r') {
          line(new String(line, 0, length, StandardCharsets.UTF_8));
          length = 0;
        } else {
          if (length == line.length) {
            throw new IOException("an event stream line is longer than " + MAX_EVENT + " bytes");
          }
          line[length++] = b;
        }
      }
    }
  }

  /** Processes one line (without its end). */
  void line(String line) throws IOException {
    activity.run();
    if (line.isEmpty()) {
      dispatch();
      return;
    }
    if (line.startsWith(":")) {
      return; // a comment: the operator's heartbeat
    }
    int colon = line.indexOf(':');
    String field = colon < 0 ? line : line.substring(0, colon);
    String value = colon < 0 ? "" : line.substring(colon + 1);
    if (value.startsWith(" ")) {
      value = value.substring(1);
    }
    switch (field) {
      case "event" -> name = value;
      case "id" -> {
        if (value.indexOf('\0') < 0) {
          id = value;
        }
      }
      case "data" -> {
        if (data.length() + value.length() > MAX_EVENT) {
          throw new IOException("an event is larger than " + MAX_EVENT + " bytes");
        }
        if (hasData) {
          data.append('\n');
        }
        data.append(value);
        hasData = true;
      }
      default -> {
        // retry and unknown fields: ignored
      }
    }
  }

  private void dispatch() {
    if (hasData) {
      events.accept(new SseEvent(name == null ? "message" : name, id, data.toString()));
    }
    data.setLength(0);
    hasData = false;
    name = null;
  }
}
