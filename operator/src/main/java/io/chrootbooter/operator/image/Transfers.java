package io.chrootbooter.operator.image;

import dev.failsafe.Failsafe;
import dev.failsafe.FailsafeException;
import dev.failsafe.RetryPolicy;
import io.chrootbooter.api.v1alpha1.ImageFormat;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.status.Reason;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.net.http.HttpClient;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * The downloads into the image store, one per BootImage: started by the reconciler, retried with
 * exponential backoff and jitter (Failsafe), cancelled when the spec changes or the BootImage goes.
 * Each state change, and progress at most once a second, is announced to the listener so the
 * reconciler looks again.
 */
@ApplicationScoped
public class Transfers {
  private static final Logger LOG = Logger.getLogger(Transfers.class);
  private static final int PARALLEL_DOWNLOADS = 4;

  /** What a download is for: a change of any part starts a new download. */
  public record Source(String url, Optional<String> sha256, ImageFormat format) {}

  /** Where a download stands. Exactly one of progress, result and failure is set. */
  public record State(
      Source source,
      Optional<Mirror.Progress> progress,
      Optional<Mirror.Result> result,
      Optional<MirrorFailure> failure) {}

  private final ImageStore store;
  private final HttpClient http =
      HttpClient.newBuilder()
          .connectTimeout(Duration.ofSeconds(10))
          .followRedirects(HttpClient.Redirect.NORMAL)
          .build();
  private final ExecutorService pool = Executors.newFixedThreadPool(PARALLEL_DOWNLOADS);
  private final Map<String, Transfer> transfers = new ConcurrentHashMap<>();
  private final RetryPolicy<Mirror.Result> retry;
  private final int attempts;
  private final Counter bytes;
  private final Counter failures;
  private volatile Consumer<String> listener = key -> {};

  private final class Transfer {
    final Source source;
    volatile State state;
    volatile boolean cancelled;

    Transfer(Source source) {
      this.source = source;
      this.state =
          new State(
              source,
              Optional.of(new Mirror.Progress(0, -1, 0)),
              Optional.empty(),
              Optional.empty());
    }
  }

  Transfers(ImageStore store, OperatorConfig config, MeterRegistry registry) {
    this.store = store;
    this.attempts = config.store().attempts();
    Duration delay = config.store().retryDelay();
    this.retry =
        RetryPolicy.<Mirror.Result>builder()
            .handle(IOException.class)
            .withBackoff(delay, delay.multipliedBy(64))
            .withJitter(0.25)
            .withMaxAttempts(attempts)
            .onRetry(
                e ->
                    LOG.infof(
                        "Retrying a download after: %s", String.valueOf(e.getLastException())))
            .build();
    this.bytes =
        Counter.builder("chrootbooter.store.download.bytes")
            .description("Bytes mirrored into the image store")
            .register(registry);
    this.failures =
        Counter.builder("chrootbooter.store.download.failures")
            .description("Downloads that failed for good")
            .register(registry);
  }

  void stop(@Observes ShutdownEvent event) {
    transfers.values().forEach(t -> t.cancelled = true);
    pool.shutdownNow();
  }

  /** Called with the key of a download whose state changed. */
  public void onChange(Consumer<String> listener) {
    this.listener = listener;
  }

  /**
   * The state of the download for {@code key} from {@code source}: started when there is none,
   * restarted when the source changed.
   */
  public State ensure(String key, Source source) {
    Transfer current = transfers.get(key);
    if (current != null && current.source.equals(source)) {
      return current.state;
    }
    if (current != null) {
      current.cancelled = true;
    }
    Transfer fresh = new Transfer(source);
    transfers.put(key, fresh);
    pool.submit(() -> run(key, fresh));
    return fresh.state;
  }

  /** Stops and forgets the download for {@code key}. */
  public void cancel(String key) {
    Transfer t = transfers.remove(key);
    if (t != null) {
      t.cancelled = true;
    }
  }

  private void run(String key, Transfer t) {
    Mirror mirror =
        new Mirror(
            http,
            new Mirror.Request(
                t.source.url(), t.source.sha256(), t.source.format(), store.newPartial(key)),
            store);
    try {
      Mirror.Result result =
          Failsafe.with(retry)
              .get(
                  () ->
                      mirror.attempt(
                          () -> t.cancelled,
                          p -> {
                            t.state =
                                new State(
                                    t.source, Optional.of(p), Optional.empty(), Optional.empty());
                            listener.accept(key);
                          }));
      if (t.cancelled) {
        return;
      }
      store.commit(result.file(), result.sha256());
      bytes.increment(result.size());
      t.state = new State(t.source, Optional.empty(), Optional.of(result), Optional.empty());
    } catch (java.io.UncheckedIOException e) {
      failures.increment();
      t.state =
          new State(
              t.source,
              Optional.empty(),
              Optional.empty(),
              Optional.of(new MirrorFailure(Reason.MirrorFailed, e.getMessage())));
    } catch (MirrorFailure e) {
      failures.increment();
      t.state = new State(t.source, Optional.empty(), Optional.empty(), Optional.of(e));
    } catch (CancellationException e) {
      return;
    } catch (FailsafeException e) {
      Throwable cause = e.getCause() == null ? e : e.getCause();
      if (cause instanceof CancellationException) {
        return;
      }
      failures.increment();
      t.state =
          new State(
              t.source,
              Optional.empty(),
              Optional.empty(),
              Optional.of(
                  new MirrorFailure(
                      Reason.MirrorFailed,
                      "GET "
                          + t.source.url()
                          + " failed "
                          + attempts
                          + " times; the last error: "
                          + cause.getMessage())));
    } finally {
      if (t.cancelled) {
        try {
          java.nio.file.Files.deleteIfExists(store.newPartial(key));
        } catch (IOException e) {
          LOG.warnf("Could not remove the cancelled download %s: %s", key, e.getMessage());
        }
      }
    }
    listener.accept(key);
  }
}
