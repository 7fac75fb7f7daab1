package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonProperty;

/** The CPU architecture an image is built for, in Debian/Go notation. */
public enum Architecture {
  @JsonProperty("amd64")
  AMD64,
  @JsonProperty("arm64")
  ARM64
}
