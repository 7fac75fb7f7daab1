package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * A machine's session credential, the answer to an enrolment and to a renewal ({@code POST
 * /agent/v1/machines/{mac}/session}): sent as {@code Authorization: Bearer <session>} to the agent
 * API and to the operator's {@code /images/}.
 *
 * @param session the bearer credential
 * @param expiresAt when it expires (RFC 3339); renew it before then
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Session(
    @JsonPropertyDescription("The bearer credential of this boot of the machine.") String session,
    @JsonPropertyDescription("When it expires (RFC 3339); renew it before then.")
        String expiresAt) {

  /** Never the credential: a record's default toString would print it. */
  @Override
  public String toString() {
    return "Session[expiresAt=" + expiresAt + "]";
  }
}
