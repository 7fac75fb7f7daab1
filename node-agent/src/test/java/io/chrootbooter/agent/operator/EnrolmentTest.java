package io.chrootbooter.agent.operator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.StatusReport;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The agent's enrolment against an operator stand-in on loopback that answers as told. */
class EnrolmentTest {
  private static final String MAC = "52:54:00:00:00:07";
  private static final String NONCE = "nonce-0123456789abcdef";

  @TempDir Path dir;
  private HttpServer server;
  private final List<JsonNode> enrolments = new CopyOnWriteArrayList<>();
  private final List<String> renewals = new CopyOnWriteArrayList<>();
  private final List<String> reportAuthorizations = new CopyOnWriteArrayList<>();
  private final AtomicInteger failFirst = new AtomicInteger();
  private volatile int enrolStatus = 200;
  private volatile String enrolBody = "";
  private volatile Duration sessionTtl = Duration.ofHours(1);
  private final AtomicInteger sessions = new AtomicInteger();

  @BeforeEach
  void start() throws IOException {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.setExecutor(Executors.newCachedThreadPool());
    String machine = "/agent/v1/machines/" + MAC;
    server.createContext(machine + "/enroll", this::enroll);
    server.createContext(
        machine + "/session",
        exchange -> {
          renewals.add(exchange.getRequestHeaders().getFirst("Authorization"));
          answer(exchange, 200, session());
        });
    server.createContext(
        machine + "/status",
        exchange -> {
          exchange.getRequestBody().readAllBytes();
          reportAuthorizations.add(exchange.getRequestHeaders().getFirst("Authorization"));
          exchange.sendResponseHeaders(202, -1);
          exchange.close();
        });
    server.start();
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  private String base() {
    return "http://127.0.0.1:" + server.getAddress().getPort();
  }

  private String session() {
    return "{\"session\":\"s-"
        + sessions.incrementAndGet()
        + "\",\"expiresAt\":\""
        + Instant.now().plus(sessionTtl)
        + "\"}";
  }

  private void enroll(HttpExchange exchange) throws IOException {
    enrolments.add(new ObjectMapper().readTree(exchange.getRequestBody()));
    if (failFirst.getAndDecrement() > 0) {
      answer(exchange, 503, "starting");
    } else if (enrolStatus == 200) {
      answer(exchange, 200, session());
    } else {
      answer(exchange, enrolStatus, enrolBody);
    }
  }

  private static void answer(HttpExchange exchange, int status, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }

  private SessionFile file() {
    return new SessionFile(dir.resolve("agent-session"));
  }

  private OperatorClient client(String nonce, String bootId) {
    return new OperatorClient(URI.create(base()), MAC, nonce, bootId, file(), Optional.empty());
  }

  private static StatusReport report() {
    return StatusReport.builder().phase(MachinePhase.Bootstrap).build();
  }

  @Test
  void theNonceIsExchangedOnceAndTheSessionKeptForARestartedAgent() throws Exception {
    try (OperatorClient agent = client(NONCE, "boot-1")) {
      assertThat(agent.enrol()).isTrue();
      assertThat(agent.authorization()).isEqualTo("Bearer s-1");
      assertThat(agent.report(report())).isTrue();
    }
    assertThat(enrolments).hasSize(1);
    assertThat(enrolments.get(0).path("nonce").asText()).isEqualTo(NONCE);
    assertThat(enrolments.get(0).path("bootId").asText()).isEqualTo("boot-1");
    assertThat(reportAuthorizations).containsExactly("Bearer s-1");
    Path stored = dir.resolve("agent-session");
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(stored)))
        .isEqualTo("rw-------");
    assertThat(Files.readString(stored)).contains("session=s-1").contains("bootId=boot-1");

    // Init restarts the agent (same boot, same spent nonce): it goes on with the kept session.
    try (OperatorClient restarted = client(NONCE, "boot-1")) {
      assertThat(restarted.enrol()).isTrue();
      assertThat(restarted.authorization()).isEqualTo("Bearer s-1");
    }
    assertThat(enrolments).as("no second enrolment").hasSize(1);
  }

  @Test
  void aSessionOfAnotherBootOrALooseFileIsNotBelieved() throws Exception {
    file()
        .write(
            new SessionFile.Stored(
                base(), MAC, "boot-0", "old", Instant.now().plus(Duration.ofHours(1))));
    try (OperatorClient agent = client(NONCE, "boot-1")) {
      assertThat(agent.enrol()).isTrue();
      assertThat(agent.authorization()).isEqualTo("Bearer s-1");
    }
    // Readable by others: someone else may have written it.
    Files.setPosixFilePermissions(
        dir.resolve("agent-session"), PosixFilePermissions.fromString("rw-r--r--"));
    try (OperatorClient agent = client(NONCE, "boot-1")) {
      assertThat(agent.enrol()).isTrue();
      assertThat(agent.authorization()).isEqualTo("Bearer s-2");
    }
    // A symbolic link in its place is not followed.
    Files.delete(dir.resolve("agent-session"));
    Path elsewhere = dir.resolve("elsewhere");
    file().write(new SessionFile.Stored(base(), MAC, "boot-1", "planted", Instant.MAX));
    Files.move(dir.resolve("agent-session"), elsewhere);
    Files.createSymbolicLink(dir.resolve("agent-session"), elsewhere);
    assertThat(file().read()).isEmpty();
    assertThat(enrolments).hasSize(2);
  }

  @Test
  void aRefusedEnrolmentFailsLoudlyAndIsNotRepeated() throws Exception {
    enrolStatus = 409;
    enrolBody =
        "enrolment refused: this boot nonce was used already, from 10.0.0.66 at"
            + " 2026-12-07T14:00:00Z\n";
    try (OperatorClient agent = client(NONCE, "boot-1")) {
      assertThat(agent.enrol()).isFalse();
      assertThat(agent.refusal()).get().asString().contains("HTTP 409").contains("10.0.0.66");
      assertThat(agent.authorization()).isNull();
      // A report cannot be sent without a session, and is not kept to be sent again.
      assertThat(agent.report(report())).isTrue();
      // follow() returns at once instead of trying the stream.
      agent.follow(state -> {}, () -> {});
    }
    assertThat(enrolments).hasSize(1);
    assertThat(reportAuthorizations).isEmpty();
    assertThat(Files.exists(dir.resolve("agent-session"))).isFalse();
  }

  @Test
  void anUnreachableOrStartingOperatorIsAskedAgain() throws Exception {
    failFirst.set(2);
    try (OperatorClient agent = client(NONCE, "boot-1")) {
      assertThat(agent.enrol()).isTrue();
    }
    assertThat(enrolments).hasSize(3);
  }

  @Test
  void withoutNonceOrKeptSessionThereIsNothingToEnrolWith() throws Exception {
    try (OperatorClient agent = client(null, "boot-1")) {
      assertThat(agent.enrol()).isFalse();
      assertThat(agent.refusal()).get().asString().contains("boot the machine");
    }
    assertThat(enrolments).isEmpty();
  }

  @Test
  void theSessionIsRenewedWhenHalfOfItIsGone() throws Exception {
    sessionTtl = Duration.ofSeconds(2);
    try (OperatorClient agent = client(NONCE, "boot-1")) {
      assertThat(agent.enrol()).isTrue();
      agent.renewIfDue();
      assertThat(renewals).as("not due yet").isEmpty();
      Thread.sleep(1100);
      sessionTtl = Duration.ofHours(1);
      agent.renewIfDue();
      assertThat(renewals).containsExactly("Bearer s-1");
      assertThat(agent.authorization()).isEqualTo("Bearer s-2");
      assertThat(Files.readString(dir.resolve("agent-session"))).contains("session=s-2");
    }
  }
}
