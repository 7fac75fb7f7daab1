package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.Prefetch;
import io.chrootbooter.protocol.Progress;
import io.chrootbooter.protocol.TestCommand;
import io.chrootbooter.protocol.Timeline;
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
        Confinement confinement,
    @JsonPropertyDescription(
            "The BootTest that holds the machine: it runs what the test says, and edits of the"
                + " spec apply once the test releases it (condition HeldByTest).")
        String heldBy,
    @JsonPropertyDescription(
            "True once the running image reported healthy in this boot of it: its boot ran"
                + " /.bootstrap-return --healthy (the lab's Debian image does once"
                + " multi-user.target is reached). Absent otherwise.")
        Boolean healthy,
    @JsonPropertyDescription(
            "The results of the commands a BootTest's command checks had the running image run"
                + " in this boot of it (exit code, the first 4,096 bytes of stdout and stderr),"
                + " as its agent reports them. Absent otherwise.")
        List<TestCommand.Result> testCommands,
    @JsonPropertyDescription(
            "The flight recorder's newest boot of the machine (it network-booted and its agent"
                + " booted an image): every step from the iPXE script served to the image"
                + " reporting healthy, with when it began and how long it took. No result while"
                + " it is in progress.")
        Timeline lastBoot,
    @JsonPropertyDescription(
            "The flight recorder's newest switch of the machine to another image (or return to"
                + " the bootstrap): every step from the desired state received, the return of"
                + " the image that ran (return-trigger, grace, forced, teardown,"
                + " bootstrap-ready), download, verify, mount, pivot-root and init-exec to"
                + " healthy, with when it began and how long it took. The steps follow one"
                + " another without a gap: their seconds add up to seconds. No result while it"
                + " is in progress.")
        Timeline lastSwitch,
    @JsonPropertyDescription(
            "The newest boots, switches and returns that ended, newest first: each without its"
                + " steps but with the seconds of each (stepSeconds). Bounded (cb.agent.timeline-"
                + "history, 10 by default).")
        List<TimelineSummary> history,
    @JsonPropertyDescription(
            "How much of the running image is on the machine, for an image delivered Lazy:"
                + " bytes local of the total, fullyLocal once it no longer needs the network, and"
                + " why blocks could not be fetched lately. Reported at most every 2 s while it"
                + " changes; absent for any other image.")
        Prefetch prefetch) {

  public MachineBootStatus {
    conditions = conditions == null ? List.of() : List.copyOf(conditions);
    testCommands =
        testCommands == null || testCommands.isEmpty() ? null : List.copyOf(testCommands);
    history = history == null ? null : List.copyOf(history);
  }

  /** A status without a Lazy image's prefetch. */
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
      LastReboot lastReboot,
      Confinement confinement,
      String heldBy,
      Boolean healthy,
      List<TestCommand.Result> testCommands,
      Timeline lastBoot,
      Timeline lastSwitch,
      List<TimelineSummary> history) {
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
        confinement,
        heldBy,
        healthy,
        testCommands,
        lastBoot,
        lastSwitch,
        history,
        null);
  }

  /** This status with a Lazy image's {@code prefetch}. */
  public MachineBootStatus withPrefetch(Prefetch prefetch) {
    return new MachineBootStatus(
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
        confinement,
        heldBy,
        healthy,
        testCommands,
        lastBoot,
        lastSwitch,
        history,
        prefetch);
  }

  /** A status without the flight recorder's timelines. */
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
      LastReboot lastReboot,
      Confinement confinement,
      String heldBy,
      Boolean healthy,
      List<TestCommand.Result> testCommands) {
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
        confinement,
        heldBy,
        healthy,
        testCommands,
        null,
        null,
        null);
  }

  /** A status without command results or timelines. */
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
      LastReboot lastReboot,
      Confinement confinement,
      String heldBy,
      Boolean healthy) {
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
        confinement,
        heldBy,
        healthy,
        (List<TestCommand.Result>) null);
  }

  /** This status with the flight recorder's timelines replaced. */
  public MachineBootStatus withTimelines(
      Timeline lastBoot, Timeline lastSwitch, List<TimelineSummary> history) {
    return new MachineBootStatus(
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
        confinement,
        heldBy,
        healthy,
        testCommands,
        lastBoot,
        lastSwitch,
        history,
        prefetch);
  }

  /** A status of a machine no test holds, without a health report. */
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
      LastReboot lastReboot,
      Confinement confinement) {
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
        confinement,
        null,
        null);
  }

  /** A status without the running image's confinement, of a machine no test holds. */
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
        null,
        null,
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
        null,
        null,
        null);
  }
}
