package io.chrootbooter.agent.pivot;

import io.chrootbooter.protocol.ReturnTrigger;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;

/**
 * One return to the bootstrap, as reported in {@code status.lastReturn}.
 *
 * @param trigger what asked for it
 * @param reason free text from the trigger (the helper's argument, the console command), never null
 * @param time when the trigger fired
 * @param duration trigger to bootstrap ready (target gone, mounts torn down)
 * @param forced whether the target had to be killed after the grace period
 * @param initExit how the target's init ended, e.g. {@code signal 9 (SIGKILL)} or {@code exit 0}
 */
public record LastReturn(
    ReturnTrigger trigger,
    String reason,
    Instant time,
    Duration duration,
    boolean forced,
    String initExit) {
  public LastReturn {
    Objects.requireNonNull(trigger, "trigger");
    Objects.requireNonNull(time, "time");
    Objects.requireNonNull(duration, "duration");
    reason = reason == null ? "" : reason;
    initExit = initExit == null ? "" : initExit;
  }
}
