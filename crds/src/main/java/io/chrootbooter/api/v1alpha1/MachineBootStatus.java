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

  /** This status with the flight recorder's timelines replaced. */
  public MachineBootStatus withTimelines(
      Timeline lastBoot, Timeline lastSwitch, List<TimelineSummary> history) {
    return toBuilder().lastBoot(lastBoot).lastSwitch(lastSwitch).history(history).build();
  }

  /** This status with a Lazy image's {@code prefetch}. */
  public MachineBootStatus withPrefetch(Prefetch prefetch) {
    return toBuilder().prefetch(prefetch).build();
  }

  /** A builder of a MachineBootStatus, every field unset. */
  public static Builder builder() {
    return new Builder();
  }

  /** A builder that starts from this MachineBootStatus's fields. */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.phase = phase;
    b.currentImage = currentImage;
    b.observedGeneration = observedGeneration;
    b.progress = progress;
    b.lastReturn = lastReturn;
    b.agent = agent;
    b.error = error;
    b.lastReportTime = lastReportTime;
    b.conditions = conditions;
    b.lastSeen = lastSeen;
    b.runningSince = runningSince;
    b.lastReboot = lastReboot;
    b.confinement = confinement;
    b.heldBy = heldBy;
    b.healthy = healthy;
    b.testCommands = testCommands;
    b.lastBoot = lastBoot;
    b.lastSwitch = lastSwitch;
    b.history = history;
    b.prefetch = prefetch;
    return b;
  }

  /** Builds a {@link MachineBootStatus}; a field left unset is null. */
  public static final class Builder {
    private MachinePhase phase;
    private String currentImage;
    private Long observedGeneration;
    private Progress progress;
    private LastReturn lastReturn;
    private AgentInfo agent;
    private String error;
    private String lastReportTime;
    private List<Condition> conditions;
    private String lastSeen;
    private String runningSince;
    private LastReboot lastReboot;
    private Confinement confinement;
    private String heldBy;
    private Boolean healthy;
    private List<TestCommand.Result> testCommands;
    private Timeline lastBoot;
    private Timeline lastSwitch;
    private List<TimelineSummary> history;
    private Prefetch prefetch;

    private Builder() {}

    public Builder phase(MachinePhase phase) {
      this.phase = phase;
      return this;
    }

    public Builder currentImage(String currentImage) {
      this.currentImage = currentImage;
      return this;
    }

    public Builder observedGeneration(Long observedGeneration) {
      this.observedGeneration = observedGeneration;
      return this;
    }

    public Builder progress(Progress progress) {
      this.progress = progress;
      return this;
    }

    public Builder lastReturn(LastReturn lastReturn) {
      this.lastReturn = lastReturn;
      return this;
    }

    public Builder agent(AgentInfo agent) {
      this.agent = agent;
      return this;
    }

    public Builder error(String error) {
      this.error = error;
      return this;
    }

    public Builder lastReportTime(String lastReportTime) {
      this.lastReportTime = lastReportTime;
      return this;
    }

    public Builder conditions(List<Condition> conditions) {
      this.conditions = conditions;
      return this;
    }

    public Builder lastSeen(String lastSeen) {
      this.lastSeen = lastSeen;
      return this;
    }

    public Builder runningSince(String runningSince) {
      this.runningSince = runningSince;
      return this;
    }

    public Builder lastReboot(LastReboot lastReboot) {
      this.lastReboot = lastReboot;
      return this;
    }

    public Builder confinement(Confinement confinement) {
      this.confinement = confinement;
      return this;
    }

    public Builder heldBy(String heldBy) {
      this.heldBy = heldBy;
      return this;
    }

    public Builder healthy(Boolean healthy) {
      this.healthy = healthy;
      return this;
    }

    public Builder testCommands(List<TestCommand.Result> testCommands) {
      this.testCommands = testCommands;
      return this;
    }

    public Builder lastBoot(Timeline lastBoot) {
      this.lastBoot = lastBoot;
      return this;
    }

    public Builder lastSwitch(Timeline lastSwitch) {
      this.lastSwitch = lastSwitch;
      return this;
    }

    public Builder history(List<TimelineSummary> history) {
      this.history = history;
      return this;
    }

    public Builder prefetch(Prefetch prefetch) {
      this.prefetch = prefetch;
      return this;
    }

    public MachineBootStatus build() {
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
  }
}
