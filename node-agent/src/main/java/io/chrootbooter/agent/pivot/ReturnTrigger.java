package io.chrootbooter.agent.pivot;

/** What asked the agent to return to the bootstrap; {@code lastReturn.trigger} in the status. */
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
  TargetExit;

  /**
   * Whether a return by this trigger overrides the spec: the agent then stays in {@link
   * Phase#ConsoleOverride} until the spec's generation changes or a human types {@code load} or
   * {@code resume} (DESIGN.md §2).
   */
  public boolean overridesSpec() {
    return this == Hotkey || this == Serial || this == Helper || this == Console;
  }
}
