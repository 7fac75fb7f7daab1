package io.chrootbooter.agent.pivot;

import java.nio.file.Path;
import java.util.Objects;
import java.util.OptionalLong;

/**
 * Where the agent keeps what pivoting needs; one per agent.
 *
 * @param busybox the bootstrap's static busybox: {@code unshare}, {@code sh}, {@code mount}, {@code
 *     pivot_root} and {@code umount} all come from it, so the step needs nothing from the image
 * @param cgroupParent a cgroup2 directory under which each target gets its own cgroup
 * @param staging a directory outside every target root for the helper's FIFO and script
 * @param state the state files
 * @param pidsMax {@code pids.max} of a target's cgroup, empty for none
 * @param memoryMax {@code memory.max} in bytes, empty for none
 */
public record PivotConfig(
    Path busybox,
    Path cgroupParent,
    Path staging,
    StateFiles state,
    OptionalLong pidsMax,
    OptionalLong memoryMax) {
  public PivotConfig {
    Objects.requireNonNull(busybox, "busybox");
    Objects.requireNonNull(cgroupParent, "cgroupParent");
    Objects.requireNonNull(staging, "staging");
    Objects.requireNonNull(state, "state");
    pidsMax = pidsMax == null ? OptionalLong.empty() : pidsMax;
    memoryMax = memoryMax == null ? OptionalLong.empty() : memoryMax;
  }
}
