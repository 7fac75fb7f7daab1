package io.chrootbooter.operator.image;

import dev.failsafe.Failsafe;
import dev.failsafe.FailsafeException;
import dev.failsafe.RetryPolicy;
import dev.failsafe.RetryPolicyBuilder;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.status.Reason;
import io.chrootbooter.protocol.Backoff;
import io.chrootbooter.protocol.ImageFormat;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * The downloads into the image store, one per BootImage: started by the reconciler, retried with
 * exponential backoff and jitter ({@link Backoff}, by Failsafe), cancelled when the spec changes or
 * the BootImage goes. Each download writes a partial file of its own, deleted unless it became the
 * stored image, so a cancelled download never touches the file of the one that replaced it. Each
 * state change, and progress at most once a second, is announced to the listener so the reconciler
 * looks again.
 */
@ApplicationScoped
public class Transfers {
  private static final Logger LOG = Logger.getLogger(Transfers.class);
  private static final int PARALLEL_DOWNLOADS = 4;

  /**
   * What a download is for: a change of any part starts a new download — a new caBundle too, so a
   * download that failed on its certificate is tried again when its Secret changes.
   */
  public record Source(
      String url, Optional<String> sha256, ImageFormat format, List<X509Certificate> caBundle) {
    public Source {
      caBundle = List.copyOf(caBundle);
    }
  }

  /** Where a download stands. Exactly one of progress, result and failure is set. */
  public record State(
      Source source,
      Optional<Mirror.Progress> progress,
      Optional<Mirror.Result> result,
      Optional<MirrorFailure> failure) {}

  private final ImageStore store;
  private final SourceTrust trust;
  private final SourcePolicy policy;
  private final VerityTrees trees;
  private final AtomicLong sequence = new AtomicLong();
  private final ExecutorService pool = Executors.newFixedThreadPool(PARALLEL_DOWNLOADS);

  /**
   * Ends attempts whose source stopped sending (a read of a response body waits for ever
   * otherwise), so they are retried from where they stopped and free their download thread.
   */
  private final ScheduledExecutorService stallWatch =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "image-download-stall-watch");
            t.setDaemon(true);
            return t;
          });

  private final Map<String, Transfer> transfers = new ConcurrentHashMap<>();
  private final RetryPolicy<Mirror.Result> retry;
  private final int attempts;
  private final Counter bytes;
  private final Counter failures;
  private volatile Consumer<String> listener = key -> {};

  private final class Transfer {
    final Source source;
    final Path partial;
    final Mirror.Control control = new Mirror.Control();
    volatile State state;

    Transfer(Source source, Path partial) {
      this.source = source;
      this.partial = partial;
      this.state =
          new State(
              source,
              Optional.of(new Mirror.Progress(0, -1, 0)),
              Optional.empty(),
              Optional.empty());
    }
  }

  Transfers(
      ImageStore store,
      SourceTrust trust,
      SourcePolicy policy,
      VerityTrees trees,
      OperatorConfig config,
      MeterRegistry registry) {
    this.store = store;
    this.trees = trees;
    this.trust = trust;
    this.policy = policy;
    this.attempts = config.store().attempts();
    Duration stallTimeout = config.store().stallTimeout();
    long every = Math.max(100, Math.min(1000, stallTimeout.toMillis() / 4));
    stallWatch.scheduleWithFixedDelay(
        () ->
            transfers
                .values()
                .forEach(t -> t.control.closeIfStalled(stallTimeout, System.nanoTime())),
        every,
        every,
        TimeUnit.MILLISECONDS);
    Duration delay = config.store().retryDelay();
    // The schedule the agent's downloads follow as well (Backoff says how).
    Backoff backoff = new Backoff(attempts, delay, delay.multipliedBy(64));
    RetryPolicyBuilder<Mirror.Result> builder =
        RetryPolicy.<Mirror.Result>builder().handle(IOException.class);
    if (backoff.fixed()) {
      builder.withDelay(Backoff.jitterCentre(backoff.firstDelay()));
    } else {
      builder.withBackoff(
          Backoff.jitterCentre(backoff.firstDelay()), Backoff.jitterCentre(backoff.maxDelay()));
    }
    this.retry =
        builder
            .withJitter(Backoff.JITTER)
            .withMaxAttempts(backoff.attempts())
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
    transfers.values().forEach(t -> t.control.cancel());
    pool.shutdownNow();
    stallWatch.shutdownNow();
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
      current.control.cancel();
    }
    Transfer fresh = new Transfer(source, store.newPartial(key + "-" + sequence.incrementAndGet()));
    transfers.put(key, fresh);
    pool.submit(() -> run(key, fresh));
    return fresh.state;
  }

  /** Stops and forgets the download for {@code key}. */
  public void cancel(String key) {
    Transfer t = transfers.remove(key);
    if (t != null) {
      t.control.cancel();
    }
  }

  private void run(String key, Transfer t) {
    Mirror mirror =
        new Mirror(
            trust.client(t.source.caBundle()),
            policy,
            new Mirror.Request(t.source.url(), t.source.sha256(), t.source.format(), t.partial),
            store);
    boolean committed = false;
    try {
      Mirror.Result result =
          Failsafe.with(retry)
              .get(
                  () ->
                      mirror.attempt(
                          t.control,
                          p -> {
                            t.state =
                                new State(
                                    t.source, Optional.of(p), Optional.empty(), Optional.empty());
                            listener.accept(key);
                          }));
      if (t.control.isCancelled()) {
        return;
      }
      store.commit(result.file(), result.sha256());
      committed = true;
      bytes.increment(result.size());
      if (t.source.format() == ImageFormat.SQUASHFS) {
        // From the stored file: its digest was checked before it got there. The image is Ready
        // with its tree, so a Lazy machine never waits for it.
        try {
          trees.ensure(result.sha256());
        } catch (IOException e) {
          LOG.warnf("Could not compute the hash tree of image %s: %s", result.sha256(), e);
        }
      }
      t.state = new State(t.source, Optional.empty(), Optional.of(result), Optional.empty());
    } catch (UncheckedIOException e) {
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
      if (!committed) {
        try {
          Files.deleteIfExists(t.partial);
        } catch (IOException e) {
          LOG.warnf("Could not remove the unfinished download %s: %s", t.partial, e.getMessage());
        }
      }
    }
    listener.accept(key);
  }
}
