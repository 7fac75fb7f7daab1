package io.chrootbooter.cli;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code kubectl boot console m1}: the machine's live console, read-write, through the operator's
 * WebSocket ({@code /machines/{ns}/{name}/console/attach}, binary frames both ways). The local
 * terminal is raw while attached; {@code ~.} at the start of a line detaches.
 */
@Command(
    name = "console",
    mixinStandardHelpOptions = true,
    description = {
      "Attach to a machine's live console, read-write: what you type goes to the console the"
          + " machine's image runs on, what it writes shows here. ~. at the start of a line"
          + " detaches (~? lists the escapes). Needs create on machineboots/console.",
      "Without a terminal (input from a pipe), the end of the input detaches once the console"
          + " has been quiet for a second (at most 10 s later).",
      "Example: kubectl boot console m1"
    })
final class ConsoleCommand implements Callable<Integer> {

  private static final Duration QUIET = Duration.ofSeconds(1);
  private static final Duration AFTER_EOF_AT_MOST = Duration.ofSeconds(10);

  @ParentCommand KubectlBoot top;

  @Parameters(index = "0", paramLabel = "MACHINE", description = "The MachineBoot.")
  String machine;

  /** How the remote end closed. */
  record Closed(int code, String reason) {}

  @Override
  public Integer call() throws Exception {
    Json.name(machine, "machine");
    String ns = Json.name(top.cluster().namespace(), "namespace");
    Operator op = top.operator();
    URI base = op.base();
    URI uri =
        URI.create(
            (base.getScheme().equals("https") ? "wss" : "ws")
                + base.toString().substring(base.getScheme().length())
                + "/machines/"
                + ns
                + "/"
                + machine
                + "/console/attach");
    CompletableFuture<Closed> closed = new CompletableFuture<>();
    AtomicLong lastOutput = new AtomicLong(System.nanoTime());
    WebSocket.Listener listener =
        new WebSocket.Listener() {
          @Override
          public void onOpen(WebSocket ws) {
            ws.request(1);
          }

          @Override
          public CompletionStage<?> onBinary(WebSocket ws, ByteBuffer data, boolean last) {
            byte[] bytes = new byte[data.remaining()];
            data.get(bytes);
            synchronized (top.out) {
              top.out.write(bytes, 0, bytes.length);
              top.out.flush();
            }
            lastOutput.set(System.nanoTime());
            ws.request(1);
            return null;
          }

          @Override
          public CompletionStage<?> onText(WebSocket ws, CharSequence text, boolean last) {
            byte[] bytes = text.toString().getBytes(StandardCharsets.UTF_8);
            synchronized (top.out) {
              top.out.write(bytes, 0, bytes.length);
              top.out.flush();
            }
            lastOutput.set(System.nanoTime());
            ws.request(1);
            return null;
          }

          @Override
          public CompletionStage<?> onClose(WebSocket ws, int code, String reason) {
            closed.complete(new Closed(code, reason));
            return null;
          }

          @Override
          public void onError(WebSocket ws, Throwable error) {
            closed.completeExceptionally(error);
          }
        };
    WebSocket.Builder builder =
        op.http().newWebSocketBuilder().connectTimeout(Duration.ofSeconds(10));
    String auth = op.authorization();
    if (auth != null) {
      builder.header("Authorization", auth);
    }
    WebSocket ws;
    try {
      ws = builder.buildAsync(uri, listener).get(20, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw connectFailure(op, e.getCause(), auth != null);
    } catch (TimeoutException e) {
      throw new CliException(
          Exit.UNREACHABLE, "the operator at " + base + " did not answer in 20 s");
    }
    try (Terminal terminal = new Terminal().raw()) {
      String nl = terminal.isRaw() ? "\r\n" : "\n";
      top.err.print(
          "Attached to the console of " + machine + "; ~. detaches, ~? lists the escapes." + nl);
      top.err.flush();
      CompletableFuture<Void> detached = new CompletableFuture<>();
      CompletableFuture<Void> eof = new CompletableFuture<>();
      Thread input =
          new Thread(() -> pump(ws, detached, eof, closed, nl), "kubectl-boot-console-input");
      input.setDaemon(true);
      input.start();
      CompletableFuture.anyOf(closed, detached, eof).handle((v, t) -> null).join();
      if (eof.isDone() && !closed.isDone()) {
        long eofAt = System.nanoTime();
        while (!closed.isDone()) {
          long now = System.nanoTime();
          if (now - Math.max(lastOutput.get(), eofAt) >= QUIET.toNanos()
              || now - eofAt >= AFTER_EOF_AT_MOST.toNanos()) {
            break;
          }
          Thread.sleep(50);
        }
      }
      if (closed.isDone()) {
        Closed c;
        try {
          c = closed.join();
        } catch (java.util.concurrent.CompletionException e) {
          throw new CliException(
              Exit.FAILED,
              "the console of "
                  + machine
                  + " broke off: "
                  + Cluster.describe(Cluster.rootCause(e)));
        }
        return ended(c, terminal, nl);
      }
      ws.sendClose(WebSocket.NORMAL_CLOSURE, "detached")
          .orTimeout(2, TimeUnit.SECONDS)
          .exceptionally(t -> null)
          .join();
      ws.abort();
      top.err.print(nl + "Detached from the console of " + machine + "." + nl);
      return Exit.OK;
    }
  }

  private int ended(Closed c, Terminal terminal, String nl) {
    String reason = Cluster.firstLine(Terminal.printable(c.reason() == null ? "" : c.reason()));
    switch (c.code()) {
      case WebSocket.NORMAL_CLOSURE -> {
        top.err.print(
            nl
                + "The console of "
                + machine
                + " closed"
                + (reason.isEmpty() ? "" : ": " + reason)
                + nl);
        return Exit.OK;
      }
      case 1008 ->
          throw new CliException(
              Exit.UNREACHABLE,
              "not allowed: " + (reason.isEmpty() ? "the operator refused" : reason));
      case 1011 ->
          throw new CliException(
              Exit.FAILED, reason.isEmpty() ? "the machine's console is not connected" : reason);
      default ->
          throw new CliException(
              Exit.FAILED,
              "the console of "
                  + machine
                  + " closed with code "
                  + c.code()
                  + (reason.isEmpty() ? "" : ": " + reason));
    }
  }

  /** Reads the keyboard (or stdin) and sends it, until a detach, the end, or the remote closes. */
  private void pump(
      WebSocket ws,
      CompletableFuture<Void> detached,
      CompletableFuture<Void> eof,
      CompletableFuture<Closed> closed,
      String nl) {
    EscapeFilter filter = new EscapeFilter();
    byte[] buf = new byte[4096];
    InputStream in = System.in;
    try {
      while (!closed.isDone()) {
        int n = in.read(buf);
        if (n < 0) {
          eof.complete(null);
          return;
        }
        EscapeFilter.Result r = filter.filter(buf, n);
        if (r.send().length > 0) {
          ws.sendBinary(ByteBuffer.wrap(r.send()), true).get(30, TimeUnit.SECONDS);
        }
        if (r.help()) {
          top.err.print(
              nl + "Escapes (at the start of a line): ~. detach, ~~ send ~, ~? this help." + nl);
          top.err.flush();
        }
        if (r.detach()) {
          detached.complete(null);
          return;
        }
      }
    } catch (IOException | ExecutionException | TimeoutException e) {
      closed.completeExceptionally(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private CliException connectFailure(Operator op, Throwable cause, boolean hadToken) {
    if (cause instanceof WebSocketHandshakeException h) {
      HttpResponse<?> response = h.getResponse();
      Object body = response.body();
      String text =
          body instanceof byte[] b
              ? new String(b, StandardCharsets.UTF_8)
              : body == null ? "" : body.toString();
      if (text.isBlank() && response.statusCode() != 101) {
        // The JDK may keep a refused handshake's body to itself: ask again without the upgrade,
        // for the operator's one-line reason.
        try {
          op.get(response.uri().getRawPath(), "the console of " + machine).body().close();
        } catch (CliException refused) {
          return refused;
        } catch (IOException | RuntimeException e) {
          // fall through to the status code alone
        }
      }
      return op.refusal(response.statusCode(), text, "the console of " + machine, hadToken);
    }
    return new CliException(
        Exit.UNREACHABLE,
        "cannot reach the operator at "
            + op.base()
            + ": "
            + Cluster.describe(Cluster.rootCause(cause)));
  }
}
