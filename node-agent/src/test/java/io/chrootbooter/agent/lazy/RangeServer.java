package io.chrootbooter.agent.lazy;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The operator's image route as the agent sees it, on 127.0.0.1: one image at {@code /image} with
 * {@code bytes=a-b} ranges, its digest as ETag, a required session; and faults a test switches on:
 * one byte flipped in what it sends, or every request answered 503 (the network is "gone").
 */
public final class RangeServer implements AutoCloseable {
  private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-(\\d+)");

  private final HttpServer server;
  private final ExecutorService executor = Executors.newFixedThreadPool(8);
  private final byte[] body;
  private final String etag;
  private final String authorization;
  private final AtomicInteger ranges = new AtomicInteger();
  private final AtomicInteger current = new AtomicInteger();
  private final AtomicInteger most = new AtomicInteger();
  private volatile long flip = -1;
  private volatile boolean down;
  private volatile byte[] tree = new byte[0];
  private volatile long delayMillis;
  private final java.util.List<Long> starts =
      java.util.Collections.synchronizedList(new java.util.ArrayList<>());

  public RangeServer(byte[] body, String sha256, String authorization) throws IOException {
    this.body = body;
    this.etag = "\"" + sha256 + "\"";
    this.authorization = authorization;
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 32);
    server.createContext("/image", this::handle);
    server.createContext("/tree", this::handleTree);
    server.setExecutor(executor);
    server.start();
  }

  public String url() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/image";
  }

  /** Serves {@code bytes} whole at {@code /tree}, to the same session. */
  void tree(byte[] bytes) {
    tree = bytes;
  }

  String treeUrl() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/tree";
  }

  private void handleTree(HttpExchange exchange) throws IOException {
    try (exchange) {
      if (down || !authorization.equals(exchange.getRequestHeaders().getFirst("Authorization"))) {
        exchange.sendResponseHeaders(down ? 503 : 401, -1);
        return;
      }
      exchange.sendResponseHeaders(200, tree.length);
      exchange.getResponseBody().write(tree);
    } catch (IOException expected) {
      // The client went away.
    }
  }

  /** Sends byte {@code offset} with its lowest bit flipped from now on; -1 for none. */
  void flip(long offset) {
    flip = offset;
  }

  /** Answers 503 to everything while {@code down}. */
  void down(boolean down) {
    this.down = down;
  }

  /** Waits {@code millis} before answering each range request: a slow network. */
  void delay(long millis) {
    this.delayMillis = millis;
  }

  /** The first byte of each range request answered 206, in the order they were asked. */
  java.util.List<Long> starts() {
    synchronized (starts) {
      return java.util.List.copyOf(starts);
    }
  }

  /** The most range requests that were being answered at once. */
  int mostAtOnce() {
    return most.get();
  }

  /** The range requests answered 206. */
  int ranges() {
    return ranges.get();
  }

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      if (down) {
        exchange.sendResponseHeaders(503, -1);
        return;
      }
      if (!authorization.equals(exchange.getRequestHeaders().getFirst("Authorization"))) {
        exchange.sendResponseHeaders(401, -1);
        return;
      }
      String range = exchange.getRequestHeaders().getFirst("Range");
      Matcher m = range == null ? null : RANGE.matcher(range);
      exchange.getResponseHeaders().add("ETag", etag);
      if (m == null || !m.matches()) {
        if (exchange.getRequestMethod().equals("HEAD")) {
          exchange.getResponseHeaders().add("Content-Length", String.valueOf(body.length));
          exchange.sendResponseHeaders(200, -1);
        } else {
          exchange.sendResponseHeaders(200, body.length);
          exchange.getResponseBody().write(body);
        }
        return;
      }
      int now = current.incrementAndGet();
      most.accumulateAndGet(now, Math::max);
      try {
        long wait = delayMillis;
        if (wait > 0) {
          try {
            Thread.sleep(wait);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
          }
        }
      } finally {
        current.decrementAndGet();
      }
      if (down) {
        exchange.sendResponseHeaders(503, -1);
        return;
      }
      long from = Long.parseLong(m.group(1));
      long to = Math.min(Long.parseLong(m.group(2)), body.length - 1);
      if (from > to) {
        exchange.sendResponseHeaders(416, -1);
        return;
      }
      byte[] part = java.util.Arrays.copyOfRange(body, (int) from, (int) to + 1);
      long f = flip;
      if (f >= from && f <= to) {
        part[(int) (f - from)] ^= 1;
      }
      exchange
          .getResponseHeaders()
          .add("Content-Range", "bytes " + from + "-" + to + "/" + body.length);
      ranges.incrementAndGet();
      starts.add(from);
      exchange.sendResponseHeaders(206, part.length);
      exchange.getResponseBody().write(part);
    } catch (IOException expected) {
      // The client went away.
    }
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
