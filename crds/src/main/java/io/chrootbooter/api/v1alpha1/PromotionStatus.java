package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.List;

/** Where the promotion of a {@link BootTest} ({@code spec.promote}) is. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record PromotionStatus(
    @JsonPropertyDescription(
            "Waiting (for the test to pass), Promoting, Promoted (every machine had its turn),"
                + " Stopped (failureThreshold reached, or the spec changed) or NotStarted (the test"
                + " did not pass).")
        PromotionPhase phase,
    @JsonPropertyDescription("The progress in words, such as 3/40 promoted.") String progress,
    @JsonPropertyDescription("How many machines the promotion covers.") Integer total,
    @JsonPropertyDescription("How many passed their checks and now run the image (spec.imageRef).")
        Integer promoted,
    @JsonPropertyDescription(
            "How many failed their checks or ended in Error, and were rolled back.")
        Integer failed,
    @JsonPropertyDescription("The number of the current (or last) batch, from 1.") Integer batch,
    @JsonPropertyDescription("The machines of the current batch.") List<String> batchMachines,
    @JsonPropertyDescription(
            "When the current batch started (RFC 3339, UTC); its timeout is the" + " test's.")
        String batchStartTime,
    @JsonPropertyDescription("When the promotion started (RFC 3339, UTC).") String startTime,
    @JsonPropertyDescription("When it ended (RFC 3339, UTC).") String completionTime,
    @JsonPropertyDescription("What the promotion does or did, in words.") String message,
    @JsonPropertyDescription("Each machine of the promotion, with each check's result.")
        List<MachineTestResult> machines,
    @JsonPropertyDescription("The machines put back on their spec, and why.")
        List<RolledBack> rolledBack) {

  public PromotionStatus {
    batchMachines = batchMachines == null ? List.of() : List.copyOf(batchMachines);
    machines = machines == null ? List.of() : List.copyOf(machines);
    rolledBack = rolledBack == null ? List.of() : List.copyOf(rolledBack);
  }

  /** Where a promotion is. */
  public enum PromotionPhase {
    /** The test runs; the promotion starts once every tested machine passed. */
    Waiting,
    /** Batches of machines are switched and checked. */
    Promoting,
    /** Every machine had its turn without reaching failureThreshold. */
    Promoted,
    /** failureThreshold was reached (or the spec changed): the promotion stopped. */
    Stopped,
    /** The test did not pass: nothing was promoted. */
    NotStarted;

    /** Whether the promotion has ended. */
    public boolean done() {
      return this == Promoted || this == Stopped || this == NotStarted;
    }
  }

  /** A machine put back on its spec. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record RolledBack(
      @JsonPropertyDescription("The MachineBoot's name.") String name,
      @JsonPropertyDescription("The image it ran before; none when it was in the bootstrap.")
          String previousImage,
      @JsonPropertyDescription("Why it was rolled back.") String reason) {}
}
