package io.chrootbooter.operator;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.BootTestStatus;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineTestResult;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckOutcome;
import io.chrootbooter.api.v1alpha1.MachineTestResult.MachineTestPhase;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.TestCommand;
import io.fabric8.kubernetes.api.model.Event;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * BootTests as a user runs them, with stand-in agents that do what the node agent does with a
 * desired state: return a running target (trigger SpecChange), boot the image, return it when it is
 * not healthy within its bootTimeout, and report every step and every heartbeat. Runs on every
 * backend with the other control-plane scenarios.
 */
public abstract class BootTestScenarios extends ImageStoreScenarios {
  private static final String M1 = "52:54:00:12:34:56";
  private static final String M2 = "52:54:00:12:34:57";
  private static final Duration RUN = Duration.ofSeconds(60);
  private static final ObjectMapper JSON = new ObjectMapper();

  /** A node agent as the operator sees it: it follows its stream and reports. */
  final class FollowingAgent implements AutoCloseable {
    final String mac;
    private final String token;
    private final Stream stream;
    private final Thread follower;
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
    final List<DesiredState> received = new CopyOnWriteArrayList<>();
    private String phase;
    private String currentImage;
    private Map<String, Object> lastReturn;
    private long applied = -1;
    private DesiredState.Identity appliedImage;
    private int boots;
    private int returns;

    /** Whether the targets it boots report healthy; an unhealthy one is returned at bootTimeout. */
    volatile boolean healthy = true;

    /** What each command of a desired state does in the target: its result, as the agent's. */
    volatile java.util.function.Function<TestCommand, TestCommand.Result> commands =
        c -> new TestCommand.Result(c.name(), 0, false, "ok\n", "", false, 5L, null);

    /** What the console of every boot of an image shows at once; null for nothing. */
    volatile String bootConsole;

    private List<TestCommand> toRun = List.of();
    private long consoleOffset;

    FollowingAgent(String mac, String running) throws Exception {
      this.mac = mac;
      this.token = sessionFor(mac);
      this.phase = running == null ? "Bootstrap" : "Running";
      this.currentImage = running;
      this.stream = new Stream(mac, token, null);
      report();
      timer.scheduleAtFixedRate(this::report, 500, 500, TimeUnit.MILLISECONDS);
      follower = new Thread(this::follow, "agent-" + mac);
      follower.setDaemon(true);
      follower.start();
    }

    private void follow() {
      try {
        while (!Thread.currentThread().isInterrupted()) {
          SseEvent event = stream.events.take();
          DesiredState state = JSON.readValue(event.data(), DesiredState.class);
          received.add(state);
          apply(state);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }

    private synchronized void apply(DesiredState state) {
      if (state.action() == null || state.action() == io.chrootbooter.protocol.Action.Hold) {
        return;
      }
      DesiredState.Identity image = state.runs() ? state.image().identity() : null;
      if (state.generation() == applied && java.util.Objects.equals(image, appliedImage)) {
        return; // a replay
      }
      applied = state.generation();
      appliedImage = image;
      if ("Running".equals(phase)) {
        returnBy("SpecChange", "the desired state changed");
      }
      if (!state.runs()) {
        phase = "Bootstrap";
        currentImage = null;
        report();
        return;
      }
      phase = "Downloading";
      report();
      phase = "Running";
      currentImage = state.image().name();
      int boot = ++boots;
      toRun = state.commands();
      consoleOffset = 0;
      if (bootConsole != null) {
        console(bootConsole);
      }
      report();
      if (!healthy && state.bootTimeout() != null) {
        Duration within = GoDuration.parse("bootTimeout", state.bootTimeout());
        timer.schedule(
            () -> {
              synchronized (this) {
                if (boots == boot && "Running".equals(phase)) {
                  returnBy("BootTimeout", "not healthy within " + within.toMillis() + " ms");
                  phase = "Bootstrap";
                  currentImage = null;
                  report();
                }
              }
            },
            within.toMillis(),
            TimeUnit.MILLISECONDS);
      }
    }

    /** Ctrl+Alt+F12 at the machine's console. */
    synchronized void hotkey() {
      returnBy("Hotkey", "Ctrl+Alt+F12");
      phase = "ConsoleOverride";
      currentImage = null;
      boots++;
      report();
    }

    private void returnBy(String trigger, String reason) {
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("trigger", trigger);
      r.put("reason", reason);
      // Distinct for every return, as the agent's clock makes them.
      r.put("time", Instant.now().plusNanos(++returns).toString());
      r.put("durationMillis", 42);
      r.put("forced", false);
      lastReturn = r;
    }

    synchronized String image() {
      return currentImage;
    }

    /** The running target writes {@code text} to its console; the agent sends it. */
    synchronized void console(String text) {
      byte[] bytes = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
      Map<String, Object> chunk = new LinkedHashMap<>();
      chunk.put("boot", "boot-" + mac.replace(":", "") + "-" + boots);
      chunk.put("image", "http://op/images/" + currentImage);
      chunk.put("started", "2026-01-01T00:00:00Z");
      chunk.put("offset", consoleOffset);
      chunk.put("data", java.util.Base64.getEncoder().encodeToString(bytes));
      chunk.put("firstWarning", 0);
      chunk.put("warnings", List.of());
      chunk.put("ended", false);
      consoleOffset += bytes.length;
      try {
        given()
            .header("Authorization", "Bearer " + token)
            .contentType("application/json")
            .body(JSON.writeValueAsString(chunk))
            .post("/agent/v1/machines/" + mac + "/console")
            .then()
            .statusCode(202);
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }

    synchronized String phase() {
      return phase;
    }

    synchronized void report() {
      Map<String, Object> report = new LinkedHashMap<>();
      report.put("phase", phase);
      if (currentImage != null) {
        report.put("currentImage", currentImage);
      }
      if (lastReturn != null) {
        report.put("lastReturn", lastReturn);
      }
      if (applied >= 0) {
        report.put("appliedGeneration", applied);
      }
      if ("Running".equals(phase) && healthy) {
        report.put("healthy", true);
        // As the agent does: the boot's commands run once the target is healthy.
        if (!toRun.isEmpty()) {
          report.put("commands", toRun.stream().map(commands).toList());
        }
      }
      report.put(
          "agent",
          Map.of("version", "0.1.0", "bootId", "boot-" + mac, "ip", "10.0.0.2", "kernel", "6.1.0"));
      try {
        given()
            .header("Authorization", "Bearer " + token)
            .contentType("application/json")
            .body(JSON.writeValueAsString(report))
            .post("/agent/v1/machines/" + mac + "/status")
            .then()
            .statusCode(202);
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }

    @Override
    public void close() throws Exception {
      timer.shutdownNow();
      timer.awaitTermination(5, TimeUnit.SECONDS);
      follower.interrupt();
      follower.join(2000);
      stream.close();
    }
  }

  @AfterEach
  void deleteBootTests() {
    client.resources(BootTest.class).inNamespace(ns).delete();
    await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> client.resources(BootTest.class).inNamespace(ns).list().getItems().isEmpty());
  }

  /** The examples, both images Ready; m1 declared on debian-12, m2 in the bootstrap. */
  private void readyExamples() {
    applyExamples();
    awaitImage("debian-12", i -> i.getStatus().phase() == BootImagePhase.Ready);
    awaitImage("busybox", i -> i.getStatus().phase() == BootImagePhase.Ready);
  }

  /** Creates a BootTest from YAML, as {@code kubectl apply -f} would. */
  private void applyTest(String yaml) {
    BootTest bt = client.getKubernetesSerialization().unmarshal(yaml.stripIndent(), BootTest.class);
    bt.getMetadata().setNamespace(ns);
    client.resource(bt).inNamespace(ns).create();
  }

  private BootTest test(String name) {
    return client.resources(BootTest.class).inNamespace(ns).withName(name).get();
  }

  private BootTest awaitTest(String name, java.util.function.Predicate<BootTest> ready) {
    return await()
        .atMost(RUN)
        .pollInterval(Duration.ofMillis(100))
        .until(() -> test(name), t -> t != null && t.getStatus() != null && ready.test(t));
  }

  private static boolean conditionTrue(BootTest t, String type) {
    return Conditions.isTrue(t.getStatus().conditions(), type);
  }

  private MachineBoot machine(String name) {
    return client.resources(MachineBoot.class).inNamespace(ns).withName(name).get();
  }

  private static MachineTestResult result(BootTest t, String machine) {
    return t.getStatus().machines().stream()
        .filter(m -> m.name().equals(machine))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no result for " + machine));
  }

  private static long active(BootTest t) {
    return t.getStatus().machines().stream()
        .filter(
            m -> m.phase() == MachineTestPhase.Switching || m.phase() == MachineTestPhase.Checking)
        .count();
  }

  @Test
  void bootTestSwitchesEachMachineInTurnChecksAndRestoresIt() throws Exception {
    readyExamples();
    try (FollowingAgent m1 = new FollowingAgent(M1, "debian-12");
        FollowingAgent m2 = new FollowingAgent(M2, null)) {
      awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
      awaitMachine("m2", m -> hasCondition(m, "Ready", "True", "InBootstrap"));
      long m1Generation = machine("m1").getMetadata().getGeneration();
      applyTest(
          """
          apiVersion: boot.chrootbooter.io/v1alpha1
          kind: BootTest
          metadata:
            name: busybox-smoke
          spec:
            imageRef: busybox
            machines:
              names: [m1, m2]
            parallelism: 1
            checks:
              - healthy: {timeout: 1s}
              - returns: {trigger: SpecChange, timeout: 30s}
          """);
      // While m1 is tested, its MachineBoot says so and it runs busybox; m2 waits its turn.
      long mostActive = 0;
      boolean sawHeld = false;
      Instant until = Instant.now().plus(RUN);
      BootTest t = null;
      while (Instant.now().isBefore(until)) {
        t = test("busybox-smoke");
        if (t != null && t.getStatus() != null) {
          mostActive = Math.max(mostActive, active(t));
          if (conditionTrue(t, "Complete") || conditionTrue(t, "Failed")) {
            break;
          }
          MachineBoot mb = machine("m1");
          if (mb.getStatus() != null && "busybox-smoke".equals(mb.getStatus().heldBy())) {
            sawHeld = sawHeld || hasCondition(mb, "HeldByTest", "True", "HeldByTest");
          }
        }
        Thread.sleep(100);
      }
      assertThat(t).isNotNull();
      assertThat(conditionTrue(t, "Complete")).as("Complete: %s", t.getStatus()).isTrue();
      assertThat(conditionTrue(t, "Failed")).isFalse();
      assertThat(conditionTrue(t, "Running")).isFalse();
      assertThat(mostActive).as("parallelism 1").isEqualTo(1);
      assertThat(sawHeld).as("m1's status named the test and HeldByTest while held").isTrue();
      assertThat(t.getStatus().phase()).isEqualTo(BootTestStatus.TestPhase.Passed);
      assertThat(t.getStatus().passed()).isEqualTo(2);
      assertThat(t.getStatus().failed()).isZero();
      for (String name : List.of("m1", "m2")) {
        MachineTestResult r = result(t, name);
        assertThat(r.phase()).isEqualTo(MachineTestPhase.Passed);
        assertThat(r.checks())
            .extracting(MachineTestResult.CheckResult::name)
            .containsExactly("healthy", "returns-SpecChange");
        assertThat(r.checks()).allMatch(c -> c.result() == CheckOutcome.Passed);
        assertThat(r.checks().get(0).message()).startsWith("busybox reported healthy ");
        assertThat(r.checks().get(1).message()).contains("returned by SpecChange");
        assertThat(r.timeline())
            .extracting(MachineTestResult.TimelineEntry::event)
            .anyMatch(e -> e.startsWith("running busybox"));
        assertThat(r.released()).isTrue();
      }
      assertThat(result(t, "m1").previousImage()).isEqualTo("debian-12");
      assertThat(columns(t)).containsEntry("Passed", "2").containsEntry("Failed", "0");

      // Restored: m1 runs debian-12 again, m2 waits in the bootstrap; specs untouched.
      await().atMost(Duration.ofSeconds(10)).until(() -> "debian-12".equals(m1.image()));
      await().atMost(Duration.ofSeconds(10)).until(() -> "Bootstrap".equals(m2.phase()));
      MachineBoot after =
          awaitMachine(
              "m1",
              m -> m.getStatus().heldBy() == null && hasCondition(m, "Ready", "True", "Running"));
      assertThat(after.getMetadata().getGeneration()).isEqualTo(m1Generation);
      assertThat(after.getSpec().imageRef()).isEqualTo("debian-12");
      assertThat(after.getMetadata().getAnnotations()).doesNotContainKey(TestHold.ANNOTATION);
      assertThat(after.getMetadata().getLabels()).doesNotContainKey(TestHold.LABEL);
      assertThat(Conditions.find(after.getStatus().conditions(), "HeldByTest")).isEmpty();
      // Each switch the agent saw had a generation of its own.
      assertThat(m1.received.stream().map(DesiredState::generation).distinct().count())
          .isGreaterThanOrEqualTo(4);
    }
  }

  @Test
  void anEditDuringTheTestWaitsAndDeletingTheTestReleasesTheMachine() throws Exception {
    readyExamples();
    try (FollowingAgent m2 = new FollowingAgent(M2, null)) {
      awaitMachine("m2", m -> hasCondition(m, "Ready", "True", "InBootstrap"));
      applyTest(
          """
          apiVersion: boot.chrootbooter.io/v1alpha1
          kind: BootTest
          metadata:
            name: waits-for-hotkey
          spec:
            imageRef: busybox
            machines:
              selector:
                matchLabels: {}
              names: [m2]
            checks:
              - returns: {trigger: Hotkey, timeout: 5m}
          """
              .replace("matchLabels: {}", "matchExpressions: [{key: absent, operator: Exists}]"));
      awaitTest("waits-for-hotkey", t -> result(t, "m2").phase() == MachineTestPhase.Checking);
      assertThat(m2.image()).isEqualTo("busybox");
      // While held, the machine may fetch the image under test, and only that one.
      given()
          .header("Authorization", "Bearer " + m2.token)
          .head("/images/" + ns + "/busybox")
          .then()
          .statusCode(200);
      given()
          .header("Authorization", "Bearer " + m2.token)
          .head("/images/" + ns + "/debian-12")
          .then()
          .statusCode(403);

      // The owner switches m2 to debian-12 meanwhile: the edit waits for the test.
      client
          .resources(MachineBoot.class)
          .inNamespace(ns)
          .withName("m2")
          .edit(
              m -> {
                m.setSpec(withImage(m.getSpec(), "debian-12"));
                return m;
              });
      Thread.sleep(1500);
      assertThat(m2.image()).isEqualTo("busybox");
      MachineBoot held = machine("m2");
      assertThat(held.getStatus().heldBy()).isEqualTo("waits-for-hotkey");
      assertThat(held.getSpec().imageRef()).isEqualTo("debian-12");

      // Deleting the test releases the machine at once, and the edit applies.
      client.resources(BootTest.class).inNamespace(ns).withName("waits-for-hotkey").delete();
      await().atMost(Duration.ofSeconds(20)).until(() -> "debian-12".equals(m2.image()));
      await().atMost(Duration.ofSeconds(20)).until(() -> test("waits-for-hotkey") == null);
      MachineBoot released =
          awaitMachine(
              "m2",
              m -> m.getStatus().heldBy() == null && hasCondition(m, "Ready", "True", "Running"));
      assertThat(released.getMetadata().getAnnotations()).doesNotContainKey(TestHold.ANNOTATION);
      awaitEvent(
          "m2",
          "Normal",
          "TestSwitch",
          "released by BootTest waits-for-hotkey, which was deleted: it follows its spec again");
    }
  }

  @Test
  void aHotkeyReturnPassesAndAnUnhealthyImageFailsTheTest() throws Exception {
    readyExamples();
    try (FollowingAgent m1 = new FollowingAgent(M1, "debian-12");
        FollowingAgent m2 = new FollowingAgent(M2, null)) {
      m2.healthy = false;
      m2.bootConsole = "Begin: Mounting root file system ... \u001b[31mdone\u001b[0m.\r\n";
      applyTest(
          """
          apiVersion: boot.chrootbooter.io/v1alpha1
          kind: BootTest
          metadata:
            name: hotkey
          spec:
            imageRef: busybox
            machines:
              names: [m1, m2]
            parallelism: 2
            afterTest: Bootstrap
            checks:
              - name: boots
                healthy: {timeout: 1s}
              - returns: {trigger: Hotkey, timeout: 30s}
          """);
      awaitTest(
          "hotkey",
          t ->
              result(t, "m1").phase() == MachineTestPhase.Checking
                  && result(t, "m1").checks().get(1).result() == CheckOutcome.Running);
      m1.hotkey();
      BootTest t = awaitTest("hotkey", x -> conditionTrue(x, "Failed"));
      assertThat(conditionTrue(t, "Complete")).isFalse();
      assertThat(t.getStatus().phase()).isEqualTo(BootTestStatus.TestPhase.Failed);
      assertThat(t.getStatus().passed()).isEqualTo(1);
      assertThat(t.getStatus().failed()).isEqualTo(1);
      MachineTestResult passed = result(t, "m1");
      assertThat(passed.phase()).isEqualTo(MachineTestPhase.Passed);
      assertThat(passed.checks().get(1).message()).contains("returned by Hotkey");
      MachineTestResult failed = result(t, "m2");
      assertThat(failed.phase()).isEqualTo(MachineTestPhase.Failed);
      assertThat(failed.checks().get(0).result()).isEqualTo(CheckOutcome.Failed);
      assertThat(failed.checks().get(0).message()).contains("BootTimeout");
      assertThat(failed.checks().get(1).result()).isEqualTo(CheckOutcome.Skipped);
      String message = Conditions.find(t.getStatus().conditions(), "Failed").get().getMessage();
      assertThat(message).contains("m2 (Failed: boots: ");
      // The JUnit report on the admin port: one testcase per machine and check.
      String xml =
          admin()
              .get("/tests/" + ns + "/hotkey/junit.xml")
              .then()
              .statusCode(200)
              .contentType(org.hamcrest.Matchers.startsWith("application/xml"))
              .extract()
              .asString();
      assertThat(xml)
          .contains("<testsuites name=\"BootTest " + ns + "/hotkey\" tests=\"4\" failures=\"1\"")
          .contains("<testcase name=\"boots\" classname=\"hotkey.m2\"")
          .contains("<failure message=\"not healthy within 1s: returned by BootTimeout")
          // A failure shows the console's last lines, the terminal's colours taken out.
          .contains("<system-out>console:\nBegin: Mounting root file system ... done.\n");
      assertThat(failed.checks().get(0).output())
          .isEqualTo("console:\nBegin: Mounting root file system ... done.\n");
      admin().get("/tests/" + ns + "/nothing/junit.xml").then().statusCode(404);
      admin().get("/tests/" + ns + "/Bad_Name/junit.xml").then().statusCode(400);
      given().get("/tests/" + ns + "/hotkey/junit.xml").then().statusCode(404);
      // afterTest: Bootstrap sets both specs; the agents follow.
      awaitMachine("m1", m -> m.getSpec().imageRef() == null && m.getStatus().heldBy() == null);
      await().atMost(Duration.ofSeconds(10)).until(() -> "Bootstrap".equals(m1.phase()));
      await().atMost(Duration.ofSeconds(10)).until(() -> "Bootstrap".equals(m2.phase()));
    }
  }

  @Test
  void commandAndConsoleChecksPassWithTheCommandsOutputInStatusAndJunit() throws Exception {
    readyExamples();
    try (FollowingAgent m1 = new FollowingAgent(M1, null)) {
      m1.bootConsole = "[\u001b[0;32m  OK  \u001b[0m] Reached target multi-user\r\nm1 login: ";
      m1.commands =
          c ->
              c.run().equals(List.of("uname", "-r"))
                  ? new TestCommand.Result(
                      c.name(), 0, false, "6.1.0-18-amd64\n", "", false, 7L, null)
                  : new TestCommand.Result(
                      c.name(), 127, false, "", "not found\n", false, 1L, null);
      applyTest(
          """
          apiVersion: boot.chrootbooter.io/v1alpha1
          kind: BootTest
          metadata:
            name: checks-pass
          spec:
            imageRef: busybox
            machines:
              names: [m1]
            checks:
              - healthy: {timeout: 1s}
              - name: kernel
                command: {run: [uname, -r], timeout: 30s}
              - consoleMatches: {pattern: 'Reached target multi-user', timeout: 20s}
              - name: no-panic
                consoleNever: {pattern: 'Kernel panic|BUG:'}
          """);
      BootTest t = awaitTest("checks-pass", x -> conditionTrue(x, "Complete"));
      MachineTestResult r = result(t, "m1");
      assertThat(r.phase()).isEqualTo(MachineTestPhase.Passed);
      assertThat(r.checks())
          .extracting(MachineTestResult.CheckResult::name)
          .containsExactly("healthy", "kernel", "consoleMatches", "no-panic");
      assertThat(r.checks()).allMatch(c -> c.result() == CheckOutcome.Passed);
      var kernel = r.checks().get(1);
      assertThat(kernel.kind()).isEqualTo("command");
      assertThat(kernel.exitCode()).isZero();
      assertThat(kernel.message()).startsWith("exit code 0 after 7 ms: 6.1.0-18-amd64");
      assertThat(kernel.output()).isEqualTo("stdout:\n6.1.0-18-amd64\n");
      // The console as a user reads it: the terminal's colours taken out.
      assertThat(r.checks().get(2).message())
          .startsWith("the console showed \"Reached target multi-user\"");
      assertThat(r.checks().get(2).output())
          .contains("[  OK  ] Reached target multi-user\nm1 login: ");
      assertThat(r.checks().get(3).message()).isEqualTo("not seen while the machine was tested");
      // The agent was sent the command with the boot of the image under test.
      assertThat(m1.received)
          .filteredOn(d -> d.runs() && "busybox".equals(d.image().name()))
          .first()
          .satisfies(
              d ->
                  assertThat(d.commands())
                      .containsExactly(new TestCommand("kernel", List.of("uname", "-r"), "30s")));
      String xml =
          admin()
              .get("/tests/" + ns + "/checks-pass/junit.xml")
              .then()
              .statusCode(200)
              .extract()
              .asString();
      assertThat(xml)
          .contains("tests=\"4\" failures=\"0\" errors=\"0\"")
          .contains("<testcase name=\"kernel\" classname=\"checks-pass.m1\" time=\"")
          .contains("<system-out>stdout:\n6.1.0-18-amd64\n</system-out>");
    }
  }

  @Test
  void aFailingCommandAndAPanicOnTheConsoleFailTheirMachinesWithWhatTheyShowed() throws Exception {
    readyExamples();
    try (FollowingAgent m1 = new FollowingAgent(M1, null);
        FollowingAgent m2 = new FollowingAgent(M2, null)) {
      m1.commands =
          c ->
              new TestCommand.Result(
                  c.name(), 3, false, "partial\n", "disk <full>\n", true, 9L, null);
      applyTest(
          """
          apiVersion: boot.chrootbooter.io/v1alpha1
          kind: BootTest
          metadata:
            name: checks-fail
          spec:
            imageRef: busybox
            machines:
              names: [m1, m2]
            parallelism: 2
            checks:
              - name: no-panic
                consoleNever: {pattern: 'Kernel panic|BUG:'}
              - healthy: {timeout: 1s}
              - name: fsck
                command: {run: [sh, -c, 'fsck -n /'], timeout: 10s}
              - returns: {trigger: Hotkey, timeout: 5m}
          """);
      // m2's kernel panics while its test waits for the hotkey.
      awaitTest(
          "checks-fail",
          t ->
              result(t, "m2").phase() == MachineTestPhase.Checking
                  && result(t, "m2").checks().get(3).result() == CheckOutcome.Running);
      m2.console("[   42.000000] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n");
      BootTest t = awaitTest("checks-fail", x -> conditionTrue(x, "Failed"));
      assertThat(t.getStatus().failed()).isEqualTo(2);

      MachineTestResult one = result(t, "m1");
      assertThat(one.phase()).isEqualTo(MachineTestPhase.Failed);
      var fsck = one.checks().get(2);
      assertThat(fsck.result()).isEqualTo(CheckOutcome.Failed);
      assertThat(fsck.exitCode()).isEqualTo(3);
      assertThat(fsck.message()).isEqualTo("exit code 3, expected 0 after 9 ms: partial");
      assertThat(fsck.output())
          .isEqualTo(
              "stdout:\npartial\nstderr:\ndisk <full>\n[output cut at 4096 bytes per stream]\n");
      assertThat(one.checks().get(3).result()).isEqualTo(CheckOutcome.Skipped);
      // The watch ended with the machine's test: nothing showed on m1's console.
      assertThat(one.checks().get(0).result()).isEqualTo(CheckOutcome.Passed);

      MachineTestResult two = result(t, "m2");
      assertThat(two.phase()).isEqualTo(MachineTestPhase.Failed);
      var panic = two.checks().get(0);
      assertThat(panic.result()).isEqualTo(CheckOutcome.Failed);
      assertThat(panic.message()).isEqualTo("the console showed \"Kernel panic\"");
      assertThat(panic.output()).contains("Kernel panic - not syncing: VFS");
      assertThat(two.checks().get(3).result()).isEqualTo(CheckOutcome.Error);
      assertThat(two.message()).startsWith("no-panic: the console showed");

      String xml =
          admin()
              .get("/tests/" + ns + "/checks-fail/junit.xml")
              .then()
              .statusCode(200)
              .extract()
              .asString();
      assertThat(xml)
          .contains("<failure message=\"exit code 3, expected 0 after 9 ms: partial\"")
          .contains("<system-out>stdout:\npartial\nstderr:\ndisk &lt;full&gt;\n")
          .contains("<failure message=\"the console showed &quot;Kernel panic&quot;\"")
          .contains("Kernel panic - not syncing: VFS: Unable to mount root fs");
    }
  }

  @Test
  void anInvalidBootTestFailsNamingFieldValueAndRule() {
    readyExamples();
    Map<String, Object> spec = new LinkedHashMap<>();
    spec.put("imageRef", "Busybox");
    spec.put("machines", Map.of("names", List.of("m1")));
    spec.put("parallelism", 0);
    spec.put("timeout", "soon");
    List<Object> checks = new ArrayList<>();
    checks.add(Map.of("healthy", Map.of(), "returns", Map.of("trigger", "Hotkey")));
    spec.put("checks", checks);
    var refused = createRaw("BootTest", "bad", spec);
    if (refused.isPresent()) {
      // An API server that applies the schema says so at once.
      assertThat(refused.get()).contains("parallelism").contains("imageRef");
      return;
    }
    BootTest t = awaitTest("bad", x -> conditionTrue(x, "Failed"));
    var failed = Conditions.find(t.getStatus().conditions(), "Failed").get();
    assertThat(failed.getReason()).isEqualTo("InvalidSpec");
    assertThat(failed.getMessage())
        .contains("spec.imageRef: \"Busybox\" is not an object name")
        .contains("spec.parallelism: 0 is not between 1 and 1000")
        .contains("spec.timeout: \"soon\" is not a duration")
        .contains(
            "spec.checks[0]: set exactly one of healthy, command, consoleMatches, consoleNever and returns");
    assertThat(machine("m1").getMetadata().getAnnotations()).doesNotContainKey(TestHold.ANNOTATION);
  }

  @Test
  void aHoldWhoseTestNoLongerExistsIsReleased() {
    readyExamples();
    awaitMachine("m2", m -> m.getStatus().phase() != null);
    // Left behind by a BootTest deleted without its finalizer running.
    TestHold stale =
        new TestHold("gone", 1_800_000_000_000L, "busybox", null, machine("m2").getSpec());
    client
        .resources(MachineBoot.class)
        .inNamespace(ns)
        .withName("m2")
        .edit(
            m -> {
              m.getMetadata().getAnnotations().put(TestHold.ANNOTATION, stale.toJson());
              return m;
            });
    awaitMachine(
        "m2",
        m ->
            m.getMetadata().getAnnotations() == null
                || !m.getMetadata().getAnnotations().containsKey(TestHold.ANNOTATION));
    awaitEvent(
        "m2",
        "Warning",
        "TestSwitch",
        "released from BootTest gone, which no longer exists: it follows its spec again");
  }

  // --- guarded rollout ---------------------------------------------------------------------

  /** MachineBoots m3, m4… of the fleet a promotion goes to, each declared on debian-12. */
  private static final List<String> FLEET = List.of("m3", "m4", "m5", "m6");

  private static String macOf(String name) {
    return "52:54:00:12:35:0" + name.substring(1);
  }

  /** The fleet's MachineBoots, labelled fleet=web, with a stand-in agent each running debian-12. */
  private Map<String, FollowingAgent> fleet(List<AutoCloseable> close) throws Exception {
    for (String name : FLEET) {
      io.fabric8.kubernetes.api.model.GenericKubernetesResource raw =
          new io.fabric8.kubernetes.api.model.GenericKubernetesResource();
      raw.setApiVersion(io.chrootbooter.api.v1alpha1.BootImage.GROUP + "/v1alpha1");
      raw.setKind("MachineBoot");
      raw.setMetadata(
          new io.fabric8.kubernetes.api.model.ObjectMetaBuilder()
              .withName(name)
              .withNamespace(ns)
              .withLabels(Map.of("fleet", "web"))
              .build());
      raw.setAdditionalProperty("spec", Map.of("macAddress", macOf(name), "imageRef", "debian-12"));
      client.resource(raw).inNamespace(ns).create();
    }
    Map<String, FollowingAgent> agents = new LinkedHashMap<>();
    for (String name : FLEET) {
      FollowingAgent agent = new FollowingAgent(macOf(name), "debian-12");
      close.add(agent);
      agents.put(name, agent);
    }
    for (String name : FLEET) {
      awaitMachine(name, m -> hasCondition(m, "Ready", "True", "Running"));
    }
    return agents;
  }

  private static void closeAll(List<AutoCloseable> close) throws Exception {
    for (AutoCloseable c : close) {
      c.close();
    }
  }

  /** The fleet's MachineBoots the test holds now, by name. */
  private List<String> heldFleet(String test) {
    return client
        .resources(MachineBoot.class)
        .inNamespace(ns)
        .withLabel(TestHold.LABEL, test)
        .list()
        .getItems()
        .stream()
        .map(m -> m.getMetadata().getName())
        .filter(FLEET::contains)
        .toList();
  }

  private static MachineTestResult promoted(BootTest t, String machine) {
    return t.getStatus().promotion().machines().stream()
        .filter(m -> m.name().equals(machine))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no promotion result for " + machine));
  }

  private static String conditionMessage(BootTest t, String type) {
    return Conditions.find(t.getStatus().conditions(), type).map(c -> c.getMessage()).orElse("");
  }

  private List<Event> testEvents(String test) {
    return client.v1().events().inNamespace(ns).list().getItems().stream()
        .filter(e -> e.getInvolvedObject().getName().equals(test))
        .filter(e -> "BootTest".equals(e.getInvolvedObject().getKind()))
        .toList();
  }

  @Test
  void aPromotionSwitchesAtMostMaxUnavailableAtATimeAndSetsTheImageOnEachMachine()
      throws Exception {
    readyExamples();
    List<AutoCloseable> close = new ArrayList<>();
    try {
      FollowingAgent m1 = new FollowingAgent(M1, "debian-12");
      close.add(m1);
      Map<String, FollowingAgent> agents = fleet(close);
      awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
      applyTest(
          """
          apiVersion: boot.chrootbooter.io/v1alpha1
          kind: BootTest
          metadata:
            name: rollout
          spec:
            imageRef: busybox
            machines:
              names: [m1]
            checks:
              - healthy: {timeout: 1s}
            promote:
              promoteTo:
                selector:
                  matchLabels: {fleet: web}
              maxUnavailable: 2
              failureThreshold: 1
          """);
      // The fleet waits for the test; then never more than two of it are held at once.
      BootTest waiting = awaitTest("rollout", t -> t.getStatus().promotion() != null);
      assertThat(waiting.getStatus().promotion().total()).isEqualTo(4);
      int mostHeld = 0;
      boolean sawProgress = false;
      Instant until = Instant.now().plus(RUN);
      BootTest t = null;
      while (Instant.now().isBefore(until)) {
        mostHeld = Math.max(mostHeld, heldFleet("rollout").size());
        t = test("rollout");
        if (t.getStatus() != null && t.getStatus().promotion() != null) {
          String progress = t.getStatus().promotion().progress();
          sawProgress = sawProgress || "2/4 promoted".equals(progress);
          if (conditionTrue(t, "Complete") || conditionTrue(t, "Failed")) {
            break;
          }
        }
        Thread.sleep(50);
      }
      assertThat(t).isNotNull();
      assertThat(conditionTrue(t, "Complete")).as("Complete: %s", t.getStatus()).isTrue();
      assertThat(mostHeld).as("maxUnavailable 2").isEqualTo(2);
      assertThat(sawProgress).as("the progress showed 2/4 between the batches").isTrue();
      assertThat(conditionTrue(t, "Promoted")).isTrue();
      assertThat(conditionTrue(t, "RolledBack")).isFalse();
      assertThat(t.getStatus().promotion().phase())
          .isEqualTo(io.chrootbooter.api.v1alpha1.PromotionStatus.PromotionPhase.Promoted);
      assertThat(t.getStatus().promotion().progress()).isEqualTo("4/4 promoted");
      assertThat(t.getStatus().promotion().batch()).isEqualTo(2);
      assertThat(t.getStatus().passed()).isEqualTo(5);
      assertThat(columns(t))
          .containsEntry("Passed", "5")
          .containsEntry("Failed", "0")
          .containsEntry("Promoted", "4/4 promoted");
      for (String name : FLEET) {
        MachineTestResult r = promoted(t, name);
        assertThat(r.phase()).isEqualTo(MachineTestPhase.Passed);
        assertThat(r.previousImage()).isEqualTo("debian-12");
        assertThat(r.checks().get(0).message()).startsWith("busybox reported healthy ");
        // Promoted: its spec names the image, the test no longer holds it, it runs busybox.
        MachineBoot mb =
            awaitMachine(
                name,
                m -> m.getStatus().heldBy() == null && hasCondition(m, "Ready", "True", "Running"));
        assertThat(mb.getSpec().imageRef()).isEqualTo("busybox");
        assertThat(mb.getMetadata().getAnnotations()).doesNotContainKey(TestHold.ANNOTATION);
        await()
            .atMost(Duration.ofSeconds(10))
            .until(() -> "busybox".equals(agents.get(name).image()));
      }
      // The tested machine is restored (afterTest: Restore).
      await().atMost(Duration.ofSeconds(10)).until(() -> "debian-12".equals(m1.image()));
      assertThat(machine("m1").getSpec().imageRef()).isEqualTo("debian-12");
      // Events a user reads with kubectl describe bt/rollout.
      awaitEvent(
          "rollout",
          "Normal",
          "PromotionStarted",
          "promoting BootImage busybox to 4 machines, at most 2 at a time; it stops at 1"
              + " failure");
      awaitEvent(
          "rollout", "Normal", "PromotionBatch", "batch 1: switching m3, m4 to BootImage busybox");
      awaitEvent(
          "rollout", "Normal", "PromotionBatch", "batch 2: switching m5, m6 to BootImage busybox");
      awaitEvent("rollout", "Normal", "Promoted", "4/4 promoted");
    } finally {
      closeAll(close);
    }
  }

  @Test
  void aFailedCheckOnAPromotedMachineStopsThePromotionAndRollsBackTheBatch() throws Exception {
    readyExamples();
    List<AutoCloseable> close = new ArrayList<>();
    try {
      FollowingAgent m1 = new FollowingAgent(M1, "debian-12");
      close.add(m1);
      Map<String, FollowingAgent> agents = fleet(close);
      agents.get("m4").healthy = false; // busybox does not come up on m4
      awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
      applyTest(
          """
          apiVersion: boot.chrootbooter.io/v1alpha1
          kind: BootTest
          metadata:
            name: guarded
          spec:
            imageRef: busybox
            machines:
              names: [m1]
            checks:
              - healthy: {timeout: 1s}
              - returns: {trigger: Hotkey, timeout: 1m}
            promote:
              promoteTo:
                names: [m3, m4, m5, m6]
              maxUnavailable: 2
              failureThreshold: 1
          """);
      awaitTest(
          "guarded",
          t ->
              result(t, "m1").phase() == MachineTestPhase.Checking
                  && result(t, "m1").checks().get(1).result() == CheckOutcome.Running);
      m1.hotkey();
      // m3 passes its healthy check and waits for its Hotkey; m4 is never healthy.
      BootTest t = awaitTest("guarded", x -> conditionTrue(x, "Failed"));
      assertThat(conditionTrue(t, "Complete")).isFalse();
      assertThat(conditionTrue(t, "Promoted")).isFalse();
      assertThat(conditionTrue(t, "RolledBack")).as("%s", t.getStatus()).isTrue();
      var promotion = t.getStatus().promotion();
      assertThat(promotion.phase())
          .isEqualTo(io.chrootbooter.api.v1alpha1.PromotionStatus.PromotionPhase.Stopped);
      assertThat(promotion.progress()).isEqualTo("0/4 promoted");
      assertThat(columns(t)).containsEntry("Promoted", "0/4 promoted");
      assertThat(promoted(t, "m4").phase()).isEqualTo(MachineTestPhase.Failed);
      assertThat(promoted(t, "m4").checks().get(0).message()).contains("BootTimeout");
      assertThat(promoted(t, "m3").phase()).isEqualTo(MachineTestPhase.Error);
      assertThat(promoted(t, "m3").message()).contains("failureThreshold 1 reached");
      assertThat(promotion.rolledBack())
          .extracting(io.chrootbooter.api.v1alpha1.PromotionStatus.RolledBack::name)
          .containsExactlyInAnyOrder("m3", "m4");
      assertThat(promotion.rolledBack())
          .allMatch(r -> "debian-12".equals(r.previousImage()))
          .anyMatch(r -> r.name().equals("m4") && r.reason().contains("BootTimeout"))
          .anyMatch(r -> r.name().equals("m3") && r.reason().startsWith("switching when"));
      assertThat(promoted(t, "m5").message()).isEqualTo("not promoted: the promotion stopped");
      assertThat(conditionMessage(t, "Failed")).contains("0/4 promoted").contains("rolled back");
      // Both go back to what their spec says; m5 and m6 were never switched.
      for (String name : List.of("m3", "m4")) {
        await()
            .atMost(Duration.ofSeconds(20))
            .until(() -> "debian-12".equals(agents.get(name).image()));
        MachineBoot mb =
            awaitMachine(
                name,
                m -> m.getStatus().heldBy() == null && hasCondition(m, "Ready", "True", "Running"));
        assertThat(mb.getSpec().imageRef()).isEqualTo("debian-12");
        awaitEvent(
            name,
            "Warning",
            "RolledBack",
            name.equals("m4")
                ? "failed as BootTest guarded promoted BootImage busybox ("
                    + promoted(t, "m4").message()
                    + "): rolled back, it follows its spec again"
                : "BootTest guarded stopped its promotion of BootImage busybox"
                    + " (failureThreshold 1 reached (1 failure)): rolled back, it follows its"
                    + " spec again");
      }
      for (String name : List.of("m5", "m6")) {
        assertThat(agents.get(name).received)
            .noneMatch(d -> d.runs() && "busybox".equals(d.image().name()));
        assertThat(machine(name).getSpec().imageRef()).isEqualTo("debian-12");
        assertThat(machine(name).getMetadata().getLabels()).doesNotContainKey(TestHold.LABEL);
      }
      assertThat(testEvents("guarded"))
          .anyMatch(
              e ->
                  e.getReason().equals("RolledBack")
                      && e.getMessage().startsWith("m4 rolled back: healthy: not healthy within"))
          .anyMatch(
              e ->
                  e.getReason().equals("RolledBack")
                      && e.getMessage()
                          .equals("m3 rolled back: switching when the promotion stopped"))
          .anyMatch(
              e ->
                  e.getReason().equals("PromotionStopped")
                      && e.getType().equals("Warning")
                      && e.getMessage().startsWith("stopped: failureThreshold 1 reached"));
      // The JUnit report has the promoted machines as well.
      String xml =
          admin()
              .get("/tests/" + ns + "/guarded/junit.xml")
              .then()
              .statusCode(200)
              .extract()
              .asString();
      assertThat(xml).contains("classname=\"guarded.m4\"").contains("BootTimeout");
    } finally {
      closeAll(close);
    }
  }

  @Test
  void deletingATestMidPromotionReleasesEveryMachineAndPromotedOnesKeepTheImage() throws Exception {
    readyExamples();
    List<AutoCloseable> close = new ArrayList<>();
    try {
      FollowingAgent m1 = new FollowingAgent(M1, "debian-12");
      close.add(m1);
      Map<String, FollowingAgent> agents = fleet(close);
      awaitMachine("m1", m -> hasCondition(m, "Ready", "True", "Running"));
      applyTest(
          """
          apiVersion: boot.chrootbooter.io/v1alpha1
          kind: BootTest
          metadata:
            name: interrupted
          spec:
            imageRef: busybox
            machines:
              names: [m1]
            checks:
              - returns: {trigger: Hotkey, timeout: 5m}
            promote:
              promoteTo:
                names: [m3, m4, m5]
          """);
      awaitTest("interrupted", t -> result(t, "m1").phase() == MachineTestPhase.Checking);
      m1.hotkey();
      awaitTest(
          "interrupted",
          t ->
              t.getStatus().promotion() != null
                  && promoted(t, "m3").phase() == MachineTestPhase.Checking);
      agents.get("m3").hotkey();
      BootTest t =
          awaitTest(
              "interrupted",
              x ->
                  promoted(x, "m4").phase() == MachineTestPhase.Checking
                      && "1/3 promoted".equals(x.getStatus().promotion().progress()));
      assertThat(heldFleet("interrupted")).containsExactly("m4");
      assertThat(conditionTrue(t, "Running")).isTrue();
      assertThat(conditionMessage(t, "Running")).contains("batch 2: m4; 1/3 promoted");

      client.resources(BootTest.class).inNamespace(ns).withName("interrupted").delete();
      await().atMost(Duration.ofSeconds(20)).until(() -> test("interrupted") == null);
      // m4, in flight, goes back to its spec; m3, promoted, keeps busybox; m5 was never held.
      await()
          .atMost(Duration.ofSeconds(20))
          .until(() -> "debian-12".equals(agents.get("m4").image()));
      assertThat(heldFleet("interrupted")).isEmpty();
      assertThat(machine("m4").getSpec().imageRef()).isEqualTo("debian-12");
      assertThat(machine("m3").getSpec().imageRef()).isEqualTo("busybox");
      assertThat(agents.get("m3").image()).isEqualTo("busybox");
      assertThat(agents.get("m5").image()).isEqualTo("debian-12");
      assertThat(agents.get("m5").received)
          .noneMatch(d -> d.runs() && "busybox".equals(d.image().name()));
      awaitEvent(
          "m4",
          "Normal",
          "TestSwitch",
          "released by BootTest interrupted, which was deleted: it follows its spec again");
    } finally {
      closeAll(close);
    }
  }

  @Test
  void aPromotionToATestedMachineIsRefusedBeforeAnythingIsHeld() {
    readyExamples();
    awaitMachine("m1", m -> m.getStatus().phase() != null);
    applyTest(
        """
        apiVersion: boot.chrootbooter.io/v1alpha1
        kind: BootTest
        metadata:
          name: overlapping
        spec:
          imageRef: busybox
          machines:
            selector:
              matchExpressions: [{key: absent, operator: DoesNotExist}]
          checks:
            - healthy: {}
          promote:
            promoteTo:
              names: [m2]
        """);
    BootTest t = awaitTest("overlapping", x -> conditionTrue(x, "Failed"));
    var failed = Conditions.find(t.getStatus().conditions(), "Failed").get();
    assertThat(failed.getReason()).isEqualTo("InvalidSpec");
    assertThat(failed.getMessage())
        .isEqualTo(
            "spec.promote.promoteTo: selects m2, which spec.machines tests too; a machine is"
                + " either tested or promoted");
    assertThat(t.getStatus().machines()).isEmpty();
    assertThat(machine("m1").getMetadata().getLabels()).doesNotContainKey(TestHold.LABEL);
    assertThat(machine("m2").getMetadata().getLabels()).doesNotContainKey(TestHold.LABEL);

    Map<String, Object> spec = new LinkedHashMap<>();
    spec.put("imageRef", "busybox");
    spec.put("machines", Map.of("names", List.of("m1")));
    spec.put("checks", List.of(Map.of("healthy", Map.of())));
    spec.put(
        "promote", Map.of("promoteTo", Map.of("names", List.of("m1", "m2")), "maxUnavailable", 0));
    var refused = createRaw("BootTest", "bad-promotion", spec);
    if (refused.isPresent()) {
      assertThat(refused.get()).contains("maxUnavailable");
      return;
    }
    BootTest bad = awaitTest("bad-promotion", x -> conditionTrue(x, "Failed"));
    assertThat(conditionMessage(bad, "Failed"))
        .contains(
            "spec.promote.promoteTo.names[0]: \"m1\" is in spec.machines.names too; a machine is"
                + " either tested or promoted")
        .contains("spec.promote.maxUnavailable: 0 is not between 1 and 1000");
  }
}
