package io.chrootbooter.protocol;

/**
 * Where a machine is in its boot cycle: MachineBoot {@code status.phase}, and {@code phase} of a
 * {@link StatusReport}. The operator alone sets {@link #Pending} and {@link #PXEBooting}; the agent
 * reports the others.
 */
public enum MachinePhase {
  /** No agent has reported yet. */
  Pending,
  /** The machine fetched its iPXE script and is loading the bootstrap. */
  PXEBooting,
  /** The agent is in the bootstrap, idle. */
  Bootstrap,
  /** The agent is fetching the image. */
  Downloading,
  /** The agent is checking the image's digest. */
  Verifying,
  /** The agent is mounting or unpacking the image. */
  Mounting,
  /** The image's init is running. */
  Running,
  /** The target is being stopped and torn down. */
  Returning,
  /** A human at the console returned the machine; the spec is not applied until it changes. */
  ConsoleOverride,
  /** The last load failed; {@link StatusReport#error()} says why. */
  Failed
}
