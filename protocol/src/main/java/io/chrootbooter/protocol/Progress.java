package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * How far a download has come: an agent's, in a {@link StatusReport} and MachineBoot {@code
 * status.progress}; the operator's mirror, in BootImage {@code status.progress}.
 *
 * @param bytes bytes received so far
 * @param total the announced length; null when the server announced none
 * @param bytesPerSecond the current rate
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Progress(
    @JsonPropertyDescription("Bytes received so far.") Long bytes,
    @JsonPropertyDescription("Total bytes, when the server announced a length.") Long total,
    @JsonPropertyDescription("Current transfer rate in bytes per second.") Long bytesPerSecond) {}
