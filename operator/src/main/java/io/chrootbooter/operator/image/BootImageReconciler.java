package io.chrootbooter.operator.image;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.BootImageStatus;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.operator.status.Health;
import io.chrootbooter.operator.status.Reason;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Reconciles BootImages: validates the spec, infers the format from the URL, and keeps phase,
 * conditions and {@code observedGeneration} current.
 */
@ControllerConfiguration(name = "bootimage")
public class BootImageReconciler implements Reconciler<BootImage> {
  private final EventRecorder events;
  private final Clock clock = Clock.systemUTC();
  private final Timer reconcileTimer;

  BootImageReconciler(EventRecorder events, MeterRegistry registry) {
    this.events = events;
    this.reconcileTimer =
        Timer.builder("chrootbooter.reconcile")
            .description("Time taken by one reconcile")
            .tag("kind", "BootImage")
            .register(registry);
  }

  @Override
  public UpdateControl<BootImage> reconcile(BootImage image, Context<BootImage> context) {
    return reconcileTimer.record(() -> doReconcile(image));
  }

  private UpdateControl<BootImage> doReconcile(BootImage image) {
    BootImageStatus desired = desired(image, clock.instant());
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

  /** The status of a BootImage: a pure function of its spec, its old status and the time. */
  static BootImageStatus desired(BootImage image, Instant now) {
    BootImageStatus old = image.getStatus();
    Long generation = image.getMetadata().getGeneration();
    List<String> violations = BootImageValidator.violations(image.getSpec());
    Health health;
    BootImagePhase phase;
    if (!violations.isEmpty()) {
      health = Health.stalled(Reason.InvalidSpec, String.join("; ", violations));
      phase = BootImagePhase.Failed;
    } else {
      // Until the image store mirrors images, machines fetch them from the source itself.
      health = Health.ready(Reason.ImageReady, "machines fetch the image from its source URL");
      phase = BootImagePhase.Ready;
    }
    var conditions =
        Conditions.merge(
            old == null ? List.of() : old.conditions(), health.conditions(generation), now);
    boolean valid = violations.isEmpty();
    return new BootImageStatus(
        phase,
        valid ? BootImageValidator.effectiveFormat(image.getSpec()) : null,
        old == null ? null : old.size(),
        old == null ? null : old.sha256(),
        valid ? image.getSpec().source().url() : null,
        null,
        conditions,
        generation);
  }
}
