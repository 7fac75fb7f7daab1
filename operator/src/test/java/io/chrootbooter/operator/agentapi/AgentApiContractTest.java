package io.chrootbooter.operator.agentapi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import io.chrootbooter.protocol.StatusReport;
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
}
