package io.chrootbooter.agent.fetch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The session goes with image downloads from the operator's origin and nowhere else: two loopback
 * servers, the operator and a third-party image host, record the Authorization headers they get.
 */
class OperatorCredentialTest {
  private static final byte[] IMAGE = "image bytes".getBytes(StandardCharsets.UTF_8);

  private HttpServer operator;
  private HttpServer elsewhere;
  private final List<String> atOperator = new CopyOnWriteArrayList<>();
  private final List<String> atElsewhere = new CopyOnWriteArrayList<>();

  private static HttpServer server(List<String> seen) throws IOException {
    HttpServer server =
        HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.setExecutor(Executors.newCachedThreadPool());
    server.createContext(
        "/images/",
        exchange -> {
          seen.add(String.valueOf(exchange.getRequestHeaders().getFirst("Authorization")));
          exchange.sendResponseHeaders(200, IMAGE.length);
          try (OutputStream out = exchange.getResponseBody()) {
            out.write(IMAGE);
          }
        });
    server.start();
    return server;
  }

  @BeforeEach
  void start() throws IOException {
    atOperator.clear();
    atElsewhere.clear();
    operator = server(atOperator);
    elsewhere = server(atElsewhere);
    operator.createContext(
        "/images/moved",
        exchange -> {
          atOperator.add(String.valueOf(exchange.getRequestHeaders().getFirst("Authorization")));
          exchange.getResponseHeaders().set("Location", url(elsewhere) + "/images/x");
          exchange.sendResponseHeaders(302, -1);
          exchange.close();
        });
    OperatorCredential.use(URI.create(url(operator)), () -> "Bearer s3cret");
  }

  @AfterEach
  void stop() {
    OperatorCredential.clear();
    operator.stop(0);
    elsewhere.stop(0);
  }

  private static String url(HttpServer server) {
    return "http://127.0.0.1:" + server.getAddress().getPort();
  }

  private static byte[] fetch(String url) throws IOException {
    try (ImageStream in = ImageSources.open(url, FetchOptions.defaults())) {
      return in.readAllBytes();
    }
  }

  @Test
  void onlyTheOperatorsOriginGetsTheSession() throws IOException {
    assertThat(fetch(url(operator) + "/images/a")).isEqualTo(IMAGE);
    assertThat(fetch(url(elsewhere) + "/images/b")).isEqualTo(IMAGE);
    // The same host on the operator's port under another name is another origin by name only:
    // localhost is not 127.0.0.1 to the rule, which compares what the URLs say.
    String byName = "http://localhost:" + operator.getAddress().getPort() + "/images/c";
    assertThat(fetch(byName)).isEqualTo(IMAGE);
    assertThat(atOperator).containsExactly("Bearer s3cret", "null");
    assertThat(atElsewhere).containsExactly("null");
  }

  @Test
  void aRedirectFromTheOperatorIsNotFollowedWithTheSession() {
    assertThatThrownBy(() -> fetch(url(operator) + "/images/moved"))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("HTTP 302");
    assertThat(atOperator).containsExactly("Bearer s3cret");
    assertThat(atElsewhere).isEmpty();
  }

  @Test
  void originsCompareSchemeHostAndPort() {
    assertThat(OperatorCredential.origin(URI.create("HTTP://Op.Example/images/x")))
        .isEqualTo("http://op.example:80");
    assertThat(OperatorCredential.origin(URI.create("https://op.example/")))
        .isEqualTo("https://op.example:443");
    assertThat(OperatorCredential.forUrl(URI.create("https://127.0.0.1:1/images/x"))).isNull();
  }
}
