package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * The container format of a boot image, by the name used in BootImage {@code spec.format}, in a
 * desired state's {@code image.format}, on the agent's command line and at its console.
 */
public enum ImageFormat {
  /** A squashfs filesystem, loop-mounted. {@code .img} is how the agent's console names one. */
  @JsonProperty("squashfs")
  SQUASHFS("squashfs", ".squashfs", ".sqfs", ".sfs", ".img"),
  /** An uncompressed tarball, extracted while downloading. */
  @JsonProperty("tar")
  TAR("tar", ".tar"),
  /** A gzip-compressed tarball. */
  @JsonProperty("tar.gz")
  TAR_GZ("tar.gz", ".tar.gz", ".tgz"),
  /** An xz-compressed tarball. */
  @JsonProperty("tar.xz")
  TAR_XZ("tar.xz", ".tar.xz", ".txz"),
  /** A zstd-compressed tarball. */
  @JsonProperty("tar.zst")
  TAR_ZST("tar.zst", ".tar.zst", ".tzst", ".tar.zstd");

  /** Bytes {@link #sniff} needs to tell every format apart: the ustar magic ends at offset 262. */
  public static final int SNIFF_BYTES = 263;

  private final String value;
  private final List<String> suffixes;

  ImageFormat(String value, String... suffixes) {
    this.value = value;
    this.suffixes = List.of(suffixes);
  }

  /** The name, such as {@code tar.gz}. */
  public String value() {
    return value;
  }

  /**
   * The endings of a URL's path that name this format, such as {@code .tar.gz} and {@code .tgz}.
   */
  public List<String> suffixes() {
    return suffixes;
  }

  /** Whether the image is a tarball that is extracted rather than mounted. */
  public boolean isTar() {
    return this != SQUASHFS;
  }

  /** The format with this name. */
  public static Optional<ImageFormat> fromValue(String value) {
    for (ImageFormat format : values()) {
      if (format.value.equals(value)) {
        return Optional.of(format);
      }
    }
    return Optional.empty();
  }

  /**
   * The format with this name.
   *
   * @throws IllegalArgumentException naming the value and the accepted names
   */
  public static ImageFormat parse(String value) {
    return fromValue(value)
        .orElseThrow(
            () ->
                new IllegalArgumentException(
                    "format " + quote(value) + " is not one of " + names(", ")));
  }

  /** Every name, joined: {@code squashfs, tar, tar.gz, tar.xz, tar.zst}. */
  public static String names(String separator) {
    return Arrays.stream(values()).map(ImageFormat::value).collect(Collectors.joining(separator));
  }

  /** Every URL ending that names a format, for messages: {@code .squashfs, .sqfs, …}. */
  public static String allSuffixes() {
    return Arrays.stream(values())
        .flatMap(f -> f.suffixes.stream())
        .collect(Collectors.joining(", "));
  }

  /**
   * The format named by the end of a URL's path, ignoring query, fragment and case; the longest
   * matching ending wins ({@code .tar.gz} over {@code .tar}).
   */
  public static Optional<ImageFormat> fromUrl(String url) {
    String path = url.replaceFirst("[?#].*$", "").toLowerCase(Locale.ROOT);
    ImageFormat best = null;
    int bestLength = 0;
    for (ImageFormat format : values()) {
      for (String suffix : format.suffixes) {
        if (path.endsWith(suffix) && suffix.length() > bestLength) {
          best = format;
          bestLength = suffix.length();
        }
      }
    }
    return Optional.ofNullable(best);
  }

  /**
   * Recognizes the format from the first bytes of an image, by magic number: gzip {@code 1f 8b}
   * (RFC 1952 §2.3.1), xz {@code fd 37 7a 58 5a 00} (xz file format §2.1.1.1), zstd frame {@code 28
   * b5 2f fd} (RFC 8878 §3.1.1), squashfs {@code hsqs} (the little-endian superblock magic,
   * squashfs-tools {@code squashfs_fs.h}), and {@code ustar} at offset 257 for tar (POSIX pax,
   * ustar header). A compressed tarball is recognized by its compressor.
   *
   * @param head the first bytes; {@code length} of them are valid ({@link #SNIFF_BYTES} suffice)
   * @return the format, empty when none matches
   */
  public static Optional<ImageFormat> sniff(byte[] head, int length) {
    int n = Math.min(length, head.length);
    if (startsWith(head, n, 0x1f, 0x8b)) {
      return Optional.of(TAR_GZ);
    }
    if (startsWith(head, n, 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) {
      return Optional.of(TAR_XZ);
    }
    if (startsWith(head, n, 0x28, 0xb5, 0x2f, 0xfd)) {
      return Optional.of(TAR_ZST);
    }
    if (startsWith(head, n, 'h', 's', 'q', 's')) {
      return Optional.of(SQUASHFS);
    }
    if (n >= 262
        && head[257] == 'u'
        && head[258] == 's'
        && head[259] == 't'
        && head[260] == 'a'
        && head[261] == 'r') {
      return Optional.of(TAR);
    }
    return Optional.empty();
  }

  /** Bytes {@link #isTarHeader} needs: one tar header block. */
  public static final int TAR_HEADER_BYTES = 512;

  /**
   * {@link #sniff(byte[], int)}, and when that finds nothing but the caller declares {@code tar},
   * also a pre-POSIX (V7) tar, which has no magic: its first block must be a tar header with a
   * right checksum ({@link #isTarHeader}). Needs {@link #TAR_HEADER_BYTES}.
   */
  public static Optional<ImageFormat> sniff(byte[] head, int length, ImageFormat declared) {
    Optional<ImageFormat> found = sniff(head, length);
    if (found.isEmpty() && declared == TAR && isTarHeader(head, length)) {
      return Optional.of(TAR);
    }
    return found;
  }

  /**
   * Whether the first 512 bytes are a tar header: not all zero, and the checksum field (octal, as
   * GNU tar reads it) equals the unsigned or the signed sum of the block's bytes with the field
   * counted as blanks (POSIX pax, ustar header; GNU tar {@code tar_checksum}).
   */
  public static boolean isTarHeader(byte[] head, int length) {
    if (Math.min(length, head.length) < TAR_HEADER_BYTES) {
      return false;
    }
    long unsigned = 0;
    long signed = 0;
    for (int i = 0; i < TAR_HEADER_BYTES; i++) {
      byte b = i >= 148 && i < 156 ? (byte) ' ' : head[i];
      unsigned += b & 0xff;
      signed += b;
    }
    if (unsigned == 8 * ' ' && allZeroOutsideChecksum(head)) {
      return false;
    }
    int i = 148;
    int lim = 156;
    if (head[i] == 0) {
      i++;
    }
    while (i < lim && head[i] == ' ') {
      i++;
    }
    if (i == lim || head[i] < '0' || head[i] > '7') {
      return false;
    }
    long recorded = 0;
    while (i < lim && head[i] >= '0' && head[i] <= '7') {
      recorded = recorded * 8 + (head[i] - '0');
      i++;
    }
    if (i < lim && head[i] != 0 && head[i] != ' ') {
      return false;
    }
    return recorded == unsigned || recorded == signed;
  }

  private static boolean allZeroOutsideChecksum(byte[] head) {
    for (int i = 0; i < TAR_HEADER_BYTES; i++) {
      if ((i < 148 || i >= 156) && head[i] != 0) {
        return false;
      }
    }
    return true;
  }

  /** {@link #sniff(byte[], int)} over all of {@code head}. */
  public static Optional<ImageFormat> sniff(byte[] head) {
    return sniff(head, head.length);
  }

  /** The first bytes for a "not a tar.gz" message: {@code first bytes 1f8b0800…}. */
  public static String describe(byte[] head, int length) {
    StringBuilder hex = new StringBuilder();
    for (int i = 0; i < Math.min(Math.min(length, head.length), 8); i++) {
      hex.append(String.format("%02x", head[i] & 0xff));
    }
    return length <= 0 ? "an empty file" : "first bytes " + hex;
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

  private static String quote(String value) {
    if (value == null) {
      return "null";
    }
    String shown = value.length() > 80 ? value.substring(0, 80) + "..." : value;
    return "\"" + shown.replaceAll("[^\\x20-\\x7e]", "?") + "\"";
  }

  @Override
  public String toString() {
    return value;
  }
}
