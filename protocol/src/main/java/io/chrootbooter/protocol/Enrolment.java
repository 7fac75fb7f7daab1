package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * The body of {@code POST /agent/v1/machines/{mac}/enroll}: the one-time nonce of the machine's
 * iPXE script ({@code cb.nonce=}) and the kernel's boot id, exchanged for a {@link Session}.
 *
 * @param nonce the value of {@code cb.nonce=}
 * @param bootId {@code /proc/sys/kernel/random/boot_id}
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Enrolment(
    @JsonPropertyDescription("The one-time boot nonce of the machine's iPXE script.") String nonce,
    @JsonPropertyDescription("The kernel's boot id (/proc/sys/kernel/random/boot_id).")
        String bootId) {

  /** Never the nonce: a record's default toString would print it. */
  @Override
  public String toString() {
    return "Enrolment[bootId=" + bootId + "]";
  }
}
