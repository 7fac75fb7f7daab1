package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.Progress;
import io.chrootbooter.protocol.Verity;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/** The observed state of a {@link BootImage}. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record BootImageStatus(
    @JsonPropertyDescription("Pending, Downloading, Ready or Failed.") BootImagePhase phase,
    @JsonPropertyDescription("The effective format: spec.format, or the one inferred from the URL.")
        ImageFormat format,
    @JsonPropertyDescription("The size of the image in bytes, once mirrored.") Long size,
    @JsonPropertyDescription("The SHA-256 measured while mirroring.") String sha256,
    @JsonPropertyDescription("The URL machines fetch the image from: the operator's image store.")
        String servedUrl,
    @JsonPropertyDescription("Download progress while the phase is Downloading.") Progress progress,
    @JsonPropertyDescription(
            "kstatus conditions: Ready, Reconciling (work in progress) and Stalled (needs a"
                + " change of the spec).")
        List<Condition> conditions,
    @JsonPropertyDescription("The metadata.generation this status describes.")
        Long observedGeneration,
    @JsonPropertyDescription(
            "The dm-verity hash tree computed over a mirrored squashfs image (veritysetup's"
                + " format: SHA-256, 4 KiB blocks, a salt, a superblock), served beside it;"
                + " what delivery Lazy checks every block against.")
        Verity verity) {

  public BootImageStatus {
    conditions = conditions == null ? List.of() : List.copyOf(conditions);
  }

  /** A status without a hash tree. */
  public BootImageStatus(
      BootImagePhase phase,
      ImageFormat format,
      Long size,
      String sha256,
      String servedUrl,
      Progress progress,
      List<Condition> conditions,
      Long observedGeneration) {
    this(phase, format, size, sha256, servedUrl, progress, conditions, observedGeneration, null);
  }
}
