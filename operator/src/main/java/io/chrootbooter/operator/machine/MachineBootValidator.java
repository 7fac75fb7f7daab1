package io.chrootbooter.operator.machine;

import static io.chrootbooter.operator.SpecRules.match;
import static io.chrootbooter.operator.SpecRules.quote;

import io.chrootbooter.api.v1alpha1.MachineBootSpec;
import io.chrootbooter.api.v1alpha1.Patterns;
import io.chrootbooter.api.v1alpha1.ReturnTriggers;
import io.chrootbooter.api.v1alpha1.SerialTrigger;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Validates a MachineBoot spec again, field by field, with the rules of the CRD schema: not every
 * API server applies the schema, and what reaches an iPXE script or a kernel command line must
 * never depend on one having done so.
 */
public final class MachineBootValidator {
  private static final Pattern MAC = Pattern.compile(Patterns.MAC);
  private static final Pattern UUID = Pattern.compile(Patterns.UUID);
  private static final Pattern NAME = Pattern.compile(Patterns.OBJECT_NAME);
  private static final Pattern KERNEL_ARG = Pattern.compile(Patterns.KERNEL_ARG);
  private static final Pattern OVERLAY = Pattern.compile(Patterns.OVERLAY);
  private static final Pattern DEVICE = Pattern.compile(Patterns.DEVICE);
  private static final Pattern DURATION = Pattern.compile(Patterns.DURATION);
  private static final Pattern TTY = Pattern.compile(Patterns.TTY);
  private static final Pattern MAGIC = Pattern.compile(Patterns.MAGIC);
  private static final int MAX_KERNEL_ARGS = 64;

  /**
   * Kernel arguments a spec must not set: those the operator sets itself ({@code initrd}, {@code
   * BOOTIF}, {@code cb.*}), those that choose PID 1 ({@code init}, {@code rdinit}), and {@code
   * cb_*}, which would reach the bootstrap's environment. Keys compare case-insensitively here;
   * upper case in a key is refused on its own (see {@link #reserved}).
   */
  private static final List<String> RESERVED =
      List.of("initrd", "bootif", "init", "rdinit", "cb.", "cb_");

  private MachineBootValidator() {}

  /** Every violation of the spec, empty when it is valid. */
  public static List<String> violations(MachineBootSpec spec) {
    List<String> v = new ArrayList<>();
    if (spec == null) {
      v.add("spec: required");
      return v;
    }
    if (spec.macAddress() == null) {
      v.add("spec.macAddress: required");
    } else if (!MAC.matcher(spec.macAddress()).matches()) {
      String hint =
          MacAddress.normalize(spec.macAddress()).map(m -> "; write \"" + m + "\"").orElse("");
      v.add(
          "spec.macAddress: "
              + quote(spec.macAddress())
              + " is not a MAC address in lower-case colon notation (^([0-9a-f]{2}:){5}[0-9a-f]{2}$)"
              + hint);
    }
    match(v, "spec.uuid", spec.uuid(), UUID, "is not a UUID (8-4-4-4-12 hex digits)");
    match(
        v,
        "spec.imageRef",
        spec.imageRef(),
        NAME,
        "is not a BootImage name (lower-case letters, digits, '-' and '.')");
    if ((spec.imageRef() == null) == (spec.state() == null)) {
      v.add("spec: exactly one of imageRef and state: Bootstrap must be set");
    }
    List<String> args = spec.kernelArgsOrEmpty();
    if (args.size() > MAX_KERNEL_ARGS) {
      v.add("spec.kernelArgs: " + args.size() + " items; at most " + MAX_KERNEL_ARGS);
    }
    for (int i = 0; i < args.size(); i++) {
      String field = "spec.kernelArgs[" + i + "]";
      String arg = args.get(i);
      if (arg == null) {
        v.add(field + ": null");
      } else if (!KERNEL_ARG.matcher(arg).matches()) {
        v.add(
            field
                + ": "
                + quote(arg)
                + " is not a safe kernel argument (a lower-case key of letters, digits and"
                + " _ . : / , + @ -, at most 128 characters, not starting with '-'; then"
                + " optionally = and a value of letters, digits and _ . : / , = + @ -, at most"
                + " 255)");
      } else {
        reserved(arg).ifPresent(why -> v.add(field + ": " + quote(arg) + " " + why));
      }
    }
    match(
        v,
        "spec.overlay",
        spec.overlay(),
        OVERLAY,
        "is not tmpfs, none or a block device path under /dev/");
    match(
        v,
        "spec.bootTimeout",
        spec.bootTimeout(),
        DURATION,
        "is not a duration such as 90s, 5m or 1h30m");
    List<String> devices = spec.devicesOrEmpty();
    if (devices.size() > 32) {
      v.add("spec.devices: " + devices.size() + " devices; at most 32");
    }
    for (int i = 0; i < devices.size() && i < 32; i++) {
      match(
          v,
          "spec.devices[" + i + "]",
          devices.get(i),
          DEVICE,
          "is not a device path below /dev/ (no . or .. components, at most 4 levels)");
    }
    ReturnTriggers triggers = spec.returnTriggers();
    if (triggers != null && triggers.serial() != null) {
      SerialTrigger serial = triggers.serial();
      match(
          v,
          "spec.returnTriggers.serial.device",
          serial.device(),
          TTY,
          "is not a serial device name such as ttyS1");
      match(
          v,
          "spec.returnTriggers.serial.magic",
          serial.magic(),
          MAGIC,
          "is not 4 to 64 of letters, digits and _ : . -");
    }
    return v;
  }

  /**
   * Why a kernel argument may not come from a spec, or empty when it may. Checked by the reconciler
   * and again when the iPXE script is rendered.
   */
  public static Optional<String> reserved(String arg) {
    String key = arg.split("=", 2)[0];
    if (!key.equals(key.toLowerCase(Locale.ROOT))) {
      return Optional.of(
          "has upper case in its key: the kernel hands such NAME=value words to the bootstrap's"
              + " environment; kernel parameters are lower case");
    }
    boolean isReserved =
        RESERVED.stream()
            .anyMatch(r -> r.endsWith(".") || r.endsWith("_") ? key.startsWith(r) : key.equals(r));
    return isReserved
        ? Optional.of(
            "sets a reserved argument; init=, rdinit=, initrd=, bootif=, cb.* and cb_* are set by"
                + " the operator and the bootstrap")
        : Optional.empty();
  }
}
