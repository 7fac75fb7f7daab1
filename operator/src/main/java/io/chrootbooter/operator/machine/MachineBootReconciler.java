package io.chrootbooter.operator.machine;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.liveness.AgentLeases;
import io.chrootbooter.operator.liveness.LivenessRules;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.operator.status.Health;
import io.chrootbooter.operator.status.Reason;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
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
import java.time.Instant;
import java.time.temporal.ChronoUnit;
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

  /**
   * A MachineBoot that lost a MAC dispute is looked at again this often, so it takes over when the
   * owner goes: the owner's deletion raises no event for it.
   */
  private static final Duration DUPLICATE_RECHECK = Duration.ofSeconds(30);

  /** A lost agent is looked at this long after its deadline, so the deadline has passed. */
  private static final Duration LOST_MARGIN = Duration.ofMillis(100);

  private final EventRecorder events;
  private final AgentLeases leases;
  private final Clock clock;
  private final Timer reconcileTimer;

  private final KubernetesClient client;

  MachineBootReconciler(
      EventRecorder events, AgentLeases leases, MeterRegistry registry, KubernetesClient client) {
    this.client = client;
    this.events = events;
    this.leases = leases;
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
    MachineIndexes.all().forEach(cache::addIndexer);
    var images =
        InformerEventSourceConfiguration.from(BootImage.class, MachineBoot.class)
            .withSecondaryToPrimaryMapper(
                image ->
                    cache
                        .byIndex(
                            MachineIndexes.BY_IMAGE,
                            MachineIndexes.imageKey(
                                image.getMetadata().getNamespace(), image.getMetadata().getName()))
                        .stream()
                        .map(ResourceID::fromResource)
                        .collect(Collectors.toSet()))
            .withPrimaryToSecondaryMapper(
                (MachineBoot mb) ->
                    MachineDirectory.imageRef(mb)
                        .map(ref -> Set.of(new ResourceID(ref, mb.getMetadata().getNamespace())))
                        .orElse(Set.of()))
            .build();
    // The agent Leases: a renewal makes the reconcile that moves the machine's deadline, and one
    // that is due marks it lost (rescheduleAfter) without any change of the Lease.
    var agentLeases =
        InformerEventSourceConfiguration.from(Lease.class, MachineBoot.class)
            .withName("agentLeases")
            .withLabelSelector(AgentLeases.LABEL + "=true")
            .withSecondaryToPrimaryMapper(
                lease ->
                    lease.getMetadata().getOwnerReferences().stream()
                        .filter(r -> "MachineBoot".equals(r.getKind()))
                        .map(r -> new ResourceID(r.getName(), lease.getMetadata().getNamespace()))
                        .collect(Collectors.toSet()))
            .withPrimaryToSecondaryMapper(
                (MachineBoot mb) ->
                    Set.of(
                        new ResourceID(
                            LivenessRules.leaseName(mb.getMetadata().getName()),
                            mb.getMetadata().getNamespace())))
            .build();
    return List.of(
        new InformerEventSource<>(images, context),
        new InformerEventSource<>(agentLeases, context));
  }

  @Override
  public UpdateControl<MachineBoot> reconcile(MachineBoot mb, Context<MachineBoot> context) {
    return reconcileTimer.record(() -> doReconcile(mb, context));
  }

  private UpdateControl<MachineBoot> doReconcile(MachineBoot mb, Context<MachineBoot> context) {
    if (releaseStaleHold(mb)) {
      return UpdateControl.noUpdate(); // the release is a change of its own, reconciled next
    }
    Optional<MachineBoot> owner =
        MacAddress.normalize(mb.getSpec() == null ? null : mb.getSpec().macAddress())
            .flatMap(
                mac ->
                    MacOwners.owner(context.getPrimaryCache().byIndex(MachineIndexes.BY_MAC, mac)));
    Instant now = clock.instant();
    Duration lostAfter = leases.lostAfter();
    Optional<Instant> seen =
        LivenessRules.tracked(mb.getStatus())
            ? LivenessRules.lastSeen(
                context
                    .getSecondaryResource(Lease.class)
                    .flatMap(AgentLeases::renewTime)
                    .orElse(null),
                mb.getStatus())
            : Optional.empty();
    Optional<Instant> lostSince = seen.filter(s -> LivenessRules.isLost(s, now, lostAfter));
    var observation =
        new MachineBootStatuses.Observation(
            mb, context.getSecondaryResource(BootImage.class), owner, lostSince, lostAfter);
    Health health = MachineBootStatuses.health(observation);
    MachineBootStatus desired = MachineBootStatuses.desired(observation, health, now);

    Optional<Health> before =
        mb.getStatus() == null ? Optional.empty() : Health.of(mb.getStatus().conditions());
    if (isBack(before, health)) {
      String heard = seen.map(s -> s.truncatedTo(ChronoUnit.SECONDS).toString()).orElse("?");
      // Once per comeback: a second reconcile may still see the AgentLost status it replaces.
      events.recordOnce(
          mb,
          "Normal",
          Reason.AgentBack.name(),
          "the agent was heard from again at " + heard + "; " + health.message(),
          heard);
    } else if (isTransition(before, health) && health.reason() == Reason.AgentLost) {
      // Once per silence, for the same reason.
      events.recordOnce(
          mb,
          "Warning",
          Reason.AgentLost.name(),
          health.message(),
          seen.map(Instant::toString).orElse("?"));
    } else if (isTransition(before, health)) {
      events.transition(mb, health);
    }
    UpdateControl<MachineBoot> control =
        Objects.equals(desired, mb.getStatus())
            ? UpdateControl.noUpdate()
            : UpdateControl.patchStatus(forStatusPatch(mb, desired));
    Optional<Duration> recheck =
        health.reason() == Reason.DuplicateMacAddress
            ? Optional.of(DUPLICATE_RECHECK)
            : Optional.empty();
    if (lostSince.isEmpty() && seen.isPresent()) {
      // Looked at again the moment the agent would be lost, unless a renewal comes first.
      Duration due = Duration.between(now, seen.get().plus(lostAfter)).plus(LOST_MARGIN);
      recheck = Optional.of(recheck.filter(r -> r.compareTo(due) < 0).orElse(due));
    }
    recheck.ifPresent(control::rescheduleAfter);
    return control;
  }

  /**
   * Releases a hold whose BootTest does not exist: one deleted without its finalizer running (a
   * test's deletion releases its machines itself). Its machine would otherwise follow the hold for
   * ever.
   */
  private boolean releaseStaleHold(MachineBoot mb) {
    Optional<TestHold> hold = TestHold.of(mb);
    if (hold.isEmpty()) {
      return false;
    }
    String ns = mb.getMetadata().getNamespace();
    if (client.resources(BootTest.class).inNamespace(ns).withName(hold.get().test()).get()
        != null) {
      return false;
    }
    client
        .resources(MachineBoot.class)
        .inNamespace(ns)
        .withName(mb.getMetadata().getName())
        .edit(m -> TestHold.released(m, io.chrootbooter.api.v1alpha1.AfterTest.Restore, null));
    events.record(
        mb,
        "Warning",
        Reason.TestSwitch.name(),
        "released from BootTest "
            + hold.get().test()
            + ", which no longer exists: it follows its spec again");
    return true;
  }

  /** Whether a machine marked AgentLost is heard from again. */
  static boolean isBack(Optional<Health> before, Health after) {
    return before.isPresent()
        && before.get().reason() == Reason.AgentLost
        && after.reason() != Reason.AgentLost;
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
}
