package io.chrootbooter.operator.agentapi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.Prefetch;
import io.chrootbooter.protocol.ReturnTrigger;
import io.chrootbooter.protocol.StatusReport;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The operator accepts every phase and knows every trigger the protocol defines: a value an agent
 * may send that the operator would refuse, or count as {@code Other}, fails here.
 */
class AgentApiContractTest {
  private final ObjectMapper strict =
      new ObjectMapper().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  @ParameterizedTest
  @EnumSource(MachinePhase.class)
  void everyPhaseIsAccepted(MachinePhase phase) throws Exception {
    StatusReport report =
        strict.readValue("{\"phase\":\"" + phase.name() + "\"}", StatusReport.class);
    assertThat(report.phase()).isEqualTo(phase);
    assertThat(StatusReportRules.violations(report)).isEmpty();
  }

  @ParameterizedTest
  @EnumSource(ReturnTrigger.class)
  void everyTriggerIsRecordedUnderItsOwnName(ReturnTrigger trigger) {
    assertThat(Returns.label(trigger.name())).isEqualTo(trigger.name());
  }

  @org.junit.jupiter.api.Test
  void aConsoleChunkAsTheAgentWritesItIsAccepted() throws Exception {
    var chunk =
        new io.chrootbooter.protocol.ConsoleChunk(
            "0f1e-3", "http://i/x", "2026-01-01T00:00:00Z", 12, "aGk=", 0, List.of("BUG: x"), true);
    var read =
        strict.readValue(
            new ObjectMapper().writeValueAsBytes(chunk),
            io.chrootbooter.protocol.ConsoleChunk.class);
    assertThat(read).isEqualTo(chunk);
    assertThat(ConsoleResource.violations(read)).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(strings = {"TargetExited", "Invented"})
  void anyOtherTriggerIsOther(String trigger) {
    assertThat(Returns.label(trigger)).isEqualTo("Other");
  }

  @ParameterizedTest
  @ValueSource(strings = {"Dancing", "running"})
  void anUnknownPhaseIsNamedWithTheAcceptedOnes(String phase) {
    assertThatThrownBy(() -> strict.readValue("{\"phase\":\"" + phase + "\"}", StatusReport.class))
        .isInstanceOfSatisfying(
            InvalidFormatException.class,
            e ->
                assertThat(AgentResource.invalidValue(e))
                    .isEqualTo(
                        "phase: \""
                            + phase
                            + "\" is not one of [Pending, PXEBooting, Bootstrap, Downloading,"
                            + " Verifying, Mounting, Running, Returning, ConsoleOverride,"
                            + " Failed]"));
  }

  @ParameterizedTest
  @EnumSource(Confinement.class)
  void theRunningTargetsConfinementReachesTheStatusAndGoesWithIt(Confinement confinement)
      throws Exception {
    StatusReport running =
        strict.readValue(
            "{\"phase\":\"Running\",\"currentImage\":\"debian\",\"confinement\":\""
                + confinement
                + "\"}",
            StatusReport.class);
    assertThat(StatusReportRules.violations(running)).isEmpty();
    MachineBoot mb = new MachineBoot();
    mb.setMetadata(new ObjectMetaBuilder().withName("m1").withNamespace("lab").build());

    MachineBoot written =
        StatusReports.withReport(mb, new StatusReports.Received(running, Instant.now()), null);
    assertThat(written.getStatus().confinement()).isEqualTo(confinement);

    StatusReport bootstrap = StatusReport.builder().phase(MachinePhase.Bootstrap).build();
    assertThat(StatusReports.changes(written.getStatus(), bootstrap)).isTrue();
    assertThat(
            StatusReports.withReport(
                    written, new StatusReports.Received(bootstrap, Instant.now()), null)
                .getStatus()
                .confinement())
        .as("no target runs in the bootstrap")
        .isNull();
  }

  @org.junit.jupiter.api.Test
  void aBootTestsCommandResultsReachTheStatusAndHostileOnesAreRefused() throws Exception {
    StatusReport running =
        strict.readValue(
            "{\"phase\":\"Running\",\"currentImage\":\"debian\",\"healthy\":true,"
                + "\"commands\":[{\"name\":\"kernel\",\"exitCode\":0,\"timedOut\":false,"
                + "\"stdout\":\"6.1.0\\n\",\"stderr\":\"\\u0000\\u001b[31m\",\"truncated\":false,"
                + "\"durationMillis\":3}]}",
            StatusReport.class);
    assertThat(StatusReportRules.violations(running)).isEmpty();
    MachineBoot mb = new MachineBoot();
    mb.setMetadata(new ObjectMetaBuilder().withName("m1").withNamespace("lab").build());
    MachineBoot written =
        StatusReports.withReport(mb, new StatusReports.Received(running, Instant.now()), null);
    assertThat(written.getStatus().testCommands()).isEqualTo(running.commands());
    // The next report without them (the target returned) takes them away.
    StatusReport bootstrap = StatusReport.builder().phase(MachinePhase.Bootstrap).build();
    assertThat(StatusReports.changes(written.getStatus(), running)).isFalse();
    assertThat(StatusReports.changes(written.getStatus(), bootstrap)).isTrue();
    assertThat(
            StatusReports.withReport(
                    written, new StatusReports.Received(bootstrap, Instant.now()), null)
                .getStatus()
                .testCommands())
        .isNull();

    StatusReport hostile =
        running.withCommands(
            List.of(
                new io.chrootbooter.protocol.TestCommand.Result(
                    "../x", 300, false, "x".repeat(4097), null, false, -1L, "bad\nline")));
    assertThat(StatusReportRules.violations(hostile))
        .containsExactly(
            "commands[0].name: \"../x\" is not a check name",
            "commands[0].exitCode: 300 is not between 0 and 255",
            "commands[0].durationMillis: -1 is negative",
            "commands[0].stdout: 4097 characters; at most 4096",
            "commands[0].error: \"bad\\u000aline\" holds characters other than printable ASCII");
  }

  @org.junit.jupiter.api.Test
  void aLazyImagesPrefetchReachesTheStatusAndHostileOnesAreRefused() throws Exception {
    StatusReport running =
        strict.readValue(
            "{\"phase\":\"Running\",\"currentImage\":\"debian\",\"prefetch\":"
                + "{\"bytesLocal\":1048576,\"total\":8388608,\"fullyLocal\":false}}",
            StatusReport.class);
    assertThat(StatusReportRules.violations(running)).isEmpty();
    MachineBoot mb = new MachineBoot();
    mb.setMetadata(new ObjectMetaBuilder().withName("m1").withNamespace("lab").build());
    MachineBoot written =
        StatusReports.withReport(mb, new StatusReports.Received(running, Instant.now()), null);
    assertThat(written.getStatus().prefetch())
        .isEqualTo(new Prefetch(1048576L, 8388608L, false, null));
    assertThat(StatusReports.changes(written.getStatus(), running)).isFalse();
    StatusReport local = running.withPrefetch(new Prefetch(8388608L, 8388608L, true, null));
    assertThat(StatusReports.changes(written.getStatus(), local)).isTrue();
    StatusReport merged = StatusReports.merge(running, local);
    assertThat(merged.prefetch().fullyLocal()).isTrue();
    // The next report without it (the target returned) takes it away.
    StatusReport bootstrap = StatusReport.builder().phase(MachinePhase.Bootstrap).build();
    assertThat(
            StatusReports.withReport(
                    written, new StatusReports.Received(bootstrap, Instant.now()), null)
                .getStatus()
                .prefetch())
        .isNull();

    StatusReport hostile = running.withPrefetch(new Prefetch(9L, 8L, false, "cut\noff"));
    assertThat(StatusReportRules.violations(hostile))
        .containsExactly(
            "prefetch.bytesLocal: 9 is more than prefetch.total 8",
            "prefetch.error: \"cut\\u000aoff\" holds characters other than printable ASCII");
    assertThat(
            StatusReportRules.violations(running.withPrefetch(new Prefetch(-1L, 8L, false, null))))
        .containsExactly("prefetch.bytesLocal: -1 is negative");
  }

  @org.junit.jupiter.api.Test
  void aVerityMismatchIsTheStalledConditionsReasonWithItsBlock() throws Exception {
    StatusReport failed =
        StatusReport.builder()
            .phase(MachinePhase.Failed)
            .error(
                StatusReport.VERITY_MISMATCH
                    + "data block 1234 of the running image failed its dm-verity check")
            .lastReturn(
                new io.chrootbooter.protocol.LastReturn(
                    ReturnTrigger.VerityMismatch.name(),
                    "block 1234",
                    Instant.now().toString(),
                    40L,
                    false))
            .build();
    assertThat(StatusReportRules.violations(failed)).isEmpty();
    MachineBoot mb = new MachineBoot();
    mb.setMetadata(new ObjectMetaBuilder().withName("m1").withNamespace("lab").build());
    mb.setSpec(
        new io.chrootbooter.api.v1alpha1.MachineBootSpec(
            "52:54:00:12:34:56", null, "debian", null, null, null, null, null));
    MachineBoot written =
        StatusReports.withReport(mb, new StatusReports.Received(failed, Instant.now()), null);
    io.chrootbooter.operator.status.Health health =
        io.chrootbooter.operator.machine.MachineBootStatuses.health(
            new io.chrootbooter.operator.machine.MachineBootStatuses.Observation(
                written, java.util.Optional.empty(), java.util.Optional.empty()));
    assertThat(health.reason()).isEqualTo(io.chrootbooter.operator.status.Reason.VerityMismatch);
    assertThat(health.message()).contains("data block 1234").contains("back in the bootstrap");
  }
}
