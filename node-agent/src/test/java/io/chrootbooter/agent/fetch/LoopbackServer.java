package io.chrootbooter.agent.fetch;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An HTTP server on 127.0.0.1 serving one byte array at {@code /image}, with Range support (RFC
 * 9110 §14) and faults: drop the connection after N bytes, stall after N bytes, answer an error
 * status. Owned by one test, closed in {@code @AfterEach}.
 */
public final class LoopbackServer implements AutoCloseable {

  /** What a response does after {@code afterBytes} body bytes. */
  public enum Fault {
    DROP,
    STALL
  }

  /** A fault for one request (by number, 1 for the first). */
  public record Plan(int request, Fault fault, long afterBytes) {}

  private final HttpServer server;
  private final ExecutorService executor = Executors.newCachedThreadPool();
  private final CountDownLatch release = new CountDownLatch(1);
  private final List<String> ranges = new CopyOnWriteArrayList<>();
  private final List<Plan> plans = new CopyOnWriteArrayList<>();
  private final AtomicInteger requests = new AtomicInteger();
  private volatile byte[] body;
  private volatile String etag = "\"v1\"";
  private volatile int errorStatus;
  private volatile int errorRequests;
  private volatile boolean honourRange = true;

  public LoopbackServer(byte[] body) throws IOException {
    this.body = body;
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
    server.createContext("/image", this::handle);
    server.setExecutor(executor);
    server.start();
  }

  /** The URL of the image. */
  public String url() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/image";
  }

  /** Adds a fault for request number {@code request}. */
  public LoopbackServer fault(int request, Fault fault, long afterBytes) {
    plans.add(new Plan(request, fault, afterBytes));
    return this;
  }

  /** The first {@code count} requests answer {@code status}. */
  public LoopbackServer failFirst(int count, int status) {
    errorRequests = count;
    errorStatus = status;
    return this;
  }

  /** Serve new content under a new ETag from now on. */
  public void replace(byte[] newBody, String newEtag) {
    body = newBody;
    etag = newEtag;
  }

  /** Answer 200 with the whole body even to Range requests. */
  public LoopbackServer ignoreRange() {
    honourRange = false;
    return this;
  }

  /** The Range header of each request ({@code -} when none). */
  public List<String> ranges() {
    return List.copyOf(ranges);
  }

  public int requests() {
    return requests.get();
  }

  private void handle(HttpExchange exchange) throws IOException {
    int number = requests.incrementAndGet();
    String range = exchange.getRequestHeaders().getFirst("Range");
    ranges.add(range == null ? "-" : range);
    byte[] content = body;
    try (exchange) {
      if (number <= errorRequests) {
        exchange.sendResponseHeaders(errorStatus, -1);
        return;
      }
      long start = 0;
      String ifRange = exchange.getRequestHeaders().getFirst("If-Range");
      boolean partial = honourRange && range != null && (ifRange == null || ifRange.equals(etag));
      exchange.getResponseHeaders().add("ETag", etag);
      exchange.getResponseHeaders().add("Accept-Ranges", "bytes");
      if (partial) {
        start = Long.parseLong(range.substring("bytes=".length(), range.indexOf('-')));
        exchange
            .getResponseHeaders()
            .add(
                "Content-Range",
                "bytes " + start + "-" + (content.length - 1) + "/" + content.length);
        exchange.sendResponseHeaders(206, content.length - start);
      } else {
        exchange.sendResponseHeaders(200, content.length);
      }
      Plan plan = plans.stream().filter(p -> p.request() == number).findFirst().orElse(null);
      long end =
          plan == null ? content.length : Math.min(content.length, start + plan.afterBytes());
      OutputStream out = exchange.getResponseBody();
      for (long at = start; at < end; at += 65536) {
        out.write(content, (int) at, (int) Math.min(65536, end - at));
      }
      out.flush();
      if (plan != null && plan.fault() == Fault.STALL) {
        release.await(60, TimeUnit.SECONDS);
      }
      // Closing with bytes missing (a plan cut the body short) drops the connection.
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (IOException expected) {
      // The body was cut short on purpose or the client went away: there is no one to tell.
    }
  }

  @Override
  public void close() {
    release.countDown();
    server.stop(0);
    executor.shutdownNow();
  }
}
