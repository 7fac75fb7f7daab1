package io.chrootbooter.agent.pivot;

/**
 * The agent's phase as MachineBoot {@code status.phase} names it (DESIGN.md §2), written to {@code
 * current_phase}.
 */
public enum Phase {
  Bootstrap,
  Downloading,
  Verifying,
  Mounting,
  Running,
  Returning,
  ConsoleOverride,
  Failed
}
