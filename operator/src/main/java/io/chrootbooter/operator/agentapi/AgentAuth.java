package io.chrootbooter.operator.agentapi;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.Response;

/**
 * Checks {@code Authorization: Bearer <session>} against the machine a request names (see {@link
 * Enrolments#check}): missing, garbled, expired or revoked → 401; a valid session of another
 * machine → 403. Credentials never appear in a response, a log line or a metric.
 */
@ApplicationScoped
public class AgentAuth {
  private final Enrolments enrolments;

  AgentAuth(Enrolments enrolments) {
    this.enrolments = enrolments;
  }

  /**
   * Returns the hash of the session's id when the request may act for {@code mac}; throws the
   * refusal otherwise.
   */
  public String require(String mac, String authorization) {
    Enrolments.Verdict verdict = enrolments.check(mac, authorization, true);
    if (!verdict.ok()) {
      throw refusal(verdict.status(), verdict.message());
    }
    return verdict.session();
  }

  static WebApplicationException refusal(int status, String message) {
    Response.ResponseBuilder response =
        Response.status(status).type("text/plain; charset=utf-8").entity(message + "\n");
    if (status == 401) {
      response.header(HttpHeaders.WWW_AUTHENTICATE, "Bearer");
    }
    return new WebApplicationException(response.build());
  }
}
