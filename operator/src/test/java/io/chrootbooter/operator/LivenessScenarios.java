package io.chrootbooter.operator;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.operator.liveness.AgentLeases;
import io.chrootbooter.operator.liveness.LivenessRules;
import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.MachinePhase;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.api.model.coordination.v1.LeaseSpec;
import io.fabric8.kubernetes.client.dsl.NonDeletingOperation;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Liveness as a user sees it, with {@code cb.agent.lost-after} at 3 s (the test profile): a machine
 * whose agent falls silent is marked AgentLost and comes back, a new boot id is a reboot, a status
 * edited by hand is put right by the next heartbeat, and an agent that reconnects to this replica
 * after its own was killed is never lost. The agent is a stand-in that does what the node agent
 * does: it follows its stream and sends its full report every heartbeat the desired state names.
 */
public abstract class LivenessScenarios extends EnrolmentScenarios {
  private static final String MAC = "52:54:00:12:34:56";

  /** The test profile's {@code cb.agent.lost-after}. */
  static final Duration LOST_AFTER = Duration.ofSeconds(3);

  /** A node agent's liveness: its stream, and its full report every heartbeat. */
  final class StandInAgent implements AutoCloseable {
    final AtomicReference<String> report = new AtomicReference<>();
    final Duration heartbeat;
    private final String token;
    private final Stream stream;
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();

    StandInAgent(String token, String report) throws Exception {
      this.token = token;
      this.report.set(report);
      this.stream = new Stream(MAC, token, null);
      SseEvent first = stream.next(Duration.ofSeconds(5));
      java.util.regex.Matcher m =
          java.util.regex.Pattern.compile("\"heartbeat\":\"([^\"]+)\"").matcher(first.data());
      assertThat(m.find()).as("a heartbeat in %s", first.data()).isTrue();
      heartbeat = GoDuration.parse("heartbeat", m.group(1));
      send(); // on (re)connect at once, as the agent does
      timer.scheduleAtFixedRate(
          this::send, heartbeat.toMillis(), heartbeat.toMillis(), TimeUnit.MILLISECONDS);
    }

    void send() {
      given()
          .header("Authorization", "Bearer " + token)
          .contentType("application/json")
          .body(report.get())
          .post("/agent/v1/machines/" + MAC + "/status")
          .then()
          .statusCode(202);
    }

    @Override
    public void close() throws Exception {
      timer.shutdownNow();
      timer.awaitTermination(5, TimeUnit.SECONDS);
      stream.close();
    }
  }

  static String running(String bootId) {
    return "{\"phase\":\"Running\",\"currentImage\":\"debian-12\",\"agent\":{\"version\":\"0.1.0\","
        + "\"bootId\":\""
        + bootId
        + "\",\"ip\":\"10.0.0.2\",\"kernel\":\"6.1.0\"}}";
  }

  private String readyMachine() {
    applyExamples();
    awaitImage("debian-12", i -> i.getStatus().phase() == BootImagePhase.Ready);
    return sessionFor(MAC);
  }

  @Test
  void aSilentAgentIsLostWithinLostAfterAndIsBackWhenHeardFrom() throws Exception {
    String token = readyMachine();
    try (StandInAgent agent = new StandInAgent(token, running("b1"))) {
      assertThat(agent.heartbeat).isEqualTo(LivenessRules.heartbeat(LOST_AFTER));
      awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
      // Heartbeats keep it live, well past lost-after.
      Thread.sleep(LOST_AFTER.multipliedBy(2).toMillis());
      MachineBoot live = client.resources(MachineBoot.class).inNamespace(ns).withName("m1").get();
      assertThat(hasCondition(live, "Ready", "True", "Running")).isTrue();
      assertThat(columns(live).get("Seen")).isNotEmpty();
    }
    // The machine is powered off: nothing more from its agent.
    long silent = System.nanoTime();
    MachineBoot lost =
        await()
            .atMost(LOST_AFTER.plusSeconds(10))
            .pollInterval(Duration.ofMillis(100))
            .until(
                () -> client.resources(MachineBoot.class).inNamespace(ns).withName("m1").get(),
                m -> hasCondition(m, "Ready", "False", "AgentLost"));
    Duration took = Duration.ofNanos(System.nanoTime() - silent);
    System.out.printf("AgentLost %d ms after the agent fell silent%n", took.toMillis());
    assertThat(took).isLessThanOrEqualTo(LOST_AFTER.plusSeconds(10));
    assertThat(lost.getStatus().phase())
        .as("the phase says what it last did")
        .isEqualTo(MachinePhase.Running);
    String message = condition(lost.getStatus().conditions(), "Ready").getMessage();
    assertThat(message)
        .contains("last heard from at ")
        .contains("Running is what it last reported");
    assertThat(hasCondition(lost, "Stalled", "True", "AgentLost")).isTrue();
    Instant lastSeen = Instant.parse(lost.getStatus().lastSeen());
    assertThat(message).contains(lastSeen.toString());
    assertThat(events("m1", "AgentLost")).hasSize(1).allMatch(e -> "Warning".equals(e.getType()));
    assertThat(metric("chrootbooter_machines_lost")).isGreaterThanOrEqualTo(1.0);

    // It is heard from again: Ready as before, and a Normal event.
    try (StandInAgent agent = new StandInAgent(token, running("b1"))) {
      MachineBoot back = awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
      assertThat(Instant.parse(back.getStatus().lastSeen())).isAfter(lastSeen);
      await().atMost(Duration.ofSeconds(10)).until(() -> events("m1", "AgentBack").size() == 1);
      assertThat(events("m1", "AgentBack").get(0).getType()).isEqualTo("Normal");
      assertThat(events("m1", "MachineRebooted")).as("the same boot id").isEmpty();
    }
  }

  @Test
  void aNewBootIdIsAReboot() throws Exception {
    String token = readyMachine();
    try (StandInAgent agent = new StandInAgent(token, running("boot-1"))) {
      awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
      // The Lease exists once the agent was heard from; then the machine PXE-boots again.
      await().atMost(Duration.ofSeconds(10)).until(() -> agentLease("m1") != null);
      Thread.sleep(1100);
      script(MAC);
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> AgentLeases.ipxeFetchedAt(agentLease("m1")).isPresent());
      agent.report.set(
          "{\"phase\":\"Bootstrap\",\"agent\":{\"version\":\"0.1.0\",\"bootId\":\"boot-2\"}}");
      agent.send();
      MachineBoot rebooted = awaitMachine("m1", m -> m.getStatus().lastReboot() != null);
      var reboot = rebooted.getStatus().lastReboot();
      assertThat(reboot.previousBootId()).isEqualTo("boot-1");
      assertThat(reboot.previousImage()).isEqualTo("debian-12");
      assertThat(reboot.ipxeFetched()).isTrue();
      assertThat(rebooted.getStatus().agent().bootId()).isEqualTo("boot-2");
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> events("m1", "MachineRebooted").size() == 1);
      assertThat(events("m1", "MachineRebooted").get(0).getMessage())
          .startsWith("previous boot boot-1 ran debian-12 for ")
          .endsWith("; the machine fetched its iPXE script since");
      // Heartbeats of the new boot are not reboots.
      Thread.sleep(agent.heartbeat.multipliedBy(3).toMillis());
      assertThat(events("m1", "MachineRebooted")).hasSize(1);
    }
  }

  @Test
  void aStatusEditedByHandIsPutRightWithinOneHeartbeat() throws Exception {
    String token = readyMachine();
    try (StandInAgent agent = new StandInAgent(token, running("b1"))) {
      awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
      client
          .resources(MachineBoot.class)
          .inNamespace(ns)
          .withName("m1")
          .editStatus(
              m -> {
                MachineBootStatus s = m.getStatus();
                m.setStatus(
                    MachineBootStatus.builder()
                        .phase(MachinePhase.Failed)
                        .observedGeneration(s.observedGeneration())
                        .progress(s.progress())
                        .lastReturn(s.lastReturn())
                        .agent(s.agent())
                        .error("edited by hand")
                        .lastReportTime(s.lastReportTime())
                        .conditions(s.conditions())
                        .lastSeen(s.lastSeen())
                        .runningSince(s.runningSince())
                        .lastReboot(s.lastReboot())
                        .build());
                return m;
              });
      long edited = System.nanoTime();
      await()
          .atMost(Duration.ofSeconds(10))
          .pollInterval(Duration.ofMillis(50))
          .until(
              () -> client.resources(MachineBoot.class).inNamespace(ns).withName("m1").get(),
              m -> m.getStatus().phase() == MachinePhase.Running && m.getStatus().error() == null);
      Duration took = Duration.ofNanos(System.nanoTime() - edited);
      System.out.printf(
          "a hand-edited phase was put right after %d ms (heartbeat %d ms)%n",
          took.toMillis(), agent.heartbeat.toMillis());
      // One heartbeat, plus the informer's delivery of the edit and the write.
      assertThat(took).isLessThanOrEqualTo(agent.heartbeat.plusSeconds(2));
      awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
    }
  }

  /**
   * A fail-over: the replica that held the agent's stream is killed, and the agent reconnects to
   * this one, which has never heard of it. What the killed replica leaves behind is written as it
   * writes it: the status of the reports it received (Running, stamped now) and the agent Lease it
   * renewed, with itself as holder. The agent opens its stream here and re-sends its report at
   * once, as the node agent does; from then on the machine must never be seen lost, and this
   * replica takes over the Lease. ({@code HighAvailabilityTest} in {@code e2e} runs the same with
   * two operator processes and a SIGKILL.)
   */
  @Test
  void anAgentThatReconnectsToAnotherReplicaIsNeverLost() throws Exception {
    String token = readyMachine();
    awaitMachine("m1", m -> m.getStatus().phase() != null);
    java.util.List<String> lostSeen = new java.util.concurrent.CopyOnWriteArrayList<>();
    ScheduledExecutorService watcher = Executors.newSingleThreadScheduledExecutor();
    watcher.scheduleWithFixedDelay(
        () -> {
          try {
            MachineBoot m =
                client.resources(MachineBoot.class).inNamespace(ns).withName("m1").get();
            if (m != null
                && m.getStatus() != null
                && hasCondition(m, "Ready", "False", "AgentLost")) {
              lostSeen.add(condition(m.getStatus().conditions(), "Ready").getMessage());
            }
          } catch (RuntimeException e) {
            // one missed poll: the next one looks again
          }
        },
        0,
        100,
        TimeUnit.MILLISECONDS);
    try {
      // What the killed replica wrote last: the agent's report, and the Lease it renewed.
      Instant killedAt = Instant.now();
      String report = running("b1");
      client
          .resources(MachineBoot.class)
          .inNamespace(ns)
          .withName("m1")
          .editStatus(
              m -> {
                MachineBootStatus reported =
                    client.getKubernetesSerialization().unmarshal(report, MachineBootStatus.class);
                MachineBootStatus s = m.getStatus();
                m.setStatus(
                    MachineBootStatus.builder()
                        .phase(reported.phase())
                        .currentImage(reported.currentImage())
                        .observedGeneration(s.observedGeneration())
                        .agent(reported.agent())
                        .lastReportTime(
                            killedAt.truncatedTo(java.time.temporal.ChronoUnit.MILLIS).toString())
                        .conditions(s.conditions())
                        .lastSeen(
                            killedAt.truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString())
                        .runningSince(killedAt.toString())
                        .build());
                return m;
              });
      MachineBoot m1 = client.resources(MachineBoot.class).inNamespace(ns).withName("m1").get();
      java.time.ZonedDateTime renewed =
          killedAt
              .truncatedTo(java.time.temporal.ChronoUnit.MICROS)
              .atZone(java.time.ZoneOffset.UTC);
      // The machine's enrolment made its agent Lease already: the killed replica renewed it.
      Lease killedLease =
          client.leases().inNamespace(ns).withName(LivenessRules.leaseName("m1")).get();
      if (killedLease == null) {
        killedLease =
            new io.fabric8.kubernetes.api.model.coordination.v1.LeaseBuilder()
                .withNewMetadata()
                .withName(LivenessRules.leaseName("m1"))
                .addToLabels(AgentLeases.LABEL, "true")
                .addNewOwnerReference()
                .withApiVersion(m1.getApiVersion())
                .withKind(m1.getKind())
                .withName("m1")
                .withUid(m1.getMetadata().getUid())
                .endOwnerReference()
                .endMetadata()
                .withNewSpec()
                .endSpec()
                .build();
      }
      if (killedLease.getSpec() == null) {
        killedLease.setSpec(new LeaseSpec());
      }
      killedLease.getSpec().setHolderIdentity("killed-replica");
      killedLease.getSpec().setLeaseDurationSeconds((int) LOST_AFTER.toSeconds());
      killedLease.getSpec().setAcquireTime(renewed);
      killedLease.getSpec().setRenewTime(renewed);
      client.leases().inNamespace(ns).resource(killedLease).createOr(NonDeletingOperation::update);
      // The agent reconnects here at once and keeps reporting, for three times lost-after.
      try (StandInAgent agent = new StandInAgent(token, report)) {
        Duration sinceKill = Duration.between(killedAt, Instant.now());
        assertThat(sinceKill).as("the agent reconnected within lost-after").isLessThan(LOST_AFTER);
        awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
        Thread.sleep(LOST_AFTER.multipliedBy(3).toMillis());
        Lease lease = agentLease("m1");
        assertThat(lease.getSpec().getHolderIdentity())
            .as("this replica renews the Lease now")
            .isNotBlank()
            .isNotEqualTo("killed-replica");
        assertThat(AgentLeases.renewTime(lease).orElseThrow())
            .as("renewed within lost-after/3 and a heartbeat")
            .isAfter(
                Instant.now()
                    .minus(LOST_AFTER.dividedBy(3))
                    .minus(agent.heartbeat)
                    .minusSeconds(1));
      }
      assertThat(lostSeen).as("Ready=False AgentLost seen while the agent spoke").isEmpty();
      assertThat(events("m1", "AgentLost")).isEmpty();
    } finally {
      watcher.shutdownNow();
      watcher.awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void aQuietAgentCostsALeaseRenewalEveryOtherHeartbeatAndFewStatusWrites() throws Exception {
    String token = readyMachine();
    try (StandInAgent agent = new StandInAgent(token, running("b1"))) {
      awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
      await().atMost(Duration.ofSeconds(10)).until(() -> agentLease("m1") != null);
      Lease lease = agentLease("m1");
      assertThat(lease.getMetadata().getOwnerReferences())
          .singleElement()
          .satisfies(r -> assertThat(r.getKind()).isEqualTo("MachineBoot"));
      assertThat(lease.getSpec().getHolderIdentity()).isNotBlank();
      double leases = metric("chrootbooter_liveness_lease_writes_total");
      double statuses = patchesWritten();
      double unchanged = metric("chrootbooter_agent_status_unchanged_total");
      Duration window = LOST_AFTER.multipliedBy(3);
      Thread.sleep(window.toMillis());
      double leaseWrites = metric("chrootbooter_liveness_lease_writes_total") - leases;
      double statusWrites = patchesWritten() - statuses;
      double heartbeats = metric("chrootbooter_agent_status_unchanged_total") - unchanged;
      System.out.printf(
          "over %d ms: %.0f heartbeats not written, %.0f Lease writes, %.0f status writes%n",
          window.toMillis(), heartbeats, leaseWrites, statusWrites);
      // A renewal every lost-after/3 at the earliest: at most 3 a lost-after, and one more.
      assertThat(leaseWrites).isBetween(2.0, 10.0);
      // lastSeen once a lost-after: 3, and one more.
      assertThat(statusWrites).isLessThanOrEqualTo(4.0);
      assertThat(heartbeats).isGreaterThanOrEqualTo(6.0);
    }
  }

  Lease agentLease(String machine) {
    return client.leases().inNamespace(ns).withName(LivenessRules.leaseName(machine)).get();
  }
}
