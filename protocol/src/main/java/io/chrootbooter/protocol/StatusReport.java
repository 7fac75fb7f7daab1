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

  /** This report with {@code prefetch}. */
  public StatusReport withPrefetch(Prefetch prefetch) {
    return toBuilder().prefetch(prefetch).build();
  }

  public StatusReport {
    commands = commands == null ? List.of() : List.copyOf(commands);
  }

  /** This report with {@code commands}' results. */
  public StatusReport withCommands(List<TestCommand.Result> commands) {
    return toBuilder().commands(commands).build();
  }

  /** This report with {@code timelines}; none (null or empty) leaves them out. */
  public StatusReport withTimelines(List<Timeline> timelines) {
    return toBuilder()
        .timelines(timelines == null || timelines.isEmpty() ? null : List.copyOf(timelines))
        .build();
  }

  /** A builder of a StatusReport, every field unset. */
  public static Builder builder() {
    return new Builder();
  }

  /** A builder that starts from this StatusReport's fields. */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.phase = phase;
    b.progress = progress;
    b.currentImage = currentImage;
    b.error = error;
    b.lastReturn = lastReturn;
    b.agent = agent;
    b.appliedGeneration = appliedGeneration;
    b.confinement = confinement;
    b.healthy = healthy;
    b.commands = commands;
    b.timelines = timelines;
    b.prefetch = prefetch;
    return b;
  }

  /** Builds a {@link StatusReport}; a field left unset is null (no commands). */
  public static final class Builder {
    private MachinePhase phase;
    private Progress progress;
    private String currentImage;
    private String error;
    private LastReturn lastReturn;
    private AgentInfo agent;
    private Long appliedGeneration;
    private Confinement confinement;
    private Boolean healthy;
    private List<TestCommand.Result> commands;
    private List<Timeline> timelines;
    private Prefetch prefetch;

    private Builder() {}

    public Builder phase(MachinePhase phase) {
      this.phase = phase;
      return this;
    }

    public Builder progress(Progress progress) {
      this.progress = progress;
      return this;
    }

    public Builder currentImage(String currentImage) {
      this.currentImage = currentImage;
      return this;
    }

    public Builder error(String error) {
      this.error = error;
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

    public Builder appliedGeneration(Long appliedGeneration) {
      this.appliedGeneration = appliedGeneration;
      return this;
    }

    public Builder confinement(Confinement confinement) {
      this.confinement = confinement;
      return this;
    }

    public Builder healthy(Boolean healthy) {
      this.healthy = healthy;
      return this;
    }

    public Builder commands(List<TestCommand.Result> commands) {
      this.commands = commands;
      return this;
    }

    public Builder timelines(List<Timeline> timelines) {
      this.timelines = timelines;
      return this;
    }

    public Builder prefetch(Prefetch prefetch) {
      this.prefetch = prefetch;
      return this;
    }

    public StatusReport build() {
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
  }
}
