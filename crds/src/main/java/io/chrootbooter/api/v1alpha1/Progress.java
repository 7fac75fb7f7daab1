package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** How far a download has come. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Progress(
    @JsonPropertyDescription("Bytes received so far.") Long bytes,
    @JsonPropertyDescription("Total bytes, when the server announced a length.") Long total,
    @JsonPropertyDescription("Current transfer rate in bytes per second.") Long bytesPerSecond) {}
