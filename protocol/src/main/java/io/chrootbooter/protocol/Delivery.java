package io.chrootbooter.protocol;

/** How a machine gets an image's bytes before it boots it. */
public enum Delivery {
  /** The whole image is downloaded and its SHA-256 checked before it is mounted. The default. */
  Download,
  /**
   * Squashfs only: the image is attached as a read-only block device whose blocks are fetched from
   * the operator on first read, each checked by the kernel's dm-verity against the hash tree whose
   * root hash the desired state carries ({@link Verity}); the target starts before the download
   * ends.
   */
  Lazy;

  /** The delivery of an image whose BootImage names none. */
  public static final Delivery DEFAULT = Download;
}
