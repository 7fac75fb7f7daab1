package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Optional;

/** The container format of a {@link BootImage}. */
public enum ImageFormat {
  @JsonProperty("squashfs")
  SQUASHFS("squashfs", ".squashfs", ".sqfs", ".sfs"),
  @JsonProperty("tar")
  TAR("tar", ".tar"),
  @JsonProperty("tar.gz")
  TAR_GZ("tar.gz", ".tar.gz", ".tgz"),
  @JsonProperty("tar.xz")
  TAR_XZ("tar.xz", ".tar.xz", ".txz"),
  @JsonProperty("tar.zst")
  TAR_ZST("tar.zst", ".tar.zst", ".tzst", ".tar.zstd");

  private final String value;
  private final String[] suffixes;

  ImageFormat(String value, String... suffixes) {
    this.value = value;
    this.suffixes = suffixes;
  }

  /** The name used in the spec, such as {@code tar.gz}. */
  public String value() {
    return value;
  }

  /** Whether the image is a tarball that is extracted rather than mounted. */
  public boolean isTar() {
    return this != SQUASHFS;
  }

  /** The format named by the end of a URL's path, ignoring query and fragment. */
  public static Optional<ImageFormat> fromUrl(String url) {
    String path = url.replaceFirst("[?#].*$", "").toLowerCase(java.util.Locale.ROOT);
    // Longest suffix first: ".tar.gz" must win over ".gz"-less ".tar" checks.
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

  /** The format with the given spec name. */
  public static Optional<ImageFormat> fromValue(String value) {
    for (ImageFormat format : values()) {
      if (format.value.equals(value)) {
        return Optional.of(format);
      }
    }
    return Optional.empty();
  }

  @Override
  public String toString() {
    return value;
  }
}
