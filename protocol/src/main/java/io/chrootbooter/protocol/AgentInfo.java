package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * The node agent that reports: in a {@link StatusReport} and MachineBoot {@code status.agent}.
 *
 * @param version the agent's version
 * @param bootId the kernel's boot id
 * @param ip the machine's IP address
 * @param kernel the running kernel release
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record AgentInfo(
    @JsonPropertyDescription("The agent's version.") String version,
    @JsonPropertyDescription("The kernel's boot id: it changes on every real reboot.")
        String bootId,
    @JsonPropertyDescription("The machine's IP address.") String ip,
    @JsonPropertyDescription("The running kernel release.") String kernel,
    @JsonPropertyDescription(
            "The JIT mode of the agent's JVM and why: tiered (C1 then C2) on real hardware and"
                + " KVM, c1 (C1 only) under QEMU's TCG, or as the kernel argument cb.jit= says.")
        String jit) {}
