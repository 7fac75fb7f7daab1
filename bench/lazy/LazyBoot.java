import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.chrootbooter.agent.daemon.ImageLoader;
import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.OperatorCredential;
import io.chrootbooter.agent.unpack.ImageCache;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.KernelModules;
import io.chrootbooter.protocol.Verity;
import java.io.IOException;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * bench/lazy.sh's two sides, inside its QEMU machine.
 *
 * <p>{@code serve DIR ADDRESS PORT}: the operator's image routes for the images in DIR (each
 * {@code NAME} with {@code NAME.props}: sha256, tree): HEAD, {@code Range: bytes=a-b} (206, the
 * digest as ETag) and whole GETs at {@code /images/NAME}, the hash tree at {@code /verity/NAME},
 * a session required, and {@code /stats}: the image bytes sent so far.
 *
 * <p>{@code run URL DIR WORK NAME...}: for each image NAME (its {@code NAME.props} in DIR), loads it
 * through the agent's image loader ({@code ImageLoader.prepare}) Download, then Lazy, and times
 * each from the call (the desired state's image handed to the loader) to the image's init run
 * from the prepared root ({@code chroot ROOT INIT --version}, INIT the binary /sbin/init leads
 * to: systemd and its libraries are read), and for Lazy to the prefetch's "fully local"; prints one {@code TIMES} line per
 * image and mode.
 */
public class LazyBoot {
  private static final String SESSION = "Bearer lazy-bench";
  private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-(\\d+)");

  public static void main(String[] a) throws Exception {
    if (a[0].equals("serve")) {
      serve(Path.of(a[1]), a[2], Integer.parseInt(a[3]));
    } else {
      run(a[1], Path.of(a[2]), Path.of(a[3]), List.of(a).subList(4, a.length));
    }
  }

  static Properties props(Path dir, String name) throws IOException {
    Properties p = new Properties();
    try (var in = Files.newInputStream(dir.resolve(name + ".props"))) {
      p.load(in);
    }
    return p;
  }

  // ---- the operator's side ------------------------------------------------------------------

  static void serve(Path dir, String address, int port) throws Exception {
    AtomicLong sent = new AtomicLong();
    HttpServer server = HttpServer.create(new InetSocketAddress(address, port), 64);
    server.setExecutor(Executors.newFixedThreadPool(16));
    server.createContext(
        "/stats",
        x -> {
          byte[] body = (sent.get() + "\n").getBytes(StandardCharsets.US_ASCII);
          x.sendResponseHeaders(200, body.length);
          x.getResponseBody().write(body);
          x.close();
        });
    server.createContext("/images/", x -> image(x, dir, sent, false));
    server.createContext("/verity/", x -> image(x, dir, sent, true));
    server.start();
    System.out.println("serving " + dir + " at " + address + ":" + port);
    new CountDownLatch(1).await();
  }

  static void image(HttpExchange x, Path dir, AtomicLong sent, boolean tree) throws IOException {
    try (x) {
      if (!SESSION.equals(x.getRequestHeaders().getFirst("Authorization"))) {
        x.sendResponseHeaders(401, -1);
        return;
      }
      String path = x.getRequestURI().getPath();
      String name = path.substring(path.lastIndexOf('/') + 1);
      if (!name.matches("[a-z0-9-]+") || !Files.isRegularFile(dir.resolve(name + ".props"))) {
        x.sendResponseHeaders(404, -1);
        return;
      }
      Properties p = props(dir, name);
      Path file = tree ? dir.resolve(p.getProperty("tree")) : dir.resolve(name);
      long length = Files.size(file);
      x.getResponseHeaders().add("ETag", "\"" + p.getProperty("sha256") + "\"");
      if (x.getRequestMethod().equals("HEAD")) {
        x.getResponseHeaders().add("Content-Length", String.valueOf(length));
        x.sendResponseHeaders(200, -1);
        return;
      }
      long from = 0;
      long to = length - 1;
      String range = x.getRequestHeaders().getFirst("Range");
      Matcher m = range == null ? null : RANGE.matcher(range);
      if (m != null && m.matches()) {
        from = Long.parseLong(m.group(1));
        to = Math.min(Long.parseLong(m.group(2)), length - 1);
        x.getResponseHeaders().add("Content-Range", "bytes " + from + "-" + to + "/" + length);
        x.sendResponseHeaders(206, to - from + 1);
      } else {
        x.sendResponseHeaders(200, length);
      }
      OutputStream out = x.getResponseBody();
      ByteBuffer buffer = ByteBuffer.allocate(256 * 1024);
      try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
        long at = from;
        while (at <= to) {
          buffer.clear().limit((int) Math.min(buffer.capacity(), to - at + 1));
          int n = in.read(buffer, at);
          if (n < 0) {
            break;
          }
          out.write(buffer.array(), 0, n);
          at += n;
          if (!tree) {
            sent.addAndGet(n);
          }
        }
      }
    } catch (IOException gone) {
      // the client went away
    }
  }

  // ---- the agent's side ---------------------------------------------------------------------

  /** When the prefetch said "fully local", System.nanoTime(); 0 before. */
  static final AtomicLong FULLY_LOCAL = new AtomicLong();

  static void run(String url, Path dir, Path work, List<String> names) throws Exception {
    java.util.logging.Logger.getLogger("")
        .addHandler(
            new Handler() {
              @Override
              public void publish(LogRecord r) {
                String m = r.getMessage();
                if (m != null && m.contains("fully local")) {
                  FULLY_LOCAL.compareAndSet(0, System.nanoTime());
                } else if (m != null && m.contains("prefetch of") && m.contains("stopped")) {
                  FULLY_LOCAL.compareAndSet(0, -1);
                }
                if (m != null && r.getLevel().intValue() >= java.util.logging.Level.WARNING.intValue()) {
                  System.out.println("# agent: " + m);
                }
              }

              @Override
              public void flush() {}

              @Override
              public void close() {}
            });
    OperatorCredential.use(URI.create(url), () -> SESSION);
    ImageLoader loader =
        new ImageLoader(
            Files.createDirectories(work.resolve("loads")),
            new ImageCache(Files.createDirectories(work.resolve("cache")), () -> 0L));
    FetchOptions options =
        new FetchOptions(
            new io.chrootbooter.protocol.Backoff(4, Duration.ofMillis(200), Duration.ofSeconds(2)),
            Duration.ofSeconds(60),
            new CancelSignal(),
            p -> {},
            1000);
    for (String name : names) {
      Properties p = props(dir, name);
      for (String mode : List.of("download", "lazy")) {
        Optional<Verity> verity =
            mode.equals("lazy")
                ? Optional.of(
                    new Verity(
                        url + "/verity/" + name,
                        p.getProperty("root"),
                        p.getProperty("salt"),
                        Long.parseLong(p.getProperty("blocks")),
                        Long.parseLong(p.getProperty("treeSize"))))
                : Optional.empty();
        dropCaches();
        FULLY_LOCAL.set(0);
        long sentBefore = sent(url);
        long t0 = System.nanoTime();
        ImageLoader.Prepared prepared =
            loader.prepare(
                new ImageLoader.Request(
                    url + "/images/" + name,
                    Optional.of(p.getProperty("sha256")),
                    ImageFormat.SQUASHFS,
                    Overlay.parse("tmpfs"),
                    KernelModules.None,
                    verity),
                options,
                phase -> {});
        long ready = System.nanoTime();
        String init = initVersion(prepared.root(), p.getProperty("init"));
        long initDone = System.nanoTime();
        long sentAtInit = sent(url) - sentBefore;
        long full = 0;
        if (mode.equals("lazy")) {
          if (prepared.note().isPresent()) {
            throw new IllegalStateException("the Lazy load fell back: " + prepared.note().get());
          }
          long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(30);
          while (FULLY_LOCAL.get() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
          }
          if (FULLY_LOCAL.get() <= 0) {
            throw new IllegalStateException(
                FULLY_LOCAL.get() < 0
                    ? "the prefetch stopped (see the agent's warning above)"
                    : "the prefetch did not end in 30 minutes");
          }
          full = FULLY_LOCAL.get() - t0;
        } else {
          full = ready - t0;
        }
        long sentTotal = sent(url) - sentBefore;
        prepared.release().release();
        System.out.printf(
            "TIMES image=%s mode=%s ready=%.3f init=%.3f full=%.3f bytes_at_init=%d bytes=%d"
                + " init_says=%s%n",
            name,
            mode,
            (ready - t0) / 1e9,
            (initDone - t0) / 1e9,
            full / 1e9,
            sentAtInit,
            sentTotal,
            init.replaceAll("\\s+", "_"));
      }
    }
    OperatorCredential.clear();
  }

  /** Runs the image's init as far as its version: its binary and libraries are read. */
  static String initVersion(Path root, String init) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder("chroot", root.toString(), init, "--version")
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IOException("chroot " + root + " " + init + " --version failed: " + out);
    }
    return out.lines().findFirst().orElse("");
  }

  static long sent(String url) throws IOException {
    HttpURLConnection c = (HttpURLConnection) URI.create(url + "/stats").toURL().openConnection();
    try (var in = c.getInputStream()) {
      return Long.parseLong(new String(in.readAllBytes(), StandardCharsets.US_ASCII).trim());
    } finally {
      c.disconnect();
    }
  }

  static void dropCaches() throws IOException, InterruptedException {
    new ProcessBuilder("sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches")
        .inheritIO()
        .start()
        .waitFor();
  }
}
