package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.api.model.LabelSelector;
import java.util.List;

/** Which MachineBoots a {@link BootTest} runs on: a label selector, names, or both. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "has(self.selector) || (has(self.names) && size(self.names) > 0)",
    message = "machines: give a selector, names, or both")
public record MachineSelection(
    @JsonPropertyDescription(
            "A label selector over the MachineBoots of this namespace, as in a Deployment"
                + " (matchLabels, matchExpressions).")
        LabelSelector selector,
    @Size(max = 1000) @JsonPropertyDescription("MachineBoots of this namespace, by name.")
        List<@Pattern(Patterns.OBJECT_NAME) String> names) {

  public MachineSelection {
    names = names == null ? null : List.copyOf(names);
  }

  /** The names, never null. */
  public List<String> namesOrEmpty() {
    return names == null ? List.of() : names;
  }
}
