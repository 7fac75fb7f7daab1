package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** The most recent return to the bootstrap. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record LastReturn(
    @JsonPropertyDescription(
            "What caused it: SpecChange, Hotkey, Serial, Helper, BootTimeout,"
                + " TargetExited or Console.")
        String trigger,
    @JsonPropertyDescription("A human-readable reason.") String reason,
    @JsonPropertyDescription("When the return started (RFC 3339).") String time,
    @JsonPropertyDescription("How long from trigger to bootstrap ready, in milliseconds.")
        Long durationMillis,
    @JsonPropertyDescription(
            "True when the target did not power off within its grace period and was killed;"
                + " false when it powered off on the graceful signal or ended by itself.")
        Boolean forced) {}
