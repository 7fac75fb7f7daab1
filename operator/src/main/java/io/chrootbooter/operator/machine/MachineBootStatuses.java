package io.chrootbooter.operator.machine;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootSpec;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.liveness.LivenessRules;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.operator.status.Health;
import io.chrootbooter.operator.status.Reason;
import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.StatusReport;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Optional;

/**
 * Computes a MachineBoot's status from what was observed: its spec, its BootImage, which
 * MachineBoot owns its MAC, and the phase its agent last reported. A pure function, so the same
 * observation always gives the same status.
 */
public final class MachineBootStatuses {
  private MachineBootStatuses() {}

  /**
   * What the reconciler observed about one MachineBoot.
   *
   * @param agentLostSince when the machine's agent was last heard from, when that is longer ago
   *     than {@code lostAfter}; empty while it is live (or was never heard from)
   * @param lostAfter {@code cb.agent.lost-after}, for the message
   */
  public record Observation(
      MachineBoot machine,
      Optional<BootImage> image,
      Optional<MachineBoot> macOwner,
      Optional<Instant> agentLostSince,
      Duration lostAfter) {

    /** An observation of a machine whose agent is not lost. */
    public Observation(
        MachineBoot machine, Optional<BootImage> image, Optional<MachineBoot> macOwner) {
      this(machine, image, macOwner, Optional.empty(), Duration.ofSeconds(60));
    }
  }

  /** The health of the machine. */
  public static Health health(Observation o) {
    MachineBoot mb = o.machine();
    // While a BootTest holds the machine, what it runs is the hold's.
    MachineBootSpec spec = TestHold.effectiveSpec(mb);
    List<String> violations = MachineBootValidator.violations(spec);
    if (!violations.isEmpty()) {
      return Health.stalled(Reason.InvalidSpec, String.join("; ", violations));
    }
    if (o.macOwner().isPresent() && !sameObject(o.macOwner().get(), mb)) {
      MachineBoot owner = o.macOwner().get();
      return Health.stalled(
          Reason.DuplicateMacAddress,
          "spec.macAddress: "
              + spec.macAddress()
              + " is already claimed by MachineBoot "
              + owner.getMetadata().getNamespace()
              + "/"
              + owner.getMetadata().getName());
    }
    MachinePhase phase = phaseOf(mb);
    if (o.agentLostSince().isPresent()) {
      return Health.stalled(
          Reason.AgentLost,
          "the agent was last heard from at "
              + o.agentLostSince().get().truncatedTo(ChronoUnit.SECONDS)
              + ", more than "
              + GoDuration.format(o.lostAfter())
              + " ago (cb.agent.lost-after); "
              + phase
              + " is what it last reported");
    }
    switch (phase) {
      case ConsoleOverride:
        return Health.stalled(
            Reason.ConsoleOverride,
            "returned to the bootstrap at the console; change the spec or type `resume` at the"
                + " console to apply it again");
      case Failed:
        String error = mb.getStatus() == null ? null : mb.getStatus().error();
        if (error != null && error.startsWith(StatusReport.VERITY_MISMATCH)) {
          return Health.stalled(
              Reason.VerityMismatch,
              "the agent reported: "
                  + error.substring(StatusReport.VERITY_MISMATCH.length())
                  + "; the machine is back in the bootstrap");
        }
        return Health.stalled(
            Reason.AgentFailed,
            error == null ? "the agent reported a failure" : "the agent reported: " + error);
      default:
        break;
    }
    if (spec.imageRef() != null) {
      String ref = spec.imageRef();
      if (o.image().isEmpty()) {
        return Health.reconciling(
            Reason.WaitingForImage,
            "BootImage " + mb.getMetadata().getNamespace() + "/" + ref + " does not exist");
      }
      BootImage image = o.image().get();
      BootImagePhase imagePhase = image.getStatus() == null ? null : image.getStatus().phase();
      if (imagePhase == BootImagePhase.Failed
          || (image.getStatus() != null
              && Conditions.isTrue(image.getStatus().conditions(), "Stalled"))) {
        String why =
            Conditions.find(image.getStatus().conditions(), "Stalled")
                .map(c -> ": " + c.getMessage())
                .orElse("");
        return Health.stalled(Reason.ImageFailed, "BootImage " + ref + " failed" + why);
      }
      if (imagePhase != BootImagePhase.Ready) {
        return Health.reconciling(
            Reason.ImageNotReady,
            "BootImage " + ref + " is " + (imagePhase == null ? "not reconciled yet" : imagePhase));
      }
      if (phase == MachinePhase.Running && ref.equals(currentImage(mb))) {
        return Health.ready(Reason.Running, "running BootImage " + ref);
      }
    } else if (phase == MachinePhase.Bootstrap) {
      return Health.ready(Reason.InBootstrap, "waiting in the bootstrap, as declared");
    }
    if (phase == MachinePhase.Pending) {
      return Health.reconciling(
          Reason.WaitingForAgent, "waiting for the machine to boot and its agent to report");
    }
    return Health.reconciling(Reason.Progressing, "the agent is " + phase);
  }

  /** The status to write: the agent's fields kept, phase defaulted, conditions recomputed. */
  public static MachineBootStatus desired(Observation o, Health health, Instant now) {
    MachineBoot mb = o.machine();
    MachineBootStatus old = mb.getStatus();
    Long generation = mb.getMetadata().getGeneration();
    Optional<TestHold> hold = TestHold.of(mb);
    List<io.fabric8.kubernetes.api.model.Condition> desired =
        new java.util.ArrayList<>(health.conditions(generation));
    hold.ifPresent(h -> desired.add(heldCondition(h, generation)));
    List<io.fabric8.kubernetes.api.model.Condition> conditions =
        Conditions.merge(old == null ? List.of() : old.conditions(), desired, now);
    // Every other field is the agent's, kept as it was.
    return (old == null ? MachineBootStatus.builder() : old.toBuilder())
        .phase(phaseOf(mb))
        .observedGeneration(generation)
        .conditions(conditions)
        .lastSeen(lastSeen(old, o.agentLostSince()))
        .heldBy(hold.map(TestHold::test).orElse(null))
        .build();
  }

  /** The condition {@code HeldByTest}, True while a BootTest holds the machine. */
  static io.fabric8.kubernetes.api.model.Condition heldCondition(TestHold hold, Long generation) {
    return new io.fabric8.kubernetes.api.model.ConditionBuilder()
        .withType("HeldByTest")
        .withStatus("True")
        .withReason(Reason.HeldByTest.name())
        .withMessage(
            "BootTest "
                + hold.test()
                + " holds the machine: it runs "
                + (hold.imageRef() == null ? "the bootstrap" : "BootImage " + hold.imageRef())
                + " for the test; edits of the spec apply once the test releases it")
        .withObservedGeneration(generation)
        .build();
  }

  /**
   * The status' {@code lastSeen}: the agent's writes keep it, and a lost machine's shows the last
   * time its agent was heard from (from its Lease, more precise than the status' own).
   */
  private static String lastSeen(MachineBootStatus old, Optional<Instant> lostSince) {
    String kept = old == null ? null : old.lastSeen();
    if (lostSince.isEmpty()) {
      return kept;
    }
    Instant lost = lostSince.get().truncatedTo(ChronoUnit.SECONDS);
    return LivenessRules.parse(kept).filter(k -> !k.isBefore(lost)).isPresent()
        ? kept
        : lost.toString();
  }

  private static MachinePhase phaseOf(MachineBoot mb) {
    return mb.getStatus() == null || mb.getStatus().phase() == null
        ? MachinePhase.Pending
        : mb.getStatus().phase();
  }

  private static String currentImage(MachineBoot mb) {
    return mb.getStatus() == null ? null : mb.getStatus().currentImage();
  }

  private static boolean sameObject(MachineBoot a, MachineBoot b) {
    return a.getMetadata().getNamespace().equals(b.getMetadata().getNamespace())
        && a.getMetadata().getName().equals(b.getMetadata().getName());
  }
}
