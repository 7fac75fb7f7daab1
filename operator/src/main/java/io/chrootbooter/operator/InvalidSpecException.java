package io.chrootbooter.operator;

import java.util.List;

/**
 * The spec cannot be acted on as written: the user has to change it. Reconcilers report it as
 * {@code Stalled=True} with reason {@code InvalidSpec} and do not retry.
 */
public class InvalidSpecException extends RuntimeException {
  private final List<String> violations;

  public InvalidSpecException(List<String> violations) {
    super(String.join("; ", violations));
    this.violations = List.copyOf(violations);
  }

  /** Each violation, naming field, value and rule. */
  public List<String> violations() {
    return violations;
  }
}
