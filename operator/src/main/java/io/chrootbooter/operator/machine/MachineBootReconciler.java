package io.chrootbooter.operator.machine;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.operator.status.Health;
import io.chrootbooter.operator.status.Reason;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Reconciles MachineBoots: validates the spec, resolves the BootImage, and keeps the status'
 * conditions and {@code observedGeneration} current. The machine's phase is the agent's to report;
 * this reconciler only defaults it to {@code Pending}.
 */
// Not generation-aware: the agent's status reports change no generation, and the conditions must
// follow them.
@ControllerConfiguration(name = MachineBootReconciler.NAME, generationAwareEventProcessing = false)
public class MachineBootReconciler implements Reconciler<MachineBoot> {
  static final String NAME = "machineboot";
  static final String BY_IMAGE = "byImage";
  static final String BY_MAC = "byMac";

  /**
   * A MachineBoot that lost a MAC dispute is looked at again this often, so it takes over when the
   * owner goes: the owner's deletion raises no event for it.
   */
  private static final Duration DUPLICATE_RECHECK = Duration.ofSeconds(30);

  private final EventRecorder events;
  private final Clock clock;
  private final Timer reconcileTimer;

  MachineBootReconciler(EventRecorder events, MeterRegistry registry) {
    this.events = events;
    this.clock = Clock.systemUTC();
    this.reconcileTimer =
        Timer.builder("chrootbooter.reconcile")
            .description("Time taken by one reconcile")
            .tag("kind", "MachineBoot")
            .register(registry);
  }

  @Override
  public List<EventSource<?, MachineBoot>> prepareEventSources(
      EventSourceContext<MachineBoot> context) {
    var cache = context.getPrimaryCache();
    cache.addIndexer(
        BY_IMAGE,
        mb ->
            mb.getSpec() == null || mb.getSpec().imageRef() == null
                ? List.of()
                : List.of(key(mb.getMetadata().getNamespace(), mb.getSpec().imageRef())));
    cache.addIndexer(
        BY_MAC,
        mb ->
            mb.getSpec() == null
                ? List.of()
                : MacAddress.normalize(mb.getSpec().macAddress()).stream().toList());
    var images =
        InformerEventSourceConfiguration.from(BootImage.class, MachineBoot.class)
            .withSecondaryToPrimaryMapper(
                image ->
                    cache
                        .byIndex(
                            BY_IMAGE,
                            key(image.getMetadata().getNamespace(), image.getMetadata().getName()))
                        .stream()
                        .map(ResourceID::fromResource)
                        .collect(Collectors.toSet()))
            .withPrimaryToSecondaryMapper(
                (MachineBoot mb) ->
                    mb.getSpec() == null || mb.getSpec().imageRef() == null
                        ? Set.of()
                        : Set.of(
                            new ResourceID(
                                mb.getSpec().imageRef(), mb.getMetadata().getNamespace())))
            .build();
    return List.of(new InformerEventSource<>(images, context));
  }

  @Override
  public UpdateControl<MachineBoot> reconcile(MachineBoot mb, Context<MachineBoot> context) {
    return reconcileTimer.record(() -> doReconcile(mb, context));
  }

  private UpdateControl<MachineBoot> doReconcile(MachineBoot mb, Context<MachineBoot> context) {
    Optional<MachineBoot> owner =
        MacAddress.normalize(mb.getSpec() == null ? null : mb.getSpec().macAddress())
            .flatMap(mac -> MacOwners.owner(context.getPrimaryCache().byIndex(BY_MAC, mac)));
    var observation =
        new MachineBootStatuses.Observation(
            mb, context.getSecondaryResource(BootImage.class), owner);
    Health health = MachineBootStatuses.health(observation);
    MachineBootStatus desired = MachineBootStatuses.desired(observation, health, clock.instant());

    Optional<Health> before =
        mb.getStatus() == null ? Optional.empty() : Health.of(mb.getStatus().conditions());
    if (isTransition(before, health)) {
      events.transition(mb, health);
    }
    UpdateControl<MachineBoot> control =
        Objects.equals(desired, mb.getStatus())
            ? UpdateControl.noUpdate()
            : UpdateControl.patchStatus(forStatusPatch(mb, desired));
    if (health.reason() == Reason.DuplicateMacAddress) {
      control.rescheduleAfter(DUPLICATE_RECHECK);
    }
    return control;
  }

  /**
   * Whether to record an event: on every change of health, except a new machine's first step into
   * Reconciling — ten thousand "waiting for the agent" events on a cold start tell nobody anything.
   */
  static boolean isTransition(Optional<Health> before, Health after) {
    if (before.isEmpty()) {
      return after.state() != Health.State.RECONCILING;
    }
    return !before.get().equals(after);
  }

  /** A fresh object holding only identity and status, so the patch touches nothing else. */
  private static MachineBoot forStatusPatch(MachineBoot mb, MachineBootStatus status) {
    MachineBoot fresh = new MachineBoot();
    ObjectMeta meta = new ObjectMeta();
    meta.setName(mb.getMetadata().getName());
    meta.setNamespace(mb.getMetadata().getNamespace());
    fresh.setMetadata(meta);
    fresh.setStatus(status);
    return fresh;
  }

  static String key(String namespace, String name) {
    return namespace + "/" + name;
  }
}
