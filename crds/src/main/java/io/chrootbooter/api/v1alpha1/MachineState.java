package io.chrootbooter.api.v1alpha1;

/** A state a machine can be held in instead of running an image. */
public enum MachineState {
  /** Stay in the bootstrap, ready for the next image. */
  Bootstrap
}
