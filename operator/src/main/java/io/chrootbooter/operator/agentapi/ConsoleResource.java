package io.chrootbooter.operator.agentapi;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.console.ConsoleLogs;
import io.chrootbooter.operator.console.ReplicaForwards;
import io.chrootbooter.operator.machine.MacAddress;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.protocol.ConsoleChunk;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;

/**
 * {@code POST /agent/v1/machines/{mac}/console}: a piece of the machine's recorded console ({@link
 * ConsoleChunk}), with the machine's session like every agent call. Each kernel warning not seen
 * before becomes a Warning Event {@code KernelWarning} on the MachineBoot, its first line the
 * message, recorded once per boot and number (a resent chunk, or another replica, records nothing
 * more).
 */
@Path("/agent/v1/machines/{mac}/console")
public class ConsoleResource {
  static final int MAX_CHUNK_BYTES = 512 * 1024;
  static final int MAX_WARNING_CHARS = 1000;

  private final AgentAuth auth;
  private final MachineDirectory directory;
  private final ConsoleLogs logs;
  private final EventRecorder events;
  private final ObjectMapper mapper;
  private final ReplicaForwards forwards;

  ConsoleResource(
      AgentAuth auth,
      MachineDirectory directory,
      ConsoleLogs logs,
      EventRecorder events,
      ObjectMapper mapper,
      ReplicaForwards forwards) {
    this.forwards = forwards;
    this.auth = auth;
    this.directory = directory;
    this.logs = logs;
    this.events = events;
    this.mapper = mapper.copy().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
  }

  @POST
  @Consumes(MediaType.APPLICATION_JSON)
  public Response post(
      @PathParam("mac") String mac,
      @HeaderParam(HttpHeaders.AUTHORIZATION) String authorization,
      InputStream body) {
    String canonical = MacAddress.normalize(mac).orElse(null);
    if (canonical == null) {
      return bad("not a MAC address");
    }
    auth.require(canonical, authorization);
    byte[] bytes;
    try {
      bytes = body.readNBytes(MAX_CHUNK_BYTES + 1);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (bytes.length > MAX_CHUNK_BYTES) {
      return bad("console chunk is more than " + MAX_CHUNK_BYTES + " bytes");
    }
    ConsoleChunk chunk;
    try {
      chunk = mapper.readValue(bytes, ConsoleChunk.class);
    } catch (JsonProcessingException e) {
      return bad(
          "console chunk is not valid JSON of the expected shape: " + e.getOriginalMessage());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (chunk == null) {
      return bad("console chunk is empty");
    }
    List<String> violations = violations(chunk);
    if (!violations.isEmpty()) {
      return bad(String.join("; ", violations));
    }
    byte[] data;
    try {
      data = chunk.data() == null ? new byte[0] : Base64.getDecoder().decode(chunk.data());
    } catch (IllegalArgumentException e) {
      return bad("data: not base64");
    }
    Optional<MachineBoot> machine = directory.byMac(canonical);
    if (machine.isEmpty()) {
      return Response.status(Response.Status.NOT_FOUND)
          .type(MediaType.TEXT_PLAIN)
          .entity("no MachineBoot names " + canonical + "\n")
          .build();
    }
    MachineBoot mb = machine.get();
    // A read at another replica is forwarded here.
    forwards.publish(mb, ReplicaForwards.Held.LOG);
    ConsoleLogs.Accepted accepted =
        logs.append(mb.getMetadata().getNamespace(), mb.getMetadata().getName(), chunk, data);
    for (ConsoleLogs.Warning w : accepted.warnings()) {
      events.recordOnce(
          mb,
          "Warning",
          "KernelWarning",
          w.line().replaceAll("\\p{Cntrl}", "?"),
          w.boot() + "/" + w.number());
    }
    return Response.accepted().build();
  }

  /** What is wrong with a chunk, field by field; empty when nothing is. */
  static List<String> violations(ConsoleChunk chunk) {
    List<String> wrong = new ArrayList<>();
    if (chunk.boot() == null || !chunk.boot().matches("[A-Za-z0-9._-]{1,100}")) {
      wrong.add("boot: 1 to 100 letters, digits, '.', '_' or '-'");
    }
    if (chunk.image() != null
        && (chunk.image().length() > 2048
            || chunk.image().chars().anyMatch(Character::isISOControl))) {
      wrong.add("image: longer than 2048 characters, or control characters");
    }
    if (chunk.started() != null) {
      try {
        java.time.Instant.parse(chunk.started());
      } catch (java.time.format.DateTimeParseException e) {
        wrong.add("started: not an RFC 3339 time");
      }
    }
    if (chunk.offset() < 0) {
      wrong.add("offset: negative");
    }
    if (chunk.firstWarning() < 0) {
      wrong.add("firstWarning: negative");
    }
    if (chunk.warnings().size() > ConsoleLogs.MAX_WARNINGS) {
      wrong.add("warnings: more than " + ConsoleLogs.MAX_WARNINGS);
    }
    for (String w : chunk.warnings()) {
      if (w == null || w.isBlank() || w.length() > MAX_WARNING_CHARS) {
        wrong.add("warnings: each 1 to " + MAX_WARNING_CHARS + " characters");
        break;
      }
    }
    return wrong;
  }

  private static Response bad(String message) {
    return Response.status(Response.Status.BAD_REQUEST)
        .type(MediaType.TEXT_PLAIN)
        .entity(message + "\n")
        .build();
  }
}
