package io.chrootbooter.e2e.protocol;

import io.chrootbooter.agent.operator.OperatorClient;
import io.chrootbooter.agent.operator.SessionFile;
import io.chrootbooter.protocol.DesiredState;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * A machine's agent as far as the protocol goes: the node agent's own {@link OperatorClient}
 * following the desired-state stream on a thread of its own, recording every event it is handed and
 * when.
 */
final class FollowingAgent implements AutoCloseable {
  /** One desired state as the agent received it, and {@link System#nanoTime()} then. */
  record Received(DesiredState state, long nanos) {
    @Override
    public String toString() {
      return state.action()
          + " generation "
          + state.generation()
          + (state.reason() == null ? "" : " (" + state.reason() + ")")
          + (state.image() == null ? "" : " " + state.image().url());
    }
  }

  final OperatorClient client;
  private final BlockingQueue<Received> queue = new LinkedBlockingQueue<>();
  private final List<Received> history = new CopyOnWriteArrayList<>();
  private final AtomicInteger connections = new AtomicInteger();
  private final Thread thread;

  FollowingAgent(String operator, String mac, String session) {
    client = client(operator, mac, session);
    thread =
        new Thread(
            () ->
                client.follow(
                    state -> {
                      Received r = new Received(state, System.nanoTime());
                      history.add(r);
                      queue.add(r);
                    },
                    connections::incrementAndGet),
            "agent-" + mac);
    thread.setDaemon(true);
    thread.start();
  }

  /**
   * The agent's own client holding {@code session} (from {@link ControlPlane#session}), as an agent
   * that init restarted holds the session of its boot: read from a root-only session file, which is
   * removed again once read.
   */
  static OperatorClient client(String operator, String mac, String session) {
    try {
      Path dir = Files.createTempDirectory("cb-session");
      try {
        SessionFile file = new SessionFile(dir.resolve("agent-session"));
        file.write(
            new SessionFile.Stored(
                operator.replaceAll("/+$", ""),
                mac,
                "e2e-boot",
                session,
                Instant.now().plus(Duration.ofHours(1))));
        OperatorClient client =
            new OperatorClient(URI.create(operator), mac, null, "e2e-boot", file, Optional.empty());
        if (!client.enrol()) {
          throw new IllegalStateException("the session file was not taken up");
        }
        return client;
      } finally {
        Files.deleteIfExists(dir.resolve("agent-session"));
        Files.delete(dir);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /**
   * The next event not yet taken that matches, waiting at most {@code within}; events before it
   * that do not match are taken too. Fails naming every event received.
   */
  Received next(Duration within, Predicate<DesiredState> matching) throws InterruptedException {
    long deadline = System.nanoTime() + within.toNanos();
    while (true) {
      long left = deadline - System.nanoTime();
      Received r = left <= 0 ? null : queue.poll(left, TimeUnit.NANOSECONDS);
      if (r == null) {
        throw new AssertionError(
            "no matching desired state within " + within + "; received: " + history);
      }
      if (matching.test(r.state())) {
        return r;
      }
    }
  }

  /** Events received and not yet taken by {@link #next}, waiting {@code quiet} for more. */
  List<Received> drain(Duration quiet) throws InterruptedException {
    List<Received> rest = new java.util.ArrayList<>();
    for (Received r; (r = queue.poll(quiet.toMillis(), TimeUnit.MILLISECONDS)) != null; ) {
      rest.add(r);
    }
    return rest;
  }

  /** Every event received so far. */
  List<Received> history() {
    return List.copyOf(history);
  }

  /** How many times the stream was (re)opened. */
  int connections() {
    return connections.get();
  }

  @Override
  public void close() throws InterruptedException {
    client.close();
    thread.interrupt();
    thread.join(5_000);
  }
}
