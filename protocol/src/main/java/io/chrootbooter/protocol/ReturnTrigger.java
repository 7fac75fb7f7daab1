package io.chrootbooter.protocol;

import java.util.Optional;

/**
 * What asked the agent to return to the bootstrap: {@link LastReturn#trigger()}. The report carries
 * it as a string, so that an operator older than its agents records a trigger it does not know as
 * {@code Other} instead of refusing the whole report; {@link #fromName} reads it.
 */
public enum ReturnTrigger {
  /** The desired state changed (operator stream). */
  SpecChange,
  /** Ctrl+Alt+F12 on a local keyboard. */
  Hotkey,
  /** The magic string on the serial port. */
  Serial,
  /** {@code /.bootstrap-return} inside the target. */
  Helper,
  /** {@code return} or {@code load} typed at the bootstrap console. */
  Console,
  /** The target did not report healthy within {@code bootTimeout}. */
  BootTimeout,
  /** The target's init exited on its own (power-off, reboot or crash inside the target). */
  TargetExit,
  /**
   * A block of the running {@code Lazy} image failed its dm-verity check: the agent reports {@link
   * MachinePhase#Failed} with an error that begins with this name.
   */
  VerityMismatch;

  /**
   * Whether a return by this trigger overrides the spec: the agent then stays in {@link
   * MachinePhase#ConsoleOverride} until the spec's generation changes or a human types {@code load}
   * or {@code resume}.
   */
  public boolean overridesSpec() {
    return this == Hotkey || this == Serial || this == Helper || this == Console;
  }

  /** The trigger of this name, as sent in a report; empty for a name this side does not know. */
  public static Optional<ReturnTrigger> fromName(String name) {
    for (ReturnTrigger trigger : values()) {
      if (trigger.name().equals(name)) {
        return Optional.of(trigger);
      }
    }
    return Optional.empty();
  }
}
