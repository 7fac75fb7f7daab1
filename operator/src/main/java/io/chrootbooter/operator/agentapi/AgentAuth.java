package io.chrootbooter.operator.agentapi;

import io.chrootbooter.operator.token.MachineTokens;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.Response;
import java.util.regex.Pattern;

/**
 * Checks {@code Authorization: Bearer <token>} against the machine a request names. Missing or
 * garbled → 401; a valid token of another machine → 403. Tokens never appear in a response, a log
 * line or a metric.
 */
@ApplicationScoped
public class AgentAuth {
  private static final Pattern BEARER = Pattern.compile("^Bearer ([A-Za-z0-9_-]{16,128})$");

  private final MachineTokens tokens;

  AgentAuth(MachineTokens tokens) {
    this.tokens = tokens;
  }

  /** Returns normally when the request may act for {@code mac}; throws the refusal otherwise. */
  public void require(String mac, String authorization) {
    var m = authorization == null ? null : BEARER.matcher(authorization);
    if (m == null || !m.matches()) {
      throw refusal(Response.Status.UNAUTHORIZED, "missing or malformed bearer token");
    }
    String token = m.group(1);
    if (tokens.verify(mac, token)) {
      return;
    }
    if (tokens.issuedTo(token).isPresent()) {
      throw refusal(Response.Status.FORBIDDEN, "this token belongs to another machine");
    }
    throw refusal(Response.Status.UNAUTHORIZED, "invalid token");
  }

  private static WebApplicationException refusal(Response.Status status, String message) {
    return new WebApplicationException(
        Response.status(status)
            .header(HttpHeaders.WWW_AUTHENTICATE, "Bearer")
            .type("text/plain; charset=utf-8")
            .entity(message + "\n")
            .build());
  }
}
