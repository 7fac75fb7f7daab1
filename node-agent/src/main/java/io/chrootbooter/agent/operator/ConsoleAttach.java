package io.chrootbooter.agent.operator;

import io.chrootbooter.agent.relay.ConsoleRecorder;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * The live console, from the machine's side: when a user attaches at the operator, the
 * desired-state stream hands the agent a ticket ({@code event: console}), and the agent opens a
 * WebSocket to the operator ({@code /agent/v1/machines/{mac}/console/live?ticket=…}, with its
 * session, through the same pinned client as every agent call: no port listens on the machine).
 * Binary frames from the operator are keystrokes typed into the running target's console; the
 * console's output goes back as binary frames. When the target ends the agent closes with 1000;
 * when no target runs, at once with 1011 and the reason.
 *
 * <p>The relay never waits for the network: output is queued up to {@link #MAX_QUEUED} bytes per
 * connection, and what does not fit is dropped and replaced by a line saying how much. One thread
 * per open connection sends, at most {@link #MAX_OPEN} at once; the JDK client delivers keystrokes
 * on its own threads.
 */
public final class ConsoleAttach {
  private static final Logger LOG = Logger.getLogger(ConsoleAttach.class);

  /** Output held for a connection that is slower than the console. */
  static final int MAX_QUEUED = 1 << 20;

  /** Console connections open at once; one more is closed at once with the reason. */
  static final int MAX_OPEN = 8;

  /** WebSocket close codes (RFC 6455 §7.4.1). */
  static final int NORMAL = 1000;

  static final int SERVER_ERROR = 1011;

  private final HttpClient http;
  private final Supplier<String> authorization;
  private final Function<String, URI> live;
  private final Function<ConsoleRecorder.Screen, Optional<ConsoleRecorder.Attachment>> attach;
  private final java.util.concurrent.atomic.AtomicInteger open =
      new java.util.concurrent.atomic.AtomicInteger();

  /**
   * @param http the client of the agent's operator calls (its TLS pinned)
   * @param authorization {@code Bearer <session>}
   * @param live the console connection's URL for a ticket
   * @param attach attaches a screen to the running target's console ({@link
   *     ConsoleRecorder#attach})
   */
  public ConsoleAttach(
      HttpClient http,
      Supplier<String> authorization,
      Function<String, URI> live,
      Function<ConsoleRecorder.Screen, Optional<ConsoleRecorder.Attachment>> attach) {
    this.http = http;
    this.authorization = authorization;
    this.live = live;
    this.attach = attach;
  }

  /** Opens the console connection for {@code ticket} on a thread of its own; returns at once. */
  public void open(String ticket) {
    if (ticket == null || !ticket.matches("[A-Za-z0-9_-]{16,128}")) {
      LOG.warn("a console request without a valid ticket; ignored");
      return;
    }
    Thread thread = new Thread(() -> run(ticket), "cb-console-attach");
    thread.setDaemon(true);
    thread.start();
  }

  /** The output queue of one connection, and its end. */
  private static final class Outbox implements ConsoleRecorder.Screen {
    private final ArrayDeque<byte[]> queue = new ArrayDeque<>();
    private int queued;
    private long dropped;
    private boolean ended;
    private boolean closed;

    @Override
    public synchronized void output(byte[] bytes, int off, int len) {
      if (ended || closed) {
        return;
      }
      if (queued + len > MAX_QUEUED) {
        dropped += len;
        return;
      }
      if (dropped > 0) {
        byte[] note =
            ("\r\n[chrootbooter: "
                    + dropped
                    + " bytes of the console not shown: the connection was too slow]\r\n")
                .getBytes(StandardCharsets.UTF_8);
        queue.add(note);
        queued += note.length;
        dropped = 0;
      }
      byte[] copy = new byte[len];
      System.arraycopy(bytes, off, copy, 0, len);
      queue.add(copy);
      queued += len;
      notifyAll();
    }

    @Override
    public synchronized void ended() {
      ended = true;
      notifyAll();
    }

    synchronized void close() {
      closed = true;
      notifyAll();
    }

    /** The next output (up to 64 KiB joined), or null once the target ended or it was closed. */
    synchronized byte[] take() throws InterruptedException {
      while (queue.isEmpty() && !ended && !closed) {
        wait();
      }
      if (closed || queue.isEmpty()) {
        return null;
      }
      java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
      while (!queue.isEmpty() && out.size() < 64 * 1024) {
        byte[] b = queue.poll();
        queued -= b.length;
        out.writeBytes(b);
      }
      return out.toByteArray();
    }

    synchronized boolean closed() {
      return closed;
    }
  }

  private void run(String ticket) {
    try {
      if (open.incrementAndGet() > MAX_OPEN) {
        refuse(ticket, "more than " + MAX_OPEN + " consoles attached to this machine");
        return;
      }
      attached(ticket);
    } finally {
      open.decrementAndGet();
    }
  }

  /** Opens the connection only to close it with {@code reason} (1011). */
  private void refuse(String ticket, String reason) {
    try {
      WebSocket socket =
          http.newWebSocketBuilder()
              .header("Authorization", authorization.get())
              .connectTimeout(Duration.ofSeconds(10))
              .buildAsync(live.apply(ticket), new WebSocket.Listener() {})
              .get(15, TimeUnit.SECONDS);
      close(socket, SERVER_ERROR, reason);
    } catch (ExecutionException | TimeoutException | RuntimeException e) {
      LOG.debugf("console connection to the operator failed: %s", e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void attached(String ticket) {
    Outbox outbox = new Outbox();
    Optional<ConsoleRecorder.Attachment> attachment = attach.apply(outbox);
    WebSocket socket;
    try {
      socket =
          http.newWebSocketBuilder()
              .header("Authorization", authorization.get())
              .connectTimeout(Duration.ofSeconds(10))
              .buildAsync(live.apply(ticket), new Listener(attachment, outbox))
              .get(15, TimeUnit.SECONDS);
    } catch (ExecutionException | TimeoutException | RuntimeException e) {
      Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
      LOG.warnf(
          "console connection to the operator failed: %s",
          cause.getMessage() != null ? cause.getMessage() : cause.getClass().getSimpleName());
      attachment.ifPresent(ConsoleRecorder.Attachment::close);
      return;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      attachment.ifPresent(ConsoleRecorder.Attachment::close);
      return;
    }
    if (attachment.isEmpty()) {
      close(socket, SERVER_ERROR, "machine is not running a target");
      return;
    }
    LOG.infof("console attached from the operator (%s)", attachment.get().device());
    try {
      byte[] next;
      while ((next = outbox.take()) != null) {
        socket.sendBinary(ByteBuffer.wrap(next), true).get(30, TimeUnit.SECONDS);
      }
      if (!outbox.closed()) {
        close(socket, NORMAL, "the target ended");
      }
    } catch (ExecutionException | TimeoutException e) {
      LOG.debugf("console connection: %s", e.getMessage());
      socket.abort();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      socket.abort();
    } finally {
      attachment.get().close();
      LOG.info("console detached");
    }
  }

  private static void close(WebSocket socket, int code, String reason) {
    try {
      socket.sendClose(code, reason).get(5, TimeUnit.SECONDS);
    } catch (ExecutionException | TimeoutException e) {
      socket.abort();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      socket.abort();
    }
  }

  /** Keystrokes in; the operator's close ends the connection. */
  private static final class Listener implements WebSocket.Listener {
    private final Optional<ConsoleRecorder.Attachment> attachment;
    private final Outbox outbox;

    Listener(Optional<ConsoleRecorder.Attachment> attachment, Outbox outbox) {
      this.attachment = attachment;
      this.outbox = outbox;
    }

    @Override
    public CompletionStage<?> onBinary(WebSocket webSocket, ByteBuffer data, boolean last) {
      byte[] bytes = new byte[data.remaining()];
      data.get(bytes);
      attachment.ifPresent(a -> a.type(bytes));
      webSocket.request(1);
      return null;
    }

    @Override
    public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
      webSocket.request(1); // not keystrokes: ignored
      return null;
    }

    @Override
    public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
      outbox.close();
      attachment.ifPresent(ConsoleRecorder.Attachment::close);
      return CompletableFuture.completedFuture(null);
    }

    @Override
    public void onError(WebSocket webSocket, Throwable error) {
      LOG.debugf("console connection: %s", error.getMessage());
      outbox.close();
      attachment.ifPresent(ConsoleRecorder.Attachment::close);
    }
  }
}
