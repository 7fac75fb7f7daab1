import java.io.IOException;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The console's keystroke round trip, for bench/lab.sh: a key typed at a machine's console to its
 * echo (the target's tty echoes it), N times; prints each sample's milliseconds on stderr and the
 * median on stdout. Each key is erased again (DEL, which the tty's line discipline echoes as
 * backspace-space-backspace) so that the target's line ends up as it was.
 *
 * <pre>
 *   java ConsoleRtt.java ws ws://127.0.0.1:9000/machines/default/m1/console/attach N   (CB_TOKEN)
 *   java ConsoleRtt.java unix /path/to/console.sock N
 * </pre>
 *
 * {@code ws}: through the operator's attach WebSocket (binary frames both ways), with the bearer
 * token in the environment variable CB_TOKEN (never on the command line, never printed). {@code
 * unix}: on the machine's real serial console (QEMU's socket), the path of a person at the machine.
 * JDK only.
 */
public final class ConsoleRtt {
  private static final Duration QUIET = Duration.ofSeconds(1);
  private static final Duration ECHO = Duration.ofSeconds(20);

  /** A console: keys in, output out. */
  interface Console extends AutoCloseable {
    void send(byte[] keys) throws Exception;

    @Override
    void close() throws Exception;
  }

  private static final LinkedBlockingQueue<byte[]> OUTPUT = new LinkedBlockingQueue<>();

  public static void main(String[] args) throws Exception {
    if (args.length != 3 || !args[2].matches("[1-9][0-9]{0,3}")) {
      System.err.println("usage: ConsoleRtt ws URL N | unix SOCKET N");
      System.exit(2);
    }
    int n = Integer.parseInt(args[2]);
    try (Console console =
        switch (args[0]) {
          case "ws" -> webSocket(URI.create(args[1]));
          case "unix" -> unixSocket(Path.of(args[1]));
          default -> throw new IllegalArgumentException("ws or unix, not " + args[0]);
        }) {
      quiet();
      List<Double> samples = new ArrayList<>();
      String keys = "chrootbooter";
      for (int i = 0; i < n; i++) {
        byte key = (byte) keys.charAt(i % keys.length());
        long t0 = System.nanoTime();
        console.send(new byte[] {key});
        awaitByte(key);
        double ms = (System.nanoTime() - t0) / 1e6;
        samples.add(ms);
        System.err.printf(Locale.ROOT, "key %d: %.1f ms%n", i + 1, ms);
        console.send(new byte[] {0x7f});
        quiet();
      }
      double[] sorted = samples.stream().mapToDouble(Double::doubleValue).sorted().toArray();
      System.out.printf(Locale.ROOT, "%.1f%n", sorted[(sorted.length - 1) / 2]);
    }
  }

  /** Waits until the console has been quiet for {@link #QUIET}, dropping what it wrote. */
  private static void quiet() throws InterruptedException {
    while (OUTPUT.poll(QUIET.toMillis(), TimeUnit.MILLISECONDS) != null) {
      // drained
    }
  }

  private static void awaitByte(byte key) throws InterruptedException {
    long deadline = System.nanoTime() + ECHO.toNanos();
    while (true) {
      long left = deadline - System.nanoTime();
      byte[] data = left > 0 ? OUTPUT.poll(left, TimeUnit.NANOSECONDS) : null;
      if (data == null) {
        throw new IllegalStateException(
            "no echo of '" + (char) key + "' within " + ECHO.toSeconds() + " s");
      }
      for (byte b : data) {
        if (b == key) {
          return;
        }
      }
    }
  }

  private static Console webSocket(URI uri) throws Exception {
    String token = System.getenv("CB_TOKEN");
    WebSocket.Builder builder =
        HttpClient.newHttpClient().newWebSocketBuilder().connectTimeout(Duration.ofSeconds(10));
    if (token != null && !token.isBlank()) {
      builder.header("Authorization", "Bearer " + token);
    }
    WebSocket ws =
        builder
            .buildAsync(
                uri,
                new WebSocket.Listener() {
                  @Override
                  public CompletionStage<?> onBinary(WebSocket w, ByteBuffer data, boolean last) {
                    byte[] bytes = new byte[data.remaining()];
                    data.get(bytes);
                    OUTPUT.add(bytes);
                    w.request(1);
                    return null;
                  }

                  @Override
                  public CompletionStage<?> onText(WebSocket w, CharSequence text, boolean last) {
                    OUTPUT.add(text.toString().getBytes(StandardCharsets.UTF_8));
                    w.request(1);
                    return null;
                  }

                  @Override
                  public CompletionStage<?> onClose(WebSocket w, int code, String reason) {
                    System.err.println("the console closed: " + code + " " + reason);
                    return null;
                  }
                })
            .get(20, TimeUnit.SECONDS);
    return new Console() {
      @Override
      public void send(byte[] keys) throws Exception {
        ws.sendBinary(ByteBuffer.wrap(keys), true).get(10, TimeUnit.SECONDS);
      }

      @Override
      public void close() {
        ws.sendClose(WebSocket.NORMAL_CLOSURE, "done")
            .orTimeout(2, TimeUnit.SECONDS)
            .exceptionally(t -> null)
            .join();
        ws.abort();
      }
    };
  }

  private static Console unixSocket(Path socket) throws IOException {
    SocketChannel channel = SocketChannel.open(UnixDomainSocketAddress.of(socket));
    Thread reader =
        new Thread(
            () -> {
              ByteBuffer buf = ByteBuffer.allocate(4096);
              try {
                while (channel.read(buf.clear()) >= 0) {
                  OUTPUT.add(Arrays.copyOf(buf.array(), buf.position()));
                }
              } catch (IOException closed) {
                // the end
              }
            },
            "console-reader");
    reader.setDaemon(true);
    reader.start();
    return new Console() {
      @Override
      public void send(byte[] keys) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(keys);
        while (b.hasRemaining()) {
          channel.write(b);
        }
      }

      @Override
      public void close() throws IOException {
        channel.close();
      }
    };
  }
}
