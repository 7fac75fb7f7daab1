package io.chrootbooter.operator.agentapi;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootSpec;
import io.chrootbooter.api.v1alpha1.ReturnTriggers;
import io.chrootbooter.api.v1alpha1.StopSpec;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.image.BootImageValidator;
import io.chrootbooter.operator.machine.IpxeScript;
import io.chrootbooter.operator.machine.MachineBootValidator;
import io.chrootbooter.protocol.Action;
import io.chrootbooter.protocol.Delivery;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.Verity;
import java.util.List;
import java.util.Optional;

/**
 * What a machine should do, as the agent receives it on its stream: a pure function of its
 * MachineBoot (with the hold of a BootTest that tests it, {@link TestHold}) and the BootImage it
 * names.
 */
final class DesiredStates {
  private DesiredStates() {}

  /**
   * The desired state of a machine: {@code Run} its image once the image is Ready, {@code
   * Bootstrap} when the spec says so, and {@code Hold} (with the reason) while the spec is invalid
   * or the image not Ready. The agent applies only a generation, or an image, it has not applied.
   */
  static DesiredState of(MachineBoot mb, Optional<BootImage> image, String baseUrl) {
    // While a BootTest holds the machine, its hold says what runs, under a generation of its own.
    long generation = TestHold.effectiveGeneration(mb);
    MachineBootSpec spec = TestHold.effectiveSpec(mb);
    if (!MachineBootValidator.violations(spec).isEmpty()) {
      return hold(generation, "the MachineBoot's spec is invalid");
    }
    DesiredState.ReturnTriggers triggers = forAgent(spec.returnTriggers());
    if (spec.imageRef() == null) {
      return DesiredState.builder()
          .action(Action.Bootstrap)
          .generation(generation)
          .returnTriggers(triggers)
          .build();
    }
    if (image.isEmpty()
        || image.get().getStatus() == null
        || image.get().getStatus().phase() != BootImagePhase.Ready
        || image.get().getStatus().servedUrl() == null) {
      return hold(generation, "BootImage " + spec.imageRef() + " is not Ready");
    }
    BootImage bi = image.get();
    if (!BootImageValidator.violations(bi.getSpec()).isEmpty()) {
      // Its status may still say Ready from before an invalid edit: nothing of it goes out.
      return hold(generation, "BootImage " + spec.imageRef() + "'s spec is invalid");
    }
    String sha = bi.getStatus().sha256() != null ? bi.getStatus().sha256() : bi.getSpec().sha256();
    StopSpec stop = bi.getSpec().stop();
    Verity verity = bi.getStatus().verity();
    if (verity != null && sha != null) {
      // Like the image: from the operator the machine reached.
      verity =
          new Verity(
              baseUrl.replaceAll("/+$", "") + "/verity/" + sha,
              verity.rootHash(),
              verity.salt(),
              verity.dataBlocks(),
              verity.hashTreeSize());
    }
    // Lazy needs the hash tree; until the operator has one (an image stored before trees were
    // computed gets it in the background), the image is downloaded whole.
    Delivery delivery =
        bi.getSpec().deliveryOrDefault() == Delivery.Lazy && verity != null
            ? Delivery.Lazy
            : Delivery.Download;
    return DesiredState.builder()
        .action(Action.Run)
        .generation(generation)
        .image(
            DesiredState.Image.builder()
                .name(spec.imageRef())
                .url(IpxeScript.served(baseUrl, bi.getStatus().servedUrl(), sha))
                .sha256(sha)
                .format(bi.getStatus().format())
                .init(bi.getSpec().initOrDefault())
                .stop(
                    stop == null ? null : new DesiredState.Stop(stop.signal(), stop.gracePeriod()))
                .kernelModules(bi.getSpec().kernelModulesOrDefault())
                .confinement(
                    spec.confinement() != null
                        ? spec.confinement()
                        : bi.getSpec().confinementOrDefault())
                .devices(spec.devicesOrEmpty())
                .delivery(delivery)
                .verity(verity)
                .build())
        .overlay(spec.overlayOrDefault())
        .kernelArgs(spec.kernelArgsOrEmpty())
        .bootTimeout(spec.bootTimeout())
        .returnTriggers(triggers)
        // A BootTest's command checks, run by the agent once this boot reports healthy.
        .commands(TestHold.of(mb).map(TestHold::commands).orElse(List.of()))
        .build();
  }

  /**
   * The triggers with their defaults, except the serial port: a spec that names none gets the port
   * of the machine's kernel command line ({@code cb.serial=}, else ttyS1), which only its agent
   * knows.
   */
  static DesiredState.ReturnTriggers forAgent(ReturnTriggers spec) {
    if (spec == null) {
      return DesiredState.ReturnTriggers.DEFAULTS;
    }
    return new DesiredState.ReturnTriggers(
        spec.hotkey(),
        spec.serial() == null
            ? null
            : new DesiredState.Serial(
                spec.serial().enabled(), spec.serial().device(), spec.serial().magic()),
        spec.helper());
  }

  /** {@code Hold} for this reason: the machine keeps doing what it does. */
  static DesiredState hold(long generation, String reason) {
    return DesiredState.builder().action(Action.Hold).generation(generation).reason(reason).build();
  }
}
