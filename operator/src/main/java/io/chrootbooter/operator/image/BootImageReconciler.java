package io.chrootbooter.operator.image;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.BootImageSpec;
import io.chrootbooter.api.v1alpha1.BootImageStatus;
import io.chrootbooter.api.v1alpha1.CaBundleRef;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.operator.status.Health;
import io.chrootbooter.operator.status.Reason;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.Progress;
import io.chrootbooter.protocol.Verity;
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
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Reconciles BootImages: validates the spec, mirrors the image into the store (or finds it there by
 * digest), and keeps phase, progress, conditions and {@code observedGeneration} current. When the
 * last BootImage of a digest goes, its file goes too.
 *
 * <p>A {@code spec.source.caBundle} is read from its Secret only while the image still has to be
 * downloaded. A Secret that does not exist yet is waited for ({@code Reconciling}, {@code
 * WaitingForCaBundle}: creating it is the expected next step, as for a MachineBoot's image); one
 * whose key is missing or holds no certificate is {@code Stalled} ({@code InvalidCaBundle}) until
 * the Secret changes.
 */
@ControllerConfiguration(name = "bootimage")
public class BootImageReconciler implements Reconciler<BootImage>, Cleaner<BootImage> {
  /** How soon a BootImage whose status was just written is looked at again (see reconcile). */
  static final java.time.Duration AFTER_STATUS_WRITE = java.time.Duration.ofSeconds(1);

  /** How soon a Ready squashfs image whose hash tree is being computed looks again. */
  private static final Duration TREE_RETRY = Duration.ofSeconds(2);

  /** How soon a BootImage that cannot read its caBundle Secret (RBAC, say) looks again. */
  private static final Duration CA_BUNDLE_RETRY = Duration.ofSeconds(30);

  private final EventRecorder events;
  private final ImageStore store;
  private final Transfers transfers;
  private final CaBundleSecrets caBundles;
  private final VerityTrees trees;
  private final OperatorConfig config;
  private final Clock clock = Clock.systemUTC();
  private final Timer reconcileTimer;
  private final SimpleInboundEventSource<BootImage> transferEvents =
      new SimpleInboundEventSource<>("transfers");
  private final SimpleInboundEventSource<BootImage> caBundleEvents =
      new SimpleInboundEventSource<>("ca-bundle-secrets");
  private final Map<String, ResourceID> byTransferKey = new ConcurrentHashMap<>();

  BootImageReconciler(
      EventRecorder events,
      ImageStore store,
      Transfers transfers,
      CaBundleSecrets caBundles,
      VerityTrees trees,
      OperatorConfig config,
      MeterRegistry registry) {
    this.trees = trees;
    this.events = events;
    this.store = store;
    this.transfers = transfers;
    this.caBundles = caBundles;
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
    caBundles.onChange(caBundleEvents::propagateEvent);
    return List.of(transferEvents, caBundleEvents);
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
    boolean retryLater =
        observed.blocked().filter(h -> h.reason() == Reason.WaitingForCaBundle).isPresent();
    boolean treeComing =
        desired.sha256() != null && desired.verity() == null && trees.computing(desired.sha256());
    if (Objects.equals(desired, image.getStatus())) {
      return retryLater
          ? UpdateControl.<BootImage>noUpdate().rescheduleAfter(CA_BUNDLE_RETRY)
          : treeComing
              ? UpdateControl.<BootImage>noUpdate().rescheduleAfter(TREE_RETRY)
              : UpdateControl.noUpdate();
    }
    BootImage fresh = new BootImage();
    ObjectMeta meta = new ObjectMeta();
    meta.setName(image.getMetadata().getName());
    meta.setNamespace(image.getMetadata().getNamespace());
    fresh.setMetadata(meta);
    fresh.setStatus(desired);
    // Every status write is followed by one more look: JOSDK 5.3's filtering of the reconciler's
    // own updates can swallow the event of a spec edit that lands while this patch is in flight
    // (the patch's response is newer than the edit, so the edit's event counts as seen), and the
    // edit would wait for the next unrelated event. The look reads the cache, which holds the
    // edit; it writes nothing when the status is as it should be, so it ends there.
    return UpdateControl.patchStatus(fresh)
        .rescheduleAfter(retryLater ? CA_BUNDLE_RETRY : AFTER_STATUS_WRITE);
  }

  /**
   * What the store, the downloads and the caBundle Secret say about one BootImage. {@code blocked}:
   * the download cannot start, and why.
   */
  record Observed(
      Optional<String> storedSha256,
      long storedSize,
      Optional<Transfers.State> transfer,
      Optional<Health> blocked) {
    static Observed nothing() {
      return new Observed(Optional.empty(), 0, Optional.empty(), Optional.empty());
    }

    static Observed blocked(Health why) {
      return new Observed(Optional.empty(), 0, Optional.empty(), Optional.of(why));
    }
  }

  private Observed observe(BootImage image, String key) {
    BootImageSpec spec = image.getSpec();
    ResourceID id = ResourceID.fromResource(image);
    if (!violations(image).isEmpty()) {
      transfers.cancel(key);
      caBundles.release(id);
      return Observed.nothing();
    }
    Optional<String> known = knownDigest(image);
    Optional<Path> stored = known.flatMap(store::find);
    if (stored.isPresent()) {
      transfers.cancel(key);
      caBundles.release(id);
      return new Observed(known, size(stored.get()), Optional.empty(), Optional.empty());
    }
    List<X509Certificate> cas = List.of();
    CaBundleRef ref = spec.source().caBundle();
    if (ref == null) {
      caBundles.release(id);
    } else {
      CaBundleSecrets.Lookup lookup = caBundles.lookup(id, ref);
      if (lookup instanceof CaBundleSecrets.Waiting waiting) {
        transfers.cancel(key);
        return Observed.blocked(Health.reconciling(Reason.WaitingForCaBundle, waiting.message()));
      }
      if (lookup instanceof CaBundleSecrets.Invalid invalid) {
        transfers.cancel(key);
        return Observed.blocked(Health.stalled(Reason.InvalidCaBundle, invalid.message()));
      }
      cas = ((CaBundleSecrets.Found) lookup).certificates();
    }
    var source =
        new Transfers.Source(
            spec.source().url(),
            Optional.ofNullable(spec.sha256()),
            BootImageValidator.effectiveFormat(spec),
            cas);
    return new Observed(
        Optional.empty(), 0, Optional.of(transfers.ensure(key, source)), Optional.empty());
  }

  /** The spec's violations: the schema's rules, and no caBundle from the machine-token Secret. */
  private List<String> violations(BootImage image) {
    List<String> v = new ArrayList<>(BootImageValidator.violations(image.getSpec()));
    if (v.isEmpty()) {
      caBundles
          .reserved(image.getMetadata().getNamespace(), image.getSpec().source().caBundle())
          .ifPresent(v::add);
    }
    return v;
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
    List<String> violations = violations(image);
    BootImagePhase phase;
    Health health;
    String sha = null;
    Long size = null;
    Progress progress = null;
    if (!violations.isEmpty()) {
      phase = BootImagePhase.Failed;
      health = Health.stalled(Reason.InvalidSpec, String.join("; ", violations));
    } else if (observed.blocked().isPresent()) {
      health = observed.blocked().get();
      phase =
          health.state() == Health.State.STALLED ? BootImagePhase.Failed : BootImagePhase.Pending;
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
    Verity verity = null;
    if (phase == BootImagePhase.Ready
        && sha != null
        && BootImageValidator.effectiveFormat(image.getSpec()) == ImageFormat.SQUASHFS) {
      String digest = sha;
      verity =
          trees
              .findOrStart(sha)
              .map(
                  h ->
                      new Verity(
                          hashTreeUrl(digest),
                          h.rootHashHex(),
                          h.saltHex(),
                          h.dataBlocks(),
                          h.treeBytes()))
              .orElse(null);
    }
    return new BootImageStatus(
        phase,
        valid ? BootImageValidator.effectiveFormat(image.getSpec()) : null,
        size,
        sha,
        sha == null ? null : servedUrl(sha),
        progress,
        conditions,
        generation,
        verity);
  }

  /**
   * Where machines fetch an image: absolute with {@code cb.public-url}, else a path that the iPXE
   * script and the agent stream resolve against the URL the machine reached the operator at.
   */
  private String servedUrl(String sha) {
    return config.publicUrl().map(u -> u.replaceAll("/+$", "")).orElse("") + "/images/" + sha;
  }

  /** Where machines fetch an image's hash tree; like {@link #servedUrl}. */
  private String hashTreeUrl(String sha) {
    return config.publicUrl().map(u -> u.replaceAll("/+$", "")).orElse("") + "/verity/" + sha;
  }

  @Override
  public DeleteControl cleanup(BootImage image, Context<BootImage> context) {
    String key = image.getMetadata().getUid();
    transfers.cancel(key);
    byTransferKey.remove(key);
    caBundles.release(ResourceID.fromResource(image));
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
