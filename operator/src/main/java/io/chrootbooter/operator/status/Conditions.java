package io.chrootbooter.operator.status;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Optional;

/** Pure functions over status conditions. */
public final class Conditions {
  private Conditions() {}

  /**
   * The desired conditions, each keeping the {@code lastTransitionTime} of the existing condition
   * of the same type when its status did not change, and {@code now} otherwise — the Kubernetes API
   * conventions' meaning of "transition".
   */
  public static List<Condition> merge(
      List<Condition> existing, List<Condition> desired, Instant now) {
    String stamp = now.truncatedTo(ChronoUnit.SECONDS).toString();
    return desired.stream()
        .map(
            d -> {
              String since =
                  find(existing, d.getType())
                      .filter(e -> e.getStatus().equals(d.getStatus()))
                      .map(Condition::getLastTransitionTime)
                      .orElse(stamp);
              return new ConditionBuilder(d).withLastTransitionTime(since).build();
            })
        .toList();
  }

  /** The condition of the given type, if present. */
  public static Optional<Condition> find(List<Condition> conditions, String type) {
    return conditions == null
        ? Optional.empty()
        : conditions.stream().filter(c -> type.equals(c.getType())).findFirst();
  }

  /** Whether the condition of the given type is present and True. */
  public static boolean isTrue(List<Condition> conditions, String type) {
    return find(conditions, type).map(c -> "True".equals(c.getStatus())).orElse(false);
  }
}
