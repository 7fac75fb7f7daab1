package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.Confinement;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import java.util.List;

/** What one machine should run. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "has(self.imageRef) != has(self.state)",
    message = "exactly one of imageRef and state: Bootstrap must be set")
@ValidationRule(
    value = Patterns.KERNEL_ARGS_RESERVED_RULE,
    message = "spec.kernelArgs: init=, rdinit=, initrd=, bootif=, cb.* and cb_* are reserved")
public record MachineBootSpec(
    @Required
        @Pattern(Patterns.MAC)
        @JsonPropertyDescription(
            "The machine's boot MAC address, lower case with colons (52:54:00:12:34:56). It"
                + " identifies the machine.")
        String macAddress,
    @Pattern(Patterns.UUID) @JsonPropertyDescription("The machine's SMBIOS UUID, if known.")
        String uuid,
    @Pattern(Patterns.OBJECT_NAME)
        @JsonPropertyDescription(
            "The name of the BootImage, in this namespace, that the machine runs. Exactly one of"
                + " imageRef and state.")
        String imageRef,
    @JsonPropertyDescription(
            "Bootstrap holds the machine in the bootstrap, ready for the next image. Exactly one"
                + " of imageRef and state.")
        MachineState state,
    @Size(max = 64)
        @JsonPropertyDescription(
            "Extra kernel arguments, one per item, such as console=ttyS0,115200n8. The key is"
                + " lower case (letters, digits and _ . : / , + @ -), the value after = may"
                + " also use upper case and =. Reserved: init=, rdinit=, initrd=, bootif=, cb.*"
                + " and cb_* (the operator and the bootstrap set them); upper-case keys such"
                + " as CB_DEBUG=1 would reach the bootstrap's environment and are refused.")
        List<@Pattern(Patterns.KERNEL_ARG) String> kernelArgs,
    @Pattern(Patterns.OVERLAY)
        @JsonPropertyDescription(
            "The writable layer over a squashfs root: tmpfs (default; changes are lost on"
                + " return), none (read-only root), or a block device such as /dev/sdb1"
                + " (persistent changes).")
        String overlay,
    @JsonPropertyDescription("What returns the running machine to the bootstrap.")
        ReturnTriggers returnTriggers,
    @Pattern(Patterns.DURATION)
        @JsonPropertyDescription(
            "How long the target may take to report healthy before the agent returns, such as"
                + " 5m. Unset: no limit.")
        String bootTimeout,
    @JsonPropertyDescription(
            "Overrides the BootImage's spec.confinement for this machine. "
                + BootImageSpec.CONFINEMENT)
        Confinement confinement,
    @Size(max = 32)
        @JsonPropertyDescription(
            "Device nodes of the machine, such as /dev/vdb, that a Confined image sees in its"
                + " private /dev, under the same name. Each must be a character or block device"
                + " node in the bootstrap's /dev; a symbolic link (such as /dev/disk/by-id/...)"
                + " is refused and fails the boot. A Machine image sees every device, listed or"
                + " not.")
        List<@Pattern(Patterns.DEVICE) String> devices) {

  public MachineBootSpec {
    kernelArgs = kernelArgs == null ? null : List.copyOf(kernelArgs);
    devices = devices == null ? null : List.copyOf(devices);
  }

  /** A spec without a confinement override or devices. */
  public MachineBootSpec(
      String macAddress,
      String uuid,
      String imageRef,
      MachineState state,
      List<String> kernelArgs,
      String overlay,
      ReturnTriggers returnTriggers,
      String bootTimeout) {
    this(
        macAddress,
        uuid,
        imageRef,
        state,
        kernelArgs,
        overlay,
        returnTriggers,
        bootTimeout,
        null,
        null);
  }

  /** The devices a Confined image sees, never null. */
  public List<String> devicesOrEmpty() {
    return devices == null ? List.of() : devices;
  }

  /** The kernel arguments, never null. */
  public List<String> kernelArgsOrEmpty() {
    return kernelArgs == null ? List.of() : kernelArgs;
  }

  /** The overlay, with the default applied. */
  public String overlayOrDefault() {
    return overlay == null ? "tmpfs" : overlay;
  }
}
