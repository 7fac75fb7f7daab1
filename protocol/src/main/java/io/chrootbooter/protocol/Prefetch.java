package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * How much of a running {@code Lazy} image is on the machine: in a {@link StatusReport} and
 * MachineBoot {@code status.prefetch}, while the image runs. The agent reports it at most every two
 * seconds while it changes.
 *
 * @param bytesLocal bytes of the image held by the machine (RAM or its cache disk)
 * @param total the image's size in bytes
 * @param fullyLocal true once every block is local: the image no longer needs the network
 * @param error why blocks could not be fetched lately (the network is gone, say); null while
 *     fetching works
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Prefetch(
    @JsonPropertyDescription("Bytes of the image held by the machine (RAM or its cache disk).")
        Long bytesLocal,
    @JsonPropertyDescription("The image's size in bytes.") Long total,
    @JsonPropertyDescription(
            "True once every block of the image is local: it no longer needs the network.")
        Boolean fullyLocal,
    @JsonPropertyDescription(
            "Why blocks could not be fetched lately (the network is gone, say): reads of blocks"
                + " that are not local fail until the operator is reachable again. Absent while"
                + " fetching works.")
        String error) {}
