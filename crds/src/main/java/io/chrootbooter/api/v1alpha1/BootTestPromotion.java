package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Required;

/**
 * A guarded rollout after a {@link BootTest} passed: the image goes to a second set of machines, a
 * few at a time, each checked with the test's checks before the next ones, and the rollout stops
 * and rolls back at the first {@code failureThreshold} failures.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record BootTestPromotion(
    @Required
        @JsonPropertyDescription(
            "The MachineBoots of this namespace to promote the image to once every tested machine"
                + " passed: those the selector matches and those named, none of them a tested"
                + " machine. Chosen once, when the test starts. A machine that passes its checks"
                + " gets spec.imageRef set to the image; one that fails goes back to its spec.")
        MachineSelection promoteTo,
    @Min(1)
        @Max(1000)
        @JsonPropertyDescription(
            "How many machines switch at the same time (1 to 1000): a batch, checked before the"
                + " next one starts. Default: 1.")
        Integer maxUnavailable,
    @Min(1)
        @Max(1000)
        @JsonPropertyDescription(
            "After this many failed machines (1 to 1000) the promotion stops: the machines still"
                + " switching go back to their spec, and no other machine is switched. Default:"
                + " 1.")
        Integer failureThreshold) {

  /** The batch size, the default applied. */
  public int maxUnavailableOrDefault() {
    return maxUnavailable == null ? 1 : maxUnavailable;
  }

  /** The failure threshold, the default applied. */
  public int failureThresholdOrDefault() {
    return failureThreshold == null ? 1 : failureThreshold;
  }
}
