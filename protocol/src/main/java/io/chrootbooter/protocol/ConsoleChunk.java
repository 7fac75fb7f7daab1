package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.List;

/**
 * A piece of a boot's recorded console, posted by the agent ({@code POST
 * /agent/v1/machines/{mac}/console}): what the target wrote to its consoles and the kernel logged
 * while it ran, from byte {@code offset} of that boot's log on, and the kernel warnings recorded
 * from number {@code firstWarning} on. Offsets and warning numbers make a resent chunk harmless.
 *
 * @param boot names the boot: the kernel's boot id, the agent's PID and the target boot's number
 * @param image what runs (its URL)
 * @param started when the boot's log started (RFC 3339)
 * @param offset where {@code data} starts in the boot's log; past the last byte sent when the
 *     agent's ring lost bytes in between
 * @param data the bytes, base64
 * @param firstWarning the number of the first warning in {@code warnings} (0 for the first)
 * @param warnings kernel warnings (the first line of each)
 * @param ended whether the target is gone (nothing follows)
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ConsoleChunk(
    @JsonPropertyDescription("The boot: kernel boot id, agent PID, target boot number.")
        String boot,
    @JsonPropertyDescription("The image that runs (its URL).") String image,
    @JsonPropertyDescription("When the boot's log started (RFC 3339).") String started,
    @JsonPropertyDescription("Where data starts in the boot's log.") long offset,
    @JsonPropertyDescription("The bytes, base64.") String data,
    @JsonPropertyDescription("The number of the first warning in warnings.") int firstWarning,
    @JsonPropertyDescription("Kernel warnings, the first line of each.") List<String> warnings,
    @JsonPropertyDescription("Whether the target is gone.") boolean ended) {
  public ConsoleChunk {
    warnings = warnings == null ? List.of() : List.copyOf(warnings);
  }
}
