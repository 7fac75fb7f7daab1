package io.chrootbooter.agent.relay;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.concurrent.CompletableFuture;

/**
 * The operator's end of one console connection, on loopback: accepts one WebSocket (RFC 6455,
 * binary frames, as the operator relays them), keeps the request's path and {@code Authorization}
 * header, collects what the agent sends, sends what the test types, and records the agent's close.
 * The agent's JDK client is the real one; only the operator is stood in for, with the few lines of
 * the protocol a server needs.
 */
final class StandInOperator implements AutoCloseable {
  private static final String GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

  private final ServerSocket server;
  private final Thread thread;
  private final ByteArrayOutputStream received = new ByteArrayOutputStream();
  final CompletableFuture<String> request = new CompletableFuture<>();
  final CompletableFuture<String> closed = new CompletableFuture<>();
  private volatile Socket socket;
  private volatile OutputStream out;

  private StandInOperator() throws IOException {
    server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    thread = new Thread(this::serve, "stand-in operator");
    thread.setDaemon(true);
    thread.start();
  }

  static StandInOperator start() throws IOException {
    return new StandInOperator();
  }

  /** The console connection's URL for {@code ticket}. */
  URI uri(String ticket) {
    return URI.create(
        "ws://127.0.0.1:"
            + server.getLocalPort()
            + "/agent/v1/machines/52:54:00:12:34:56/console/live?ticket="
            + ticket);
  }

  /** Everything the agent sent so far, as text. */
  String text() {
    synchronized (received) {
      return received.toString(StandardCharsets.UTF_8);
    }
  }

  int size() {
    synchronized (received) {
      return received.size();
    }
  }

  /** Sends {@code text} as one binary frame, as the operator relays a user's keystrokes. */
  void type(String text) throws IOException {
    byte[] payload = text.getBytes(StandardCharsets.UTF_8);
    ByteArrayOutputStream frame = new ByteArrayOutputStream();
    frame.write(0x82);
    if (payload.length < 126) {
      frame.write(payload.length);
    } else {
      frame.write(126);
      frame.write(payload.length >> 8);
      frame.write(payload.length & 0xff);
    }
    frame.write(payload);
    synchronized (this) {
      // One write per frame: a frame cut in pieces waits for the peer's delayed ACK (Nagle).
      out.write(frame.toByteArray());
      out.flush();
    }
  }

  private void serve() {
    try (Socket s = server.accept()) {
      s.setTcpNoDelay(true);
      socket = s;
      InputStream in = s.getInputStream();
      out = s.getOutputStream();
      String head = readHead(in);
      String key = header(head, "Sec-WebSocket-Key");
      String accept =
          Base64.getEncoder()
              .encodeToString(
                  MessageDigest.getInstance("SHA-1")
                      .digest((key + GUID).getBytes(StandardCharsets.US_ASCII)));
      synchronized (this) {
        out.write(
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Accept: "
                    + accept
                    + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        out.flush();
      }
      request.complete(head);
      while (true) {
        int b0 = in.read();
        int b1 = in.read();
        if (b0 < 0 || b1 < 0) {
          closed.complete("lost");
          return;
        }
        long len = b1 & 0x7f;
        if (len == 126) {
          len = (in.read() << 8) | in.read();
        } else if (len == 127) {
          len = 0;
          for (int i = 0; i < 8; i++) {
            len = (len << 8) | in.read();
          }
        }
        byte[] mask = (b1 & 0x80) != 0 ? in.readNBytes(4) : new byte[4];
        byte[] payload = in.readNBytes((int) len);
        for (int i = 0; i < payload.length; i++) {
          payload[i] ^= mask[i % 4];
        }
        int opcode = b0 & 0x0f;
        if (opcode == 0x8) {
          int code = payload.length >= 2 ? ((payload[0] & 0xff) << 8) | (payload[1] & 0xff) : 1005;
          String reason =
              payload.length > 2
                  ? new String(payload, 2, payload.length - 2, StandardCharsets.UTF_8)
                  : "";
          synchronized (this) {
            out.write(new byte[] {(byte) 0x88, 2, payload[0], payload[1]});
            out.flush();
          }
          closed.complete(code + " " + reason);
          return;
        }
        if (opcode == 0x2 || opcode == 0x0) {
          synchronized (received) {
            received.write(payload);
            received.notifyAll();
          }
        }
      }
    } catch (Exception e) {
      request.completeExceptionally(e);
      closed.complete("error " + e);
    }
  }

  /** Waits until the agent sent {@code size} bytes in all. */
  void awaitSize(int size, long millis) throws InterruptedException {
    long until = System.nanoTime() + millis * 1_000_000L;
    synchronized (received) {
      while (received.size() < size) {
        long left = until - System.nanoTime();
        if (left <= 0) {
          throw new AssertionError("the agent sent " + received.size() + " of " + size + " bytes");
        }
        java.util.concurrent.TimeUnit.NANOSECONDS.timedWait(received, left);
      }
    }
  }

  private static String readHead(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    while (!head.toString(StandardCharsets.US_ASCII).endsWith("\r\n\r\n")) {
      int b = in.read();
      if (b < 0) {
        throw new IOException("the connection ended within the request");
      }
      head.write(b);
    }
    return head.toString(StandardCharsets.US_ASCII);
  }

  static String header(String head, String name) {
    for (String line : head.split("\r\n")) {
      int colon = line.indexOf(':');
      if (colon > 0 && line.substring(0, colon).trim().equalsIgnoreCase(name)) {
        return line.substring(colon + 1).trim();
      }
    }
    return null;
  }

  @Override
  public void close() throws IOException {
    server.close();
    Socket s = socket;
    if (s != null) {
      s.close();
    }
  }
}
