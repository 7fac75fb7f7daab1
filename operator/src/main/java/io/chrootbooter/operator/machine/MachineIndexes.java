package io.chrootbooter.operator.machine;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The two indexes over MachineBoots, defined once for both caches that keep them (the reconciler's
 * primary cache and {@link MachineDirectory}'s informer): by boot MAC (normalised) and by the
 * BootImage the machine runs ({@code namespace/name}).
 */
final class MachineIndexes {
  static final String BY_MAC = "byMac";
  static final String BY_IMAGE = "byImage";

  private MachineIndexes() {}

  /** The index key of the BootImage {@code name} in {@code namespace}. */
  static String imageKey(String namespace, String name) {
    return namespace + "/" + name;
  }

  static List<String> byMac(MachineBoot mb) {
    return mb.getSpec() == null
        ? List.of()
        : MacAddress.normalize(mb.getSpec().macAddress()).stream().toList();
  }

  static List<String> byImage(MachineBoot mb) {
    return MachineDirectory.imageRef(mb).stream()
        .map(ref -> imageKey(mb.getMetadata().getNamespace(), ref))
        .toList();
  }

  /** Both indexes, by name. */
  static Map<String, Function<MachineBoot, List<String>>> all() {
    return Map.of(BY_MAC, MachineIndexes::byMac, BY_IMAGE, MachineIndexes::byImage);
  }
}
