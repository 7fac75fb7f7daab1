package io.chrootbooter.protocol;

/**
 * Whose kernel modules and firmware a target sees under {@code /lib/modules/<running version>} and
 * {@code /lib/firmware}. A target runs on the bootstrap's kernel, so the modules an image ships for
 * its own kernel do not load.
 */
public enum KernelModules {
  /**
   * The bootstrap kernel's complete module tree and the firmware Debian ships for it, from the
   * bootstrap's modules image, bound read-only into the target; an image that has its own {@code
   * /lib/modules/<running version>} keeps it, and the image's own firmware files win over the
   * bootstrap's. The default.
   */
  Bootstrap,
  /** Only what the image itself ships. */
  Image,
  /** No module tree at all: nothing is bound, whatever the image has stays as it is. */
  None;

  /** The mode of an image whose BootImage names none. */
  public static final KernelModules DEFAULT = Bootstrap;
}
