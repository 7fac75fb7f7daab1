package io.chrootbooter.agent.pivot;

import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.time.Duration;
import java.util.Optional;

/**
 * What the agent, its console and its triggers ask of the boot state machine ({@link
 * BootController}): enter a prepared root, return it, and follow the spec's generation and the
 * console override. An interface so that the agent's decisions can be tested without a real target.
 */
public interface TargetControl extends AutoCloseable {
  /** Runs {@code listener} after every change of phase, session or last return. */
  void onChange(Runnable listener);

  /**
   * Enters {@code spec}; a running target is returned first ({@link ReturnTrigger#SpecChange}).
   *
   * @param image the root's mounts, released on return; may be null
   * @param healthyWithin how long the target has to report healthy; zero for no limit
   */
  void boot(TargetSpec spec, Teardown.Step image, Duration healthyWithin) throws IOException;

  /** Returns a running target; empty when none runs. */
  Optional<LastReturn> trigger(ReturnTrigger trigger, String reason);

  /**
   * The spec's generation changed or was replayed.
   *
   * @return whether the caller should now boot the spec's image
   */
  boolean specChanged(long generation, boolean namesImage) throws IOException;

  /** {@code resume}: leaves the console override; true when the spec's image should boot. */
  boolean resume() throws IOException;

  MachinePhase phase();

  Optional<LastReturn> lastReturn();

  Optional<TargetSession> session();

  @Override
  void close() throws IOException;
}
