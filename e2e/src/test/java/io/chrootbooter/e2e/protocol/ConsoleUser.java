package io.chrootbooter.e2e.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/**
 * A user of a machine's live console ({@code /machines/{ns}/{name}/console/attach}), as {@code
 * kubectl boot console} is: what the console printed, the close code and reason, keystrokes sent.
 */
final class ConsoleUser {
  private final ByteArrayOutputStream seen = new ByteArrayOutputStream();
  private final CompletableFuture<String> closed = new CompletableFuture<>();
  private WebSocket socket;

  private final WebSocket.Listener listener =
      new WebSocket.Listener() {
        @Override
        public CompletionStage<?> onBinary(WebSocket ws, ByteBuffer data, boolean last) {
          byte[] b = new byte[data.remaining()];
          data.get(b);
          synchronized (seen) {
            seen.writeBytes(b);
          }
          ws.request(1);
          return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket ws, int code, String reason) {
          closed.complete(code + " " + reason);
          return null;
        }
      };

  /** The upgrade with {@code token}, not yet completed (a refusal fails it). */
  static CompletableFuture<WebSocket> attempt(HttpClient http, URI attach, String token) {
    return http.newWebSocketBuilder()
        .header("Authorization", "Bearer " + token)
        .buildAsync(attach, new ConsoleUser().listener);
  }

  /** Attached with {@code token}, within 10 s. */
  static ConsoleUser attach(HttpClient http, URI attach, String token) throws Exception {
    ConsoleUser user = new ConsoleUser();
    user.socket =
        http.newWebSocketBuilder()
            .header("Authorization", "Bearer " + token)
            .buildAsync(attach, user.listener)
            .get(10, TimeUnit.SECONDS);
    return user;
  }

  /** Waits up to 10 s until what the console printed ends with {@code end}. */
  void awaitOutputEndingWith(String end) {
    await("the console's output at the user")
        .atMost(Duration.ofSeconds(10))
        .until(
            () -> {
              synchronized (seen) {
                return seen.toString(StandardCharsets.UTF_8).endsWith(end);
              }
            });
  }

  /** Sends {@code keys} as one binary frame. */
  void type(String keys) throws Exception {
    socket
        .sendBinary(ByteBuffer.wrap(keys.getBytes(StandardCharsets.UTF_8)), true)
        .get(10, TimeUnit.SECONDS);
  }

  /** Asserts that the operator closed the console within 10 s with {@code codeAndReason}. */
  void assertClosedWith(String codeAndReason) throws Exception {
    assertThat(closed.get(10, TimeUnit.SECONDS)).isEqualTo(codeAndReason);
  }

  /** Waits up to 10 s until the console's side received exactly {@code keys}. */
  static void awaitTyped(ByteArrayOutputStream typed, String keys) {
    await("the keystrokes at the console")
        .atMost(Duration.ofSeconds(10))
        .until(
            () -> {
              synchronized (typed) {
                return typed.toString(StandardCharsets.UTF_8).equals(keys);
              }
            });
  }
}
