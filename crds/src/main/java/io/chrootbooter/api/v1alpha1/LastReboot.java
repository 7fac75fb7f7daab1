package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * The most recent real reboot of a machine, seen as a new kernel boot id in its agent's report
 * while the status showed it Running (or its agent lost): MachineBoot {@code status.lastReboot}.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record LastReboot(
    @JsonPropertyDescription(
            "When the operator received the first report of the new boot (RFC 3339, UTC).")
        String time,
    @JsonPropertyDescription("The kernel boot id of the boot that ended.") String previousBootId,
    @JsonPropertyDescription("The BootImage the boot that ended ran; absent in the bootstrap.")
        String previousImage,
    @JsonPropertyDescription(
            "How long the boot that ended ran its image: from its first Running report to the last"
                + " time its agent was heard from (seconds precision).")
        String ranFor,
    @JsonPropertyDescription(
            "Whether the operator served this machine's iPXE script between the last time the"
                + " ended boot's agent was heard from and the new boot's first report: true when the"
                + " machine network-booted again (a power cycle, a reset or a reboot through its"
                + " firmware). The operator itself never reboots a machine and knows of no power"
                + " cycle, so this says how the machine came back, not who caused it.")
        Boolean ipxeFetched) {}
