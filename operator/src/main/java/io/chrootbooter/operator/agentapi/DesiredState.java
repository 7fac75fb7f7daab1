package io.chrootbooter.operator.agentapi;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootSpec;
import io.chrootbooter.api.v1alpha1.ReturnTriggers;
import io.chrootbooter.api.v1alpha1.SerialTrigger;
import io.chrootbooter.api.v1alpha1.StopSpec;
import io.chrootbooter.operator.image.BootImageValidator;
import io.chrootbooter.operator.machine.IpxeScript;
import io.chrootbooter.operator.machine.MachineBootValidator;
import java.util.List;
import java.util.Optional;

/**
 * What a machine should do, as the agent receives it on its stream.
 *
 * @param action {@code Run} the image, go to the {@code Bootstrap}, or {@code Hold}: keep doing
 *     what it does (the spec is invalid, or its image is not ready yet; {@code reason} says)
 * @param generation the MachineBoot's {@code metadata.generation}; the agent applies only a
 *     generation newer than the one it has applied
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record DesiredState(
    String action,
    long generation,
    String reason,
    Image image,
    String overlay,
    List<String> kernelArgs,
    String bootTimeout,
    ReturnTriggers returnTriggers) {

  /**
   * The image to run.
   *
   * @param stop the BootImage's {@code spec.stop}, validated; null when unset (the agent then
   *     chooses the signal from the init and uses its own grace period)
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Image(
      String name, String url, String sha256, String format, String init, StopSpec stop) {}

  /** The desired state of a machine, from its MachineBoot and the BootImage it names. */
  public static DesiredState of(MachineBoot mb, Optional<BootImage> image, String baseUrl) {
    long generation =
        mb.getMetadata().getGeneration() == null ? 0 : mb.getMetadata().getGeneration();
    MachineBootSpec spec = mb.getSpec();
    if (!MachineBootValidator.violations(spec).isEmpty()) {
      return hold(generation, "the MachineBoot's spec is invalid");
    }
    ReturnTriggers triggers = forAgent(spec.returnTriggers());
    if (spec.imageRef() == null) {
      return new DesiredState("Bootstrap", generation, null, null, null, List.of(), null, triggers);
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
    return new DesiredState(
        "Run",
        generation,
        null,
        new Image(
            spec.imageRef(),
            IpxeScript.resolve(baseUrl, bi.getStatus().servedUrl()),
            sha,
            bi.getStatus().format() == null ? null : bi.getStatus().format().value(),
            bi.getSpec().initOrDefault(),
            bi.getSpec().stop()),
        spec.overlayOrDefault(),
        spec.kernelArgsOrEmpty(),
        spec.bootTimeout(),
        triggers);
  }

  /**
   * The triggers with their defaults, except the serial port: a spec that names none gets the port
   * of the machine's kernel command line ({@code cb.serial=}, else ttyS1), which only its agent
   * knows.
   */
  static ReturnTriggers forAgent(ReturnTriggers spec) {
    ReturnTriggers t = ReturnTriggers.withDefaults(spec);
    String device = spec == null || spec.serial() == null ? null : spec.serial().device();
    return new ReturnTriggers(
        t.hotkey(),
        new SerialTrigger(t.serial().enabled(), device, t.serial().magic()),
        t.helper());
  }

  private static DesiredState hold(long generation, String reason) {
    return new DesiredState("Hold", generation, reason, null, null, List.of(), null, null);
  }
}
