package io.chrootbooter.pxe;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The operator's {@code GET /boot/<mac>.ipxe} on loopback: 200 with a script for the MACs in {@link
 * #known}, 404 for the rest. Records every requested path.
 */
final class StandInOperator implements AutoCloseable {
  final Set<String> known = ConcurrentHashMap.newKeySet();
  final List<String> requests = new CopyOnWriteArrayList<>();
  private final HttpServer http;

  StandInOperator(String... macs) throws IOException {
    known.addAll(List.of(macs));
    http = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    http.createContext(
        "/boot/",
        exchange -> {
          String path = exchange.getRequestURI().getPath();
          requests.add(path);
          String mac = path.substring("/boot/".length()).replace(".ipxe", "");
          byte[] body = ("#!ipxe\necho machine " + mac + "\n").getBytes(StandardCharsets.US_ASCII);
          if (known.contains(mac)) {
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
              out.write(body);
            }
          } else {
            exchange.sendResponseHeaders(404, -1);
          }
          exchange.close();
        });
    http.start();
  }

  URI url() {
    return URI.create("http://127.0.0.1:" + http.getAddress().getPort());
  }

  @Override
  public void close() {
    http.stop(0);
  }
}
