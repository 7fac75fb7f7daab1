package io.chrootbooter.operator.image;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.BootImageSpec;
import io.chrootbooter.api.v1alpha1.BootImageStatus;
import io.chrootbooter.api.v1alpha1.Progress;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.operator.status.Health;
import io.chrootbooter.operator.status.Reason;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.inbound.SimpleInboundEventSource;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Reconciles BootImages: validates the spec, mirrors the image into the store (or finds it there by
 * digest), and keeps phase, progress, conditions and {@code observedGeneration} current. When the
 * last BootImage of a digest goes, its file goes too.
 */
@ControllerConfiguration(name = "bootimage")
public class BootImageReconciler implements Reconciler<BootImage>, Cleaner<BootImage> {
  private final EventRecorder events;
  private final ImageStore store;
  private final Transfers transfers;
  private final OperatorConfig config;
  private final Clock clock = Clock.systemUTC();
  private final Timer reconcileTimer;
  private final SimpleInboundEventSource<BootImage> transferEvents =
      new SimpleInboundEventSource<>("transfers");
  private final Map<String, ResourceID> byTransferKey = new ConcurrentHashMap<>();

  BootImageReconciler(
      EventRecorder events,
      ImageStore store,
      Transfers transfers,
      OperatorConfig config,
      MeterRegistry registry) {
    this.events = events;
    this.store = store;
    this.transfers = transfers;
    this.config = config;
    this.reconcileTimer =
        Timer.builder("chrootbooter.reconcile")
            .description("Time taken by one reconcile")
            .tag("kind", "BootImage")
            .register(registry);
  }

  @Override
  public List<EventSource<?, BootImage>> prepareEventSources(
      EventSourceContext<BootImage> context) {
    transfers.onChange(
        key ->
            Optional.ofNullable(byTransferKey.get(key)).ifPresent(transferEvents::propagateEvent));
    return List.of(transferEvents);
  }

  @Override
  public UpdateControl<BootImage> reconcile(BootImage image, Context<BootImage> context) {
    return reconcileTimer.record(() -> doReconcile(image));
  }

  private UpdateControl<BootImage> doReconcile(BootImage image) {
    String key = image.getMetadata().getUid();
    byTransferKey.put(key, ResourceID.fromResource(image));
    Observed observed = observe(image, key);
    BootImageStatus desired = desired(image, observed, clock.instant());
    Health health = Health.of(desired.conditions()).orElseThrow();
    Optional<Health> before =
        image.getStatus() == null ? Optional.empty() : Health.of(image.getStatus().conditions());
    if (!before.equals(Optional.of(health))) {
      events.transition(image, health);
    }
    if (Objects.equals(desired, image.getStatus())) {
      return UpdateControl.noUpdate();
    }
    BootImage fresh = new BootImage();
    ObjectMeta meta = new ObjectMeta();
    meta.setName(image.getMetadata().getName());
    meta.setNamespace(image.getMetadata().getNamespace());
    fresh.setMetadata(meta);
    fresh.setStatus(desired);
    return UpdateControl.patchStatus(fresh);
  }

  /** What the store and the downloads say about one BootImage. */
  record Observed(
      Optional<String> storedSha256, long storedSize, Optional<Transfers.State> transfer) {
    static Observed nothing() {
      return new Observed(Optional.empty(), 0, Optional.empty());
    }
  }

  private Observed observe(BootImage image, String key) {
    BootImageSpec spec = image.getSpec();
    if (!BootImageValidator.violations(spec).isEmpty()) {
      transfers.cancel(key);
      return Observed.nothing();
    }
    Optional<String> known = knownDigest(image);
    Optional<Path> stored = known.flatMap(store::find);
    if (stored.isPresent()) {
      transfers.cancel(key);
      return new Observed(known, size(stored.get()), Optional.empty());
    }
    var source =
        new Transfers.Source(
            spec.source().url(),
            Optional.ofNullable(spec.sha256()),
            BootImageValidator.effectiveFormat(spec));
    return new Observed(Optional.empty(), 0, Optional.of(transfers.ensure(key, source)));
  }

  /**
   * The digest the image must have: the declared one, or — without one — the one measured for this
   * very generation.
   */
  private static Optional<String> knownDigest(BootImage image) {
    if (image.getSpec().sha256() != null) {
      return Optional.of(image.getSpec().sha256());
    }
    BootImageStatus status = image.getStatus();
    return status != null
            && status.sha256() != null
            && Objects.equals(status.observedGeneration(), image.getMetadata().getGeneration())
        ? Optional.of(status.sha256())
        : Optional.empty();
  }

  /** The status of a BootImage: a pure function of what was observed and the time. */
  BootImageStatus desired(BootImage image, Observed observed, Instant now) {
    BootImageStatus old = image.getStatus();
    Long generation = image.getMetadata().getGeneration();
    List<String> violations = BootImageValidator.violations(image.getSpec());
    BootImagePhase phase;
    Health health;
    String sha = null;
    Long size = null;
    Progress progress = null;
    if (!violations.isEmpty()) {
      phase = BootImagePhase.Failed;
      health = Health.stalled(Reason.InvalidSpec, String.join("; ", violations));
    } else if (observed.storedSha256().isPresent()) {
      phase = BootImagePhase.Ready;
      sha = observed.storedSha256().get();
      size = observed.storedSize();
      health =
          Health.ready(Reason.ImageReady, "mirrored and verified; served at " + servedUrl(sha));
    } else {
      Transfers.State t = observed.transfer().orElseThrow();
      if (t.result().isPresent()) {
        phase = BootImagePhase.Ready;
        sha = t.result().get().sha256();
        size = t.result().get().size();
        health =
            Health.ready(Reason.ImageReady, "mirrored and verified; served at " + servedUrl(sha));
      } else if (t.failure().isPresent()) {
        phase = BootImagePhase.Failed;
        health = Health.stalled(t.failure().get().reason(), t.failure().get().getMessage());
      } else {
        Mirror.Progress p = t.progress().orElseThrow();
        phase = p.bytes() == 0 ? BootImagePhase.Pending : BootImagePhase.Downloading;
        progress = new Progress(p.bytes(), p.total() < 0 ? null : p.total(), p.bytesPerSecond());
        health =
            Health.reconciling(
                Reason.Mirroring,
                "downloading "
                    + image.getSpec().source().url()
                    + (p.total() > 0 ? " (" + (p.bytes() * 100 / p.total()) + "%)" : ""));
      }
    }
    var conditions =
        Conditions.merge(
            old == null ? List.of() : old.conditions(), health.conditions(generation), now);
    boolean valid = violations.isEmpty();
    return new BootImageStatus(
        phase,
        valid ? BootImageValidator.effectiveFormat(image.getSpec()) : null,
        size,
        sha,
        sha == null ? null : servedUrl(sha),
        progress,
        conditions,
        generation);
  }

  /**
   * Where machines fetch an image: absolute with {@code cb.public-url}, else a path that the iPXE
   * script and the agent stream resolve against the URL the machine reached the operator at.
   */
  private String servedUrl(String sha) {
    return config.publicUrl().map(u -> u.replaceAll("/+$", "")).orElse("") + "/images/" + sha;
  }

  @Override
  public DeleteControl cleanup(BootImage image, Context<BootImage> context) {
    String key = image.getMetadata().getUid();
    transfers.cancel(key);
    byTransferKey.remove(key);
    String sha =
        image.getStatus() != null && image.getStatus().sha256() != null
            ? image.getStatus().sha256()
            : image.getSpec() == null ? null : image.getSpec().sha256();
    if (sha != null) {
      boolean stillUsed =
          context
              .getPrimaryCache()
              .list()
              .anyMatch(
                  other ->
                      !other.getMetadata().getUid().equals(key)
                          && other.getMetadata().getDeletionTimestamp() == null
                          && (sha.equals(other.getSpec() == null ? null : other.getSpec().sha256())
                              || (other.getStatus() != null
                                  && sha.equals(other.getStatus().sha256()))));
      if (!stillUsed) {
        store.delete(sha);
      }
    }
    return DeleteControl.defaultDelete();
  }

  private static long size(Path file) {
    try {
      return Files.size(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
