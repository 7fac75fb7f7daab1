package io.chrootbooter.protocol;

import java.time.Duration;

/**
 * How both sides retry what the network broke — the operator mirroring an image, the agent
 * downloading one, following its desired-state stream or enrolling: at most {@code attempts}
 * attempts in a row, and before retry {@code n} (1 for the first) a wait drawn uniformly from
 * {@code [d/2, d]}, where {@code d = min(firstDelay · 2^(n−1), maxDelay)} ("equal jitter": many
 * machines that lost the same server do not come back in lockstep, and none waits less than half
 * the schedule). What counts as one attempt, and when the count starts again (the agent's download
 * after it received bytes, its stream after it was up), is the caller's.
 *
 * <p>Both sides build a Failsafe {@code RetryPolicy} from these parameters. Failsafe's jitter is
 * symmetric (a factor {@code j} draws from {@code [c·(1−j), c·(1+j)]} around the delay {@code c}),
 * so the policy is a backoff over {@link #jitterCentre three quarters} of the delays with {@link
 * #JITTER} = 1/3, which draws from exactly {@code [d/2, d]}:
 *
 * <pre>{@code
 * RetryPolicy.builder()
 *     .withBackoff(b.jitterCentre(b.firstDelay()), b.jitterCentre(b.maxDelay()))  // or withDelay
 *     .withJitter(Backoff.JITTER)                                                  // when fixed()
 *     .withMaxAttempts(b.attempts())
 * }</pre>
 *
 * This module stays free of dependencies (it goes into the agent's initramfs as it is), so the
 * description is here and the policy objects on each side.
 *
 * @param attempts attempts in a row before giving up, at least 1; {@link #UNLIMITED} for ever
 * @param firstDelay the schedule's delay before the first retry, not negative
 * @param maxDelay the cap of the schedule, at least {@code firstDelay}
 */
public record Backoff(int attempts, Duration firstDelay, Duration maxDelay) {

  /** Attempts without end (Failsafe counts to {@code Integer.MAX_VALUE}: years of retries). */
  public static final int UNLIMITED = Integer.MAX_VALUE;

  /** Failsafe's jitter factor that, around {@link #jitterCentre}, draws from {@code [d/2, d]}. */
  public static final double JITTER = 1.0 / 3;

  public Backoff {
    if (attempts < 1) {
      throw new IllegalArgumentException("attempts " + attempts + " must be at least 1");
    }
    if (firstDelay.isNegative() || maxDelay.compareTo(firstDelay) < 0) {
      throw new IllegalArgumentException(
          "delays " + firstDelay + ".." + maxDelay + " must be non-negative and ordered");
    }
  }

  /** Whether every wait has the same schedule ({@code firstDelay == maxDelay}): no backoff. */
  public boolean fixed() {
    return firstDelay.equals(maxDelay);
  }

  /**
   * Three quarters of {@code delay}: the centre Failsafe's {@link #JITTER} draws around, so that a
   * wait for {@code delay} lies in {@code [delay/2, delay]}.
   */
  public static Duration jitterCentre(Duration delay) {
    return Duration.ofNanos(delay.toNanos() / 4 * 3);
  }
}
