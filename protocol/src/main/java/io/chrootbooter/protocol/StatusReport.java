package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * What an agent reports: the body of {@code POST /agent/v1/machines/{mac}/status}, which the
 * operator writes into the MachineBoot's status. The operator trusts none of it: it checks every
 * field before anything is written, and refuses a report with a field it does not know.
 *
 * @param phase where the machine is; required
 * @param progress the download's progress, while {@link MachinePhase#Downloading}
 * @param currentImage the BootImage the machine runs (or is returning from); null in the bootstrap
 *     and for an image typed at the console
 * @param error the last load's error, while {@link MachinePhase#Failed}
 * @param lastReturn the most recent return to the bootstrap
 * @param agent who is reporting
 * @param appliedGeneration the MachineBoot generation the agent last applied; null before any
 * @param confinement how the running target is confined; null when none runs
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record StatusReport(
    MachinePhase phase,
    Progress progress,
    String currentImage,
    String error,
    LastReturn lastReturn,
    AgentInfo agent,
    Long appliedGeneration,
    Confinement confinement) {

  /** A report without a running target's confinement. */
  public StatusReport(
      MachinePhase phase,
      Progress progress,
      String currentImage,
      String error,
      LastReturn lastReturn,
      AgentInfo agent,
      Long appliedGeneration) {
    this(phase, progress, currentImage, error, lastReturn, agent, appliedGeneration, null);
  }
}
