package io.chrootbooter.operator.machine;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import java.util.Collection;
import java.util.Comparator;
import java.util.Optional;

/**
 * Who owns a MAC address when several MachineBoots name it: the oldest, then the first by namespace
 * and name. The reconciler marks the others {@code DuplicateMacAddress}; the iPXE endpoint serves
 * the owner's script. One rule, used by both.
 */
public final class MacOwners {
  private static final Comparator<MachineBoot> OLDEST_FIRST =
      Comparator.comparing(
              (MachineBoot mb) ->
                  mb.getMetadata().getCreationTimestamp() == null
                      ? ""
                      : mb.getMetadata().getCreationTimestamp())
          .thenComparing(mb -> mb.getMetadata().getNamespace())
          .thenComparing(mb -> mb.getMetadata().getName());

  private MacOwners() {}

  /** The owner among the MachineBoots that claim one MAC. */
  public static Optional<MachineBoot> owner(Collection<MachineBoot> claimants) {
    return claimants.stream().min(OLDEST_FIRST);
  }
}
