package io.chrootbooter.agent.unpack;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The image formats the agent accepts, by the name used in the BootImage spec and the CLI. */
public enum ImageFormat {
  TAR("tar"),
  TAR_GZ("tar.gz"),
  TAR_XZ("tar.xz"),
  TAR_ZST("tar.zst"),
  SQUASHFS("squashfs");

  /** Bytes needed by {@link #sniff}: the ustar magic sits at offset 257. */
  public static final int SNIFF_BYTES = 263;

  private final String id;

  ImageFormat(String id) {
    this.id = id;
  }

  /** The spec/CLI name, e.g. {@code tar.zst}. */
  public String id() {
    return id;
  }

  /** True for the formats extracted as a tar stream. */
  public boolean isTar() {
    return this != SQUASHFS;
  }

  /** Parses a spec/CLI name; the error lists the accepted names. */
  public static ImageFormat fromId(String id) {
    for (ImageFormat format : values()) {
      if (format.id.equals(id)) {
        return format;
      }
    }
    throw new IllegalArgumentException(
        "format \""
            + id
            + "\" is not one of "
            + Arrays.stream(values()).map(ImageFormat::id).collect(Collectors.joining(", ")));
  }

  /**
   * Recognizes the format from the first bytes of an image, by magic number: gzip {@code 1f 8b}
   * (RFC 1952 §2.3.1), xz {@code fd 37 7a 58 5a 00} (xz file format §2.1.1.1), zstd frame {@code 28
   * b5 2f fd} (RFC 8878 §3.1.1), squashfs {@code hsqs} (little-endian superblock), and {@code
   * ustar} at offset 257 for tar (POSIX pax, ustar header).
   *
   * @param head the first bytes; {@code length} of them are valid
   * @return the format, or {@code null} when none matches
   */
  public static ImageFormat sniff(byte[] head, int length) {
    if (startsWith(head, length, 0x1f, 0x8b)) {
      return TAR_GZ;
    }
    if (startsWith(head, length, 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) {
      return TAR_XZ;
    }
    if (startsWith(head, length, 0x28, 0xb5, 0x2f, 0xfd)) {
      return TAR_ZST;
    }
    if (startsWith(head, length, 'h', 's', 'q', 's')) {
      return SQUASHFS;
    }
    if (length >= 262
        && head[257] == 'u'
        && head[258] == 's'
        && head[259] == 't'
        && head[260] == 'a'
        && head[261] == 'r') {
      return TAR;
    }
    return null;
  }

  /** A human description of the first bytes, for "is not a tar.gz" errors. */
  public static String describe(byte[] head, int length) {
    StringBuilder hex = new StringBuilder();
    for (int i = 0; i < Math.min(length, 8); i++) {
      hex.append(String.format("%02x", head[i] & 0xff));
    }
    return length == 0 ? "an empty file" : "first bytes " + hex;
  }

  private static boolean startsWith(byte[] head, int length, int... magic) {
    if (length < magic.length) {
      return false;
    }
    for (int i = 0; i < magic.length; i++) {
      if ((head[i] & 0xff) != magic[i]) {
        return false;
      }
    }
    return true;
  }

  @Override
  public String toString() {
    return id;
  }
}
