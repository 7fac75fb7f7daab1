package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/** The observed state of a {@link BootTest}. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record BootTestStatus(
    @JsonPropertyDescription("Pending, Running, Passed or Failed.") TestPhase phase,
    @JsonPropertyDescription("The metadata.generation this status describes.")
        Long observedGeneration,
    @JsonPropertyDescription("When the test started (RFC 3339, UTC).") String startTime,
    @JsonPropertyDescription("When the last machine's test ended (RFC 3339, UTC).")
        String completionTime,
    @JsonPropertyDescription("How many machines passed every check (tested and promoted).")
        Integer passed,
    @JsonPropertyDescription(
            "How many machines failed a check or ended in Error (tested and promoted).")
        Integer failed,
    @JsonPropertyDescription("The machines under test, by name, with each check's result.")
        List<MachineTestResult> machines,
    @JsonPropertyDescription(
            "Complete (every machine passed, the promoted ones too), Failed (a machine failed,"
                + " ended in Error, or the spec is invalid: reason InvalidSpec), Running (the test"
                + " or its promotion is in progress); with spec.promote also Promoted (every"
                + " machine of promoteTo had its turn) and RolledBack (a promoted machine failed"
                + " and went back to its spec).")
        List<Condition> conditions,
    @JsonPropertyDescription("The promotion of spec.promote: its progress and machines.")
        PromotionStatus promotion) {

  public BootTestStatus {
    machines = machines == null ? List.of() : List.copyOf(machines);
    conditions = conditions == null ? List.of() : List.copyOf(conditions);
  }

  /** The status of a test without a promotion. */
  public BootTestStatus(
      TestPhase phase,
      Long observedGeneration,
      String startTime,
      String completionTime,
      Integer passed,
      Integer failed,
      List<MachineTestResult> machines,
      List<Condition> conditions) {
    this(
        phase,
        observedGeneration,
        startTime,
        completionTime,
        passed,
        failed,
        machines,
        conditions,
        null);
  }

  /** The phase of a whole test. */
  public enum TestPhase {
    Pending,
    Running,
    Passed,
    Failed
  }
}
