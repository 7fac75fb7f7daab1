package io.chrootbooter.operator.agentapi;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.SpecRules;
import io.chrootbooter.operator.machine.IpxeResource;
import io.chrootbooter.operator.machine.MacAddress;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.protocol.Enrolment;
import io.chrootbooter.protocol.Session;
import io.chrootbooter.protocol.StatusReport;
import io.vertx.core.http.HttpServerRequest;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.UriInfo;
import jakarta.ws.rs.sse.Sse;
import jakarta.ws.rs.sse.SseEventSink;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.stream.Collectors;

/** The agent API, {@code /agent/v1/machines/{mac}/…}; see the package documentation. */
@Path("/agent/v1/machines/{mac}")
public class AgentResource {
  static final int MAX_REPORT_BYTES = 64 * 1024;

  static final int MAX_ENROLMENT_BYTES = 1024;

  private final AgentAuth auth;
  private final Enrolments enrolments;
  private final AgentStreams streams;
  private final StatusReports reports;
  private final MachineDirectory directory;
  private final ObjectMapper mapper;
  private final OperatorConfig config;

  AgentResource(
      AgentAuth auth,
      Enrolments enrolments,
      AgentStreams streams,
      StatusReports reports,
      MachineDirectory directory,
      ObjectMapper mapper,
      OperatorConfig config) {
    this.config = config;
    this.auth = auth;
    this.enrolments = enrolments;
    this.streams = streams;
    this.reports = reports;
    this.directory = directory;
    this.mapper = mapper.copy().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
  }

  /**
   * Enrolment: the boot nonce of the machine's iPXE script and its boot id ({@link Enrolment}) for
   * a session ({@link Session}); 401 for a nonce that is not this machine's or expired, 409 for one
   * used already (recorded as an {@code EnrolmentReplayed} Event naming both addresses).
   */
  @POST
  @Path("/enroll")
  @Consumes(MediaType.APPLICATION_JSON)
  @Produces(MediaType.APPLICATION_JSON)
  public Response enroll(
      @PathParam("mac") String mac, @Context HttpServerRequest request, InputStream body) {
    String canonical = canonical(mac);
    byte[] bytes = read(body, MAX_ENROLMENT_BYTES);
    if (bytes.length > MAX_ENROLMENT_BYTES) {
      return bad("enrolment is more than " + MAX_ENROLMENT_BYTES + " bytes");
    }
    Enrolment enrolment;
    try {
      enrolment = mapper.readValue(bytes, Enrolment.class);
    } catch (JsonProcessingException e) {
      return bad("enrolment is not valid JSON of the expected shape: " + e.getOriginalMessage());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (enrolment == null) {
      return bad("enrolment is empty");
    }
    String from =
        request.remoteAddress() == null ? "unknown" : request.remoteAddress().hostAddress();
    return answer(enrolments.enrol(canonical, enrolment.nonce(), enrolment.bootId(), from));
  }

  /** Renews the session the request carries: the same session, valid for longer. */
  @POST
  @Path("/session")
  @Produces(MediaType.APPLICATION_JSON)
  public Response renew(
      @PathParam("mac") String mac, @HeaderParam(HttpHeaders.AUTHORIZATION) String authorization) {
    return answer(enrolments.renew(canonical(mac), authorization));
  }

  private static Response answer(Enrolments.Verdict verdict) {
    if (!verdict.ok()) {
      throw AgentAuth.refusal(verdict.status(), verdict.message());
    }
    return Response.ok(new Session(verdict.credential(), verdict.expires().toString()))
        .type(MediaType.APPLICATION_JSON)
        .header(HttpHeaders.CACHE_CONTROL, "no-store")
        .build();
  }

  /** The machine's desired state as Server-Sent Events; see {@link AgentStreams}. */
  @GET
  @Path("/desired")
  @Produces(MediaType.SERVER_SENT_EVENTS)
  public void desired(
      @PathParam("mac") String mac,
      @HeaderParam(HttpHeaders.AUTHORIZATION) String authorization,
      @HeaderParam("Last-Event-ID") String lastEventId,
      @Context SseEventSink sink,
      @Context Sse sse,
      @Context UriInfo uri) {
    String canonical = canonical(mac);
    String session = auth.require(canonical, authorization);
    String base =
        config
            .agent()
            .url()
            .or(() -> IpxeResource.baseUrl(config, uri))
            .orElseThrow(
                () ->
                    new WebApplicationException(
                        Response.status(Response.Status.BAD_REQUEST)
                            .type(MediaType.TEXT_PLAIN)
                            .entity("the Host header is not a host name or address\n")
                            .build()));
    streams.open(canonical, sink, sse, base, session, lastEventId);
  }

  /** A status report; 202 once accepted, 400 naming what is wrong with it. */
  @POST
  @Path("/status")
  @Consumes(MediaType.APPLICATION_JSON)
  public Response status(
      @PathParam("mac") String mac,
      @HeaderParam(HttpHeaders.AUTHORIZATION) String authorization,
      InputStream body) {
    String canonical = canonical(mac);
    auth.require(canonical, authorization);
    byte[] bytes = read(body, MAX_REPORT_BYTES);
    if (bytes.length > MAX_REPORT_BYTES) {
      return bad("status report is more than " + MAX_REPORT_BYTES + " bytes");
    }
    StatusReport report;
    try {
      report = mapper.readValue(bytes, StatusReport.class);
    } catch (InvalidFormatException e) {
      return bad(invalidValue(e));
    } catch (JsonProcessingException e) {
      return bad(
          "status report is not valid JSON of the expected shape: " + e.getOriginalMessage());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (report == null) {
      return bad("status report is empty");
    }
    var violations = StatusReportRules.violations(report);
    if (!violations.isEmpty()) {
      return bad(String.join("; ", violations));
    }
    if (directory.byMac(canonical).isEmpty()) {
      return Response.status(Response.Status.NOT_FOUND)
          .type(MediaType.TEXT_PLAIN)
          .entity("no MachineBoot names " + canonical + "\n")
          .build();
    }
    reports.submit(canonical, report);
    return Response.accepted().build();
  }

  /**
   * {@code phase: "Dancing" is not one of [Pending, …]}: a value of a field the protocol types,
   * such as a phase, that is none of the values it knows.
   */
  static String invalidValue(InvalidFormatException e) {
    String field =
        e.getPath().stream()
            .map(r -> r.getFieldName() != null ? r.getFieldName() : "[" + r.getIndex() + "]")
            .collect(Collectors.joining("."));
    Object[] accepted = e.getTargetType().getEnumConstants();
    return field
        + ": "
        + SpecRules.quote(String.valueOf(e.getValue()))
        + (accepted != null
            ? " is not one of " + Arrays.toString(accepted)
            : " is not a " + e.getTargetType().getSimpleName());
  }

  private static String canonical(String mac) {
    return MacAddress.normalize(mac)
        .orElseThrow(
            () ->
                new WebApplicationException(
                    Response.status(Response.Status.BAD_REQUEST)
                        .type(MediaType.TEXT_PLAIN)
                        .entity("not a MAC address\n")
                        .build()));
  }

  private static byte[] read(InputStream body, int max) {
    try {
      return body.readNBytes(max + 1);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static Response bad(String message) {
    return Response.status(Response.Status.BAD_REQUEST)
        .type(MediaType.TEXT_PLAIN)
        .entity(message + "\n")
        .build();
  }
}
