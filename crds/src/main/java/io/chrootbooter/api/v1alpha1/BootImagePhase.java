package io.chrootbooter.api.v1alpha1;

/** The lifecycle of a {@link BootImage}. */
public enum BootImagePhase {
  Pending,
  Downloading,
  Ready,
  Failed
}
