package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

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
 * @param healthy true once the running target reported healthy ({@code /.bootstrap-return
 *     --healthy}) in this boot of it; null otherwise
 * @param commands the results of the desired state's {@link TestCommand}s the running target has
 *     run so far, in order; empty (and left out) when none ran
 * @param timelines the flight recorder's newest timelines, newest first (at most {@link
 *     #MAX_TIMELINES}); the first may be in progress. Each report repeats them, so that one the
 *     operator missed (reports merged or lost) reaches it with the next.
 * @param prefetch how much of the running {@code Lazy} image is local; null for any other image
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
    Confinement confinement,
    Boolean healthy,
    @JsonInclude(JsonInclude.Include.NON_EMPTY) List<TestCommand.Result> commands,
    List<Timeline> timelines,
    Prefetch prefetch) {

  /** How many timelines a report carries at most. */
  public static final int MAX_TIMELINES = 3;

  /**
   * How an {@link #error()} begins when a block of the running {@code Lazy} image failed its
   * dm-verity check ({@link ReturnTrigger#VerityMismatch}); the operator's condition reason then
   * says so.
   */
  public static final String VERITY_MISMATCH = ReturnTrigger.VerityMismatch.name() + ": ";

  /** A report without a Lazy image's prefetch. */
  public StatusReport(
      MachinePhase phase,
      Progress progress,
      String currentImage,
      String error,
      LastReturn lastReturn,
      AgentInfo agent,
      Long appliedGeneration,
      Confinement confinement,
      Boolean healthy,
      List<TestCommand.Result> commands,
      List<Timeline> timelines) {
    this(
        phase,
        progress,
        currentImage,
        error,
        lastReturn,
        agent,
        appliedGeneration,
        confinement,
        healthy,
        commands,
        timelines,
        null);
  }

  /** This report with {@code prefetch}. */
  public StatusReport withPrefetch(Prefetch prefetch) {
    return new StatusReport(
        phase,
        progress,
        currentImage,
        error,
        lastReturn,
        agent,
        appliedGeneration,
        confinement,
        healthy,
        commands,
        timelines,
        prefetch);
  }

  public StatusReport {
    commands = commands == null ? List.of() : List.copyOf(commands);
  }

  /** A report without command results or timelines. */
  public StatusReport(
      MachinePhase phase,
      Progress progress,
      String currentImage,
      String error,
      LastReturn lastReturn,
      AgentInfo agent,
      Long appliedGeneration,
      Confinement confinement,
      Boolean healthy) {
    this(
        phase,
        progress,
        currentImage,
        error,
        lastReturn,
        agent,
        appliedGeneration,
        confinement,
        healthy,
        List.of(),
        null);
  }

  /** This report with {@code commands}' results. */
  public StatusReport withCommands(List<TestCommand.Result> commands) {
    return new StatusReport(
        phase,
        progress,
        currentImage,
        error,
        lastReturn,
        agent,
        appliedGeneration,
        confinement,
        healthy,
        commands,
        timelines,
        prefetch);
  }

  /** This report with {@code timelines}. */
  public StatusReport withTimelines(List<Timeline> timelines) {
    return new StatusReport(
        phase,
        progress,
        currentImage,
        error,
        lastReturn,
        agent,
        appliedGeneration,
        confinement,
        healthy,
        commands,
        timelines == null || timelines.isEmpty() ? null : List.copyOf(timelines),
        prefetch);
  }

  /** A report that says nothing of the target's health. */
  public StatusReport(
      MachinePhase phase,
      Progress progress,
      String currentImage,
      String error,
      LastReturn lastReturn,
      AgentInfo agent,
      Long appliedGeneration,
      Confinement confinement) {
    this(
        phase,
        progress,
        currentImage,
        error,
        lastReturn,
        agent,
        appliedGeneration,
        confinement,
        null);
  }

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
