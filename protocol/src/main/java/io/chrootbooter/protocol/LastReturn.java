package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * The most recent return to the bootstrap: in a {@link StatusReport} and MachineBoot {@code
 * status.lastReturn}.
 *
 * @param trigger a {@link ReturnTrigger}'s name, as a string (see there why)
 * @param reason free text from the trigger
 * @param time when the trigger fired, RFC 3339
 * @param durationMillis trigger to bootstrap ready
 * @param forced whether the target had to be killed after its grace period
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record LastReturn(
    @JsonPropertyDescription(
            "What caused it: SpecChange, Hotkey, Serial, Helper, Console, BootTimeout,"
                + " TargetExit or VerityMismatch.")
        String trigger,
    @JsonPropertyDescription("A human-readable reason.") String reason,
    @JsonPropertyDescription("When the return started (RFC 3339).") String time,
    @JsonPropertyDescription("How long from trigger to bootstrap ready, in milliseconds.")
        Long durationMillis,
    @JsonPropertyDescription(
            "True when the target did not power off within its grace period and was killed;"
                + " false when it powered off on the graceful signal or ended by itself.")
        Boolean forced) {}
