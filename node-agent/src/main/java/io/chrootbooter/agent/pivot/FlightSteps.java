package io.chrootbooter.agent.pivot;

import io.chrootbooter.protocol.ReturnTrigger;
import java.time.Instant;

/**
 * Where the boot state machine tells the flight recorder the steps of an enter and a return as they
 * begin ({@link io.chrootbooter.protocol.Timeline}'s names). Called on the threads that do the
 * steps, some under the controller's lock: an implementation records and returns at once, and never
 * calls back into the controller.
 */
public interface FlightSteps {
  /** Records nothing. */
  FlightSteps NONE = (name, at, detail) -> {};

  /**
   * Step {@code name} began at {@code at}.
   *
   * @param detail what else to know; may be null
   */
  void step(String name, Instant at, String detail);

  /** A return began: {@code trigger} fired at {@code at}. */
  default void returnTriggered(ReturnTrigger trigger, String reason, Instant at) {}

  /** A return ended: the bootstrap is ready again (its network restored). */
  default void returnEnded(Instant at) {}

  /** The running target reported healthy. */
  default void healthy(Instant at) {}
}
