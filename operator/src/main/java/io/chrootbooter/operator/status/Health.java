package io.chrootbooter.operator.status;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import java.util.List;
import java.util.Objects;

/**
 * The kstatus summary of a resource: exactly one of Ready, Reconciling or Stalled is true (see
 * kubernetes-sigs/cli-utils {@code pkg/kstatus/README.md}). {@code kubectl wait
 * --for=condition=Ready}, Argo CD and Flux read these conditions.
 */
public record Health(State state, Reason reason, String message) {

  /** Which of the three conditions is true. */
  public enum State {
    READY,
    RECONCILING,
    STALLED
  }

  public Health {
    Objects.requireNonNull(state, "state");
    Objects.requireNonNull(reason, "reason");
    Objects.requireNonNull(message, "message");
  }

  public static Health ready(Reason reason, String message) {
    return new Health(State.READY, reason, message);
  }

  public static Health reconciling(Reason reason, String message) {
    return new Health(State.RECONCILING, reason, message);
  }

  public static Health stalled(Reason reason, String message) {
    return new Health(State.STALLED, reason, message);
  }

  /**
   * The three conditions, without transition times (see {@link Conditions#merge}). A false
   * condition carries the same reason and message, so every condition explains itself.
   */
  public List<Condition> conditions(Long generation) {
    return List.of(
        condition(typeOf(State.READY), state == State.READY, generation),
        condition(typeOf(State.RECONCILING), state == State.RECONCILING, generation),
        condition(typeOf(State.STALLED), state == State.STALLED, generation));
  }

  /** The health that conditions written by {@link #conditions} describe, if any. */
  public static java.util.Optional<Health> of(List<Condition> conditions) {
    for (State state : State.values()) {
      String type = typeOf(state);
      var found =
          conditions.stream()
              .filter(c -> type.equals(c.getType()) && "True".equals(c.getStatus()))
              .findFirst();
      if (found.isPresent()) {
        Condition c = found.get();
        return java.util.Arrays.stream(Reason.values())
            .filter(r -> r.name().equals(c.getReason()))
            .findFirst()
            .map(r -> new Health(state, r, c.getMessage() == null ? "" : c.getMessage()));
      }
    }
    return java.util.Optional.empty();
  }

  private static String typeOf(State state) {
    return switch (state) {
      case READY -> "Ready";
      case RECONCILING -> "Reconciling";
      case STALLED -> "Stalled";
    };
  }

  private Condition condition(String type, boolean status, Long generation) {
    return new ConditionBuilder()
        .withType(type)
        .withStatus(status ? "True" : "False")
        .withReason(reason.name())
        .withMessage(message)
        .withObservedGeneration(generation)
        .build();
  }
}
