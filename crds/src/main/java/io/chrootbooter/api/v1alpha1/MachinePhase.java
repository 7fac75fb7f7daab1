package io.chrootbooter.api.v1alpha1;

/** Where a machine is in its boot cycle. */
public enum MachinePhase {
  /** No agent has reported yet. */
  Pending,
  /** The machine fetched its iPXE script and is loading the bootstrap. */
  PXEBooting,
  /** The agent is in the bootstrap, idle. */
  Bootstrap,
  Downloading,
  Verifying,
  Mounting,
  /** The image's init is running. */
  Running,
  /** The target is being stopped and torn down. */
  Returning,
  /** A human at the console returned the machine; the spec is not applied until it changes. */
  ConsoleOverride,
  Failed
}
