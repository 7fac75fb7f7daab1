package io.chrootbooter.operator;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.agentapi.Enrolments;
import io.chrootbooter.operator.liveness.AgentLeases;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.operator.token.MachineTokens;
import io.fabric8.kubernetes.api.model.Event;
import jakarta.inject.Inject;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Enrolment as a machine, a bystander on the machine network and a second operator replica see it:
 * the nonce of the public iPXE script is good for one session, whoever uses it again is refused and
 * recorded, sessions are bound to their machine and boot, and images go only to the machine whose
 * MachineBoot names them. Runs on every backend with the control-plane scenarios.
 */
public abstract class EnrolmentScenarios extends AgentApiScenarios {
  private static final String M1 = "52:54:00:12:34:56";
  private static final String M2 = "52:54:00:12:34:57";
  private static final String MACHINE = "127.0.0.1";
  private static final String BYSTANDER = "127.0.0.2";

  @Inject MachineTokens tokens;
  @Inject MachineDirectory directory;
  @Inject AgentLeases leases;
  @Inject EventRecorder recorder;

  private String enrolment(String nonce, String bootId) {
    return "{\"nonce\":\"" + nonce + "\",\"bootId\":\"" + bootId + "\"}";
  }

  private static String path(String mac) {
    return "/agent/v1/machines/" + mac + "/enroll";
  }

  /**
   * Another replica: its own memory and its own watch, sharing nothing with this one but the API.
   * Its clock may run ahead, to see credentials expire.
   */
  private Enrolments replica(Duration ahead) {
    Enrolments other =
        new Enrolments(
            client,
            tokens,
            directory,
            leases,
            recorder,
            Duration.ofMinutes(10),
            Duration.ofHours(1),
            Clock.offset(Clock.systemUTC(), ahead));
    other.start(null);
    return other;
  }

  private List<Event> replayEvents(String machine) {
    return client.v1().events().inNamespace(ns).list().getItems().stream()
        .filter(e -> machine.equals(e.getInvolvedObject().getName()))
        .filter(e -> "EnrolmentReplayed".equals(e.getReason()))
        .toList();
  }

  @Test
  void theScriptGivesOnlyANonceWhichBuysOneSession() throws Exception {
    applyExamples();
    String script = awaitScript(M1, s -> s.contains("cb.nonce="));
    assertThat(script).doesNotContain("cb.token=").doesNotContain("Bearer");
    String nonce = nonceOf(script);
    // The nonce is no credential of its own.
    try (Stream stream = new Stream(M1, nonce, null)) {
      assertThat(stream.status).isEqualTo(401);
    }
    String session =
        enrol(M1, nonce, "b1")
            .then()
            .statusCode(200)
            .header("Cache-Control", "no-store")
            .extract()
            .path("session");
    assertThat(session).isNotEqualTo(nonce).doesNotContain(nonce);
    try (Stream stream = new Stream(M1, session, null)) {
      assertThat(stream.status).isEqualTo(200);
      assertThat(stream.next(Duration.ofSeconds(5)).name()).isEqualTo("desired");
    }
    // Another machine's nonce, a garbled one: 401, and nothing is recorded.
    String m2Nonce = nonceOf(awaitScript(M2, s -> s.contains("cb.nonce=")));
    enrol(M1, m2Nonce, "b1")
        .then()
        .statusCode(401)
        .body(org.hamcrest.Matchers.containsString("re-enrol: boot the machine again"));
    enrol(M1, "x".repeat(75), "b1").then().statusCode(401);
    enrol(M1, nonceOf(script(M1)), "../etc").then().statusCode(400);
    assertThat(replayEvents("m1")).isEmpty();
  }

  @Test
  void aNonceUsedAgainIsRefusedAndRecordedWithBothAddresses() throws Exception {
    applyExamples();
    String nonce = nonceOf(awaitScript(M1, s -> s.contains("cb.nonce=")));
    Answer machine = postFrom(MACHINE, path(M1), enrolment(nonce, "boot-real"));
    assertThat(machine.status()).isEqualTo(200);
    String session = machine.body().replaceAll("(?s).*\"session\":\"([A-Za-z0-9_-]+)\".*", "$1");

    // Someone who read the script (or /proc/cmdline of the running target) replays the nonce.
    Answer replay = postFrom(BYSTANDER, path(M1), enrolment(nonce, "boot-real"));
    assertThat(replay.status()).isEqualTo(409);
    assertThat(replay.body()).contains("used already, from " + MACHINE);
    Event event =
        await()
            .atMost(Duration.ofSeconds(30))
            .until(() -> replayEvents("m1"), l -> !l.isEmpty())
            .get(0);
    assertThat(event.getType()).isEqualTo("Warning");
    assertThat(event.getMessage())
        .contains("presented again from " + BYSTANDER)
        .contains("exchanged from " + MACHINE);
    assertThat(event.getMessage()).doesNotContain(nonce);

    // The machine's session is untouched by the refused attempt.
    try (Stream stream = new Stream(M1, session, null)) {
      assertThat(stream.status).isEqualTo(200);
    }
  }

  @Test
  void aBystanderWinningTheRaceMakesTheMachineFailLoudly() throws Exception {
    applyExamples();
    String nonce = nonceOf(awaitScript(M1, s -> s.contains("cb.nonce=")));
    Answer bystander = postFrom(BYSTANDER, path(M1), enrolment(nonce, "boot-forged"));
    assertThat(bystander.status()).isEqualTo(200);

    Answer machine = postFrom(MACHINE, path(M1), enrolment(nonce, "boot-real"));
    assertThat(machine.status()).isEqualTo(409);
    assertThat(machine.body())
        .contains("used already, from " + BYSTANDER)
        .contains("someone else did as it");
    Event event =
        await()
            .atMost(Duration.ofSeconds(30))
            .until(() -> replayEvents("m1"), l -> !l.isEmpty())
            .get(0);
    assertThat(event.getMessage())
        .contains("presented again from " + MACHINE + " (boot boot-real)")
        .contains("exchanged from " + BYSTANDER + " (boot boot-forged)");
  }

  @Test
  void aMachineBootCreatedAgainRefusesTheNoncesOfItsPredecessor() throws Exception {
    applyExamples();
    String used = nonceOf(awaitScript(M1, s -> s.contains("cb.nonce=")));
    // A script a bystander fetched, its nonce never exchanged.
    String unused = nonceOf(script(M1));
    enrol(M1, used, "b1").then().statusCode(200);

    MachineBoot before = client.resources(MachineBoot.class).inNamespace(ns).withName("m1").get();
    client.resource(before).delete();
    await()
        .atMost(Duration.ofSeconds(30))
        .until(
            () -> client.resources(MachineBoot.class).inNamespace(ns).withName("m1").get() == null);
    MachineBoot again = new MachineBoot();
    again.setMetadata(
        new io.fabric8.kubernetes.api.model.ObjectMetaBuilder()
            .withName("m1")
            .withNamespace(ns)
            .build());
    again.setSpec(before.getSpec());
    String uid = client.resource(again).create().getMetadata().getUid();
    assertThat(uid).isNotEqualTo(before.getMetadata().getUid());
    await()
        .atMost(Duration.ofSeconds(30))
        .until(
            () -> directory.byMac(M1).map(m -> uid.equals(m.getMetadata().getUid())).orElse(false));

    // Whatever the old record says (a cluster's garbage collector deletes it with its owner), the
    // nonces of the deleted MachineBoot are not nonces of this one.
    enrol(M1, unused, "b2")
        .then()
        .statusCode(401)
        .body(org.hamcrest.Matchers.containsString("not a boot nonce the operator issued"));
    enrol(M1, used, "b1").then().statusCode(org.hamcrest.Matchers.oneOf(401, 409));
    String fresh = nonceOf(awaitScript(M1, s -> s.contains("cb.nonce=")));
    enrol(M1, fresh, "b3").then().statusCode(200);
  }

  @Test
  void anAgentThatLostTheAnswerMayAskAgainBriefly() throws Exception {
    applyExamples();
    String nonce = nonceOf(awaitScript(M1, s -> s.contains("cb.nonce=")));
    String first = enrol(M1, nonce, "b1").then().statusCode(200).extract().path("session");
    // The same boot from the same address: a new session, which replaces the first.
    String second = enrol(M1, nonce, "b1").then().statusCode(200).extract().path("session");
    assertThat(second).isNotEqualTo(first);
    try (Stream stream = new Stream(M1, second, null)) {
      assertThat(stream.status).isEqualTo(200);
    }
    // Another boot id with the same nonce is a replay.
    enrol(M1, nonce, "b2").then().statusCode(409);
  }

  @Test
  void sessionsAreBoundToTheirMachineAndRevokedByTheNextBoot() throws Exception {
    applyExamples();
    String m1 = sessionFor(M1);
    String m2 = sessionFor(M2);
    given()
        .header("Authorization", "Bearer " + m1)
        .get("/agent/v1/machines/" + M2 + "/desired")
        .then()
        .statusCode(403);
    // A token of the former scheme: refused with what to do.
    given()
        .header("Authorization", "Bearer " + "A".repeat(43))
        .get("/agent/v1/machines/" + M1 + "/desired")
        .then()
        .statusCode(401)
        .header("WWW-Authenticate", "Bearer")
        .body(
            org.hamcrest.Matchers.containsString(
                "no longer accepted; re-enrol: boot the machine again"));

    // Renewal: the same session, valid for longer.
    String renewed =
        given()
            .header("Authorization", "Bearer " + m1)
            .post("/agent/v1/machines/" + M1 + "/session")
            .then()
            .statusCode(200)
            .extract()
            .path("session");
    try (Stream stream = new Stream(M1, renewed, null)) {
      assertThat(stream.status).isEqualTo(200);
    }

    // The machine boots again and enrols: the sessions of the previous boot are void, and a stream
    // opened with one is ended (at its next heartbeat).
    Stream previous = new Stream(M1, m1, null);
    assertThat(previous.status).isEqualTo(200);
    String next = sessionFor(M1);
    try (previous) {
      await().atMost(Duration.ofSeconds(30)).until(previous::ended);
    }
    for (String old : List.of(m1, renewed)) {
      given()
          .header("Authorization", "Bearer " + old)
          .get("/agent/v1/machines/" + M1 + "/desired")
          .then()
          .statusCode(401)
          .body(org.hamcrest.Matchers.containsString("revoked"));
    }
    try (Stream stream = new Stream(M1, next, null)) {
      assertThat(stream.status).isEqualTo(200);
    }
    // An hour later (a replica whose clock runs ahead) the session has expired.
    Enrolments later = replica(Duration.ofHours(2));
    try {
      Enrolments.Verdict expired = later.check(M2, "Bearer " + m2, true);
      assertThat(expired.status()).isEqualTo(401);
      assertThat(expired.message()).contains("expired").contains("re-enrol");
      // And so has a nonce older than cb.agent.nonce-ttl.
      String nonce = nonceOf(script(M2));
      Enrolments.Verdict stale = later.enrol(M2, nonce, "b9", "192.0.2.9");
      assertThat(stale.status()).isEqualTo(401);
      assertThat(stale.message()).contains("expired");
    } finally {
      later.stop(null);
    }
  }

  @Test
  void aNonceUsedOnOneReplicaIsRefusedByAnother() throws Exception {
    applyExamples();
    Enrolments other = replica(Duration.ZERO);
    try {
      // Used here, replayed there.
      String nonce = nonceOf(awaitScript(M1, s -> s.contains("cb.nonce=")));
      String session = enrol(M1, nonce, "b1").then().statusCode(200).extract().path("session");
      Enrolments.Verdict there = other.enrol(M1, nonce, "b1-forged", "192.0.2.7");
      assertThat(there.status()).isEqualTo(409);
      assertThat(there.message()).contains("used already");
      // The other replica accepts the session it did not issue.
      assertThat(other.check(M1, "Bearer " + session, true).ok()).isTrue();

      // Used there, replayed here.
      String nonce2 = nonceOf(script(M2));
      Enrolments.Verdict used = other.enrol(M2, nonce2, "b2", "192.0.2.8");
      assertThat(used.ok()).isTrue();
      enrol(M2, nonce2, "b2")
          .then()
          .statusCode(409)
          .body(org.hamcrest.Matchers.containsString("used already, from 192.0.2.8"));
      // The session the other replica issued is good here.
      try (Stream stream = new Stream(M2, used.credential(), null)) {
        assertThat(stream.status).isEqualTo(200);
      }

      // The machine boots again here: the other replica refuses its old session too.
      sessionFor(M1);
      await()
          .atMost(Duration.ofSeconds(30))
          .until(() -> other.check(M1, "Bearer " + session, true).status() == 401);
    } finally {
      other.stop(null);
    }
  }

  @Test
  void twoReplicasRacingForOneNonceAcceptItOnce() throws Exception {
    applyExamples();
    awaitScript(M1, s -> s.contains("cb.nonce="));
    Enrolments other = replica(Duration.ZERO);
    var pool = java.util.concurrent.Executors.newFixedThreadPool(2);
    try {
      for (int round = 0; round < 5; round++) {
        String nonce = nonceOf(script(M1));
        var start = new java.util.concurrent.CountDownLatch(1);
        var here =
            pool.submit(
                () -> {
                  start.await();
                  return enrol(M1, nonce, "here").statusCode();
                });
        var there =
            pool.submit(
                () -> {
                  start.await();
                  return other.enrol(M1, nonce, "there", "192.0.2.10").status();
                });
        start.countDown();
        assertThat(List.of(here.get(), there.get()))
            .as("round %d: one enrolment, one refusal", round)
            .containsExactlyInAnyOrder(200, 409);
      }
    } finally {
      pool.shutdownNow();
      other.stop(null);
    }
  }

  @Test
  void imagesGoOnlyToEnrolledMachinesThatRunThem() {
    applyExamples();
    BootImage debian = awaitImage("debian-12", i -> i.getStatus().phase() == BootImagePhase.Ready);
    BootImage busybox = awaitImage("busybox", i -> i.getStatus().phase() == BootImagePhase.Ready);
    String debianSha = debian.getStatus().sha256();
    String busyboxSha = busybox.getStatus().sha256();
    awaitScript(M1, s -> s.contains("/images/" + debianSha + " "));
    String m1 = sessionFor(M1);

    given()
        .head("/images/" + debianSha)
        .then()
        .statusCode(401)
        .header("WWW-Authenticate", "Bearer");
    given().head("/images/" + ns + "/debian-12").then().statusCode(401);
    given()
        .header("Authorization", "Bearer " + "A".repeat(43))
        .head("/images/" + debianSha)
        .then()
        .statusCode(401);
    given()
        .header("Authorization", "Bearer " + m1)
        .head("/images/" + debianSha)
        .then()
        .statusCode(200);
    given()
        .header("Authorization", "Bearer " + m1)
        .head("/images/" + ns + "/debian-12")
        .then()
        .statusCode(200);
    // An image m1 does not run.
    given()
        .header("Authorization", "Bearer " + m1)
        .head("/images/" + busyboxSha)
        .then()
        .statusCode(403);
    given()
        .header("Authorization", "Bearer " + m1)
        .head("/images/" + ns + "/busybox")
        .then()
        .statusCode(403);
    // (The bootstrap stays public: bootstrapFilesAreServedWithRanges fetches it without one.)

    // m1 is switched to busybox: now that image, and no longer the other.
    client
        .resources(io.chrootbooter.api.v1alpha1.MachineBoot.class)
        .inNamespace(ns)
        .withName("m1")
        .edit(
            m -> {
              m.setSpec(withImage(m.getSpec(), "busybox"));
              return m;
            });
    awaitScript(M1, s -> s.contains("/images/" + busyboxSha + " "));
    given()
        .header("Authorization", "Bearer " + m1)
        .head("/images/" + busyboxSha)
        .then()
        .statusCode(200);
    given()
        .header("Authorization", "Bearer " + m1)
        .head("/images/" + debianSha)
        .then()
        .statusCode(403);
  }
}
