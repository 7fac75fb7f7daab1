package io.chrootbooter.protocol;

/** What the operator asks a machine to do: {@code action} of a {@link DesiredState}. */
public enum Action {
  /** Boot the image of {@link DesiredState#image()}, returning whatever runs now. */
  Run,
  /** Go to the bootstrap and wait there. */
  Bootstrap,
  /**
   * Keep doing what the machine does: the operator has nothing to apply for this generation (the
   * spec is invalid, or its image is not ready yet); {@link DesiredState#reason()} says which.
   */
  Hold
}
