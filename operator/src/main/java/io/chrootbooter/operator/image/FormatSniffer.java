package io.chrootbooter.operator.image;

import io.chrootbooter.api.v1alpha1.ImageFormat;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Optional;

/**
 * Tells an image's container format from its first bytes: squashfs {@code hsqs} (little-endian
 * magic, squashfs-tools {@code squashfs_fs.h}), gzip {@code 1f 8b} (RFC 1952 §2.3.1), xz {@code FD
 * 37 7A 58 5A 00} (xz file format §2.1.1.1), zstd {@code 28 B5 2F FD} (RFC 8878 §3.1.1), and a
 * ustar header's {@code ustar} at offset 257 (POSIX pax format).
 */
public final class FormatSniffer {
  /** Bytes needed to tell every format apart. */
  public static final int HEAD_BYTES = 512;

  private FormatSniffer() {}

  /** The format of an image that starts with {@code head}, if recognised. */
  public static Optional<ImageFormat> sniff(byte[] head) {
    if (startsWith(head, 'h', 's', 'q', 's')) {
      return Optional.of(ImageFormat.SQUASHFS);
    }
    if (startsWith(head, 0x1f, 0x8b)) {
      return Optional.of(ImageFormat.TAR_GZ);
    }
    if (startsWith(head, 0xfd, '7', 'z', 'X', 'Z', 0x00)) {
      return Optional.of(ImageFormat.TAR_XZ);
    }
    if (startsWith(head, 0x28, 0xb5, 0x2f, 0xfd)) {
      return Optional.of(ImageFormat.TAR_ZST);
    }
    if (head.length >= 262
        && new String(Arrays.copyOfRange(head, 257, 262), StandardCharsets.US_ASCII)
            .equals("ustar")) {
      return Optional.of(ImageFormat.TAR);
    }
    return Optional.empty();
  }

  private static boolean startsWith(byte[] head, int... magic) {
    if (head.length < magic.length) {
      return false;
    }
    for (int i = 0; i < magic.length; i++) {
      if ((head[i] & 0xff) != magic[i]) {
        return false;
      }
    }
    return true;
  }
}
