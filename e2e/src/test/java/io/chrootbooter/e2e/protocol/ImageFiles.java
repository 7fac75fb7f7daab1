package io.chrootbooter.e2e.protocol;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The source the operator mirrors BootImages from: files served on loopback with plain {@code
 * GET}/{@code HEAD}.
 */
final class ImageFiles implements AutoCloseable {
  private final HttpServer server;
  private final ExecutorService executor = Executors.newFixedThreadPool(2);
  private final Map<String, byte[]> files = new ConcurrentHashMap<>();

  ImageFiles() throws IOException {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.setExecutor(executor);
    server.createContext("/", this::handle);
    server.start();
  }

  /**
   * Serves 256 KiB of seeded random bytes behind the squashfs magic {@code hsqs} as {@code name}:
   * enough for the operator, which checks the digest and sniffs the format. Returns the SHA-256.
   */
  String putSquashfs(String name, int seed) {
    byte[] bytes = new byte[256 * 1024];
    new Random(seed).nextBytes(bytes);
    System.arraycopy(new byte[] {'h', 's', 'q', 's'}, 0, bytes, 0, 4);
    files.put(name, bytes);
    return sha256(bytes);
  }

  /** The URL of a file. */
  String url(String name) {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/" + name;
  }

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      byte[] bytes = files.get(exchange.getRequestURI().getPath().substring(1));
      if (bytes == null) {
        exchange.sendResponseHeaders(404, -1);
        return;
      }
      boolean head = "HEAD".equals(exchange.getRequestMethod());
      exchange.getResponseHeaders().add("Content-Type", "application/octet-stream");
      exchange.sendResponseHeaders(200, head ? -1 : bytes.length);
      if (!head) {
        try (OutputStream out = exchange.getResponseBody()) {
          out.write(bytes);
        }
      }
    }
  }

  static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
    }
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
