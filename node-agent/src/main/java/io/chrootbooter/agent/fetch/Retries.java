package io.chrootbooter.agent.fetch;

import dev.failsafe.RetryPolicy;
import dev.failsafe.RetryPolicyBuilder;
import io.chrootbooter.protocol.Backoff;
import java.time.Duration;

/**
 * The agent's Failsafe policy for a {@link Backoff}, the schedule the operator's mirror follows as
 * well. The agent keeps its own loops (a wait ends early when a download is cancelled, a failure
 * after received bytes starts the count again), so it drives the policy through {@link
 * dev.failsafe.Execution}: each failed attempt is recorded, and the execution says when to give up
 * and how long to wait before the next.
 */
public final class Retries {
  /** Downloads: 8 attempts in a row without a received byte, 0.5 s doubling up to 30 s. */
  public static final Backoff DOWNLOAD =
      new Backoff(8, Duration.ofMillis(500), Duration.ofSeconds(30));

  /** The desired-state stream and enrolment: for ever, 0.5 s doubling up to 30 s. */
  public static final Backoff OPERATOR =
      new Backoff(Backoff.UNLIMITED, Duration.ofMillis(500), Duration.ofSeconds(30));

  /** How long a download's connection may deliver nothing before it counts as dropped. */
  public static final Duration STALL_TIMEOUT = Duration.ofSeconds(30);

  private Retries() {}

  /** A policy that retries any exception on {@code backoff}'s schedule. */
  public static RetryPolicy<Object> policy(Backoff backoff) {
    RetryPolicyBuilder<Object> builder = RetryPolicy.builder();
    if (backoff.fixed()) {
      builder.withDelay(Backoff.jitterCentre(backoff.firstDelay()));
    } else {
      builder.withBackoff(
          Backoff.jitterCentre(backoff.firstDelay()), Backoff.jitterCentre(backoff.maxDelay()));
    }
    return builder.withJitter(Backoff.JITTER).withMaxAttempts(backoff.attempts()).build();
  }
}
