package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.Progress;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/** The observed state of a {@link MachineBoot}. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record MachineBootStatus(
    @JsonPropertyDescription(
            "Pending, PXEBooting, Bootstrap, Downloading, Verifying, Mounting, Running,"
                + " Returning, ConsoleOverride or Failed.")
        MachinePhase phase,
    @JsonPropertyDescription("The BootImage the machine runs now.") String currentImage,
    @JsonPropertyDescription("The metadata.generation this status describes.")
        Long observedGeneration,
    @JsonPropertyDescription("Download progress while the phase is Downloading.") Progress progress,
    @JsonPropertyDescription("The most recent return to the bootstrap.") LastReturn lastReturn,
    @JsonPropertyDescription("The agent that last reported.") AgentInfo agent,
    @JsonPropertyDescription("The agent's last error, while the phase is Failed.") String error,
    @JsonPropertyDescription(
            "When the operator received the agent report this status shows (RFC 3339, UTC,"
                + " milliseconds). Every replica writes the reports it receives; none writes a"
                + " report older than this one.")
        String lastReportTime,
    @JsonPropertyDescription(
            "kstatus conditions: Ready (the declared image runs, or the machine waits in the"
                + " bootstrap as declared), Reconciling (work in progress) and Stalled (needs a"
                + " change of the spec, or the machine's agent is lost: reason AgentLost).")
        List<Condition> conditions,
    @JsonPropertyDescription(
            "When the operator last heard from the machine's agent (a report or its stream"
                + " opening), RFC 3339, UTC, seconds. Written at most once per cb.agent.lost-after"
                + " while nothing else changes, so for a live machine it lags by up to lost-after"
                + " plus one heartbeat; when the agent is lost it is set to the last time heard.")
        String lastSeen,
    @JsonPropertyDescription(
            "When the agent first reported the current image Running in this boot (RFC 3339, UTC).")
        String runningSince,
    @JsonPropertyDescription("The most recent reboot of the machine that its agent's reports show.")
        LastReboot lastReboot,
    @JsonPropertyDescription(
            "How the running image is confined (Machine or Confined), as its agent reports it;"
                + " unset while no image runs.")
        Confinement confinement) {

  public MachineBootStatus {
    conditions = conditions == null ? List.of() : List.copyOf(conditions);
  }

  /** A status without the running image's confinement. */
  public MachineBootStatus(
      MachinePhase phase,
      String currentImage,
      Long observedGeneration,
      Progress progress,
      LastReturn lastReturn,
      AgentInfo agent,
      String error,
      String lastReportTime,
      List<Condition> conditions,
      String lastSeen,
      String runningSince,
      LastReboot lastReboot) {
    this(
        phase,
        currentImage,
        observedGeneration,
        progress,
        lastReturn,
        agent,
        error,
        lastReportTime,
        conditions,
        lastSeen,
        runningSince,
        lastReboot,
        null);
  }

  /** A status without liveness fields. */
  public MachineBootStatus(
      MachinePhase phase,
      String currentImage,
      Long observedGeneration,
      Progress progress,
      LastReturn lastReturn,
      AgentInfo agent,
      String error,
      String lastReportTime,
      List<Condition> conditions) {
    this(
        phase,
        currentImage,
        observedGeneration,
        progress,
        lastReturn,
        agent,
        error,
        lastReportTime,
        conditions,
        null,
        null,
        null,
        null);
  }
}
