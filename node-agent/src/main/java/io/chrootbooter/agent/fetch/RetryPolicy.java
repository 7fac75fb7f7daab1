package io.chrootbooter.agent.fetch;

import java.time.Duration;
import java.util.random.RandomGenerator;

/**
 * How a download survives a flaky network: up to {@code attempts} consecutive failures without
 * progress, waiting an exponentially growing, jittered delay between them; a connection that
 * delivers nothing for {@code stallTimeout} counts as dropped.
 *
 * @param attempts consecutive attempts without a received byte before giving up, at least 1
 * @param initialDelay the delay before the first retry
 * @param maxDelay the cap of the exponential delay
 * @param stallTimeout how long a connection may deliver nothing
 */
public record RetryPolicy(
    int attempts, Duration initialDelay, Duration maxDelay, Duration stallTimeout) {

  /** 8 attempts, 0.5 s doubling up to 30 s, 30 s stall timeout. */
  public static final RetryPolicy DEFAULT =
      new RetryPolicy(8, Duration.ofMillis(500), Duration.ofSeconds(30), Duration.ofSeconds(30));

  public RetryPolicy {
    if (attempts < 1) {
      throw new IllegalArgumentException("attempts " + attempts + " must be at least 1");
    }
    if (initialDelay.isNegative() || maxDelay.compareTo(initialDelay) < 0) {
      throw new IllegalArgumentException(
          "delays " + initialDelay + ".." + maxDelay + " must be non-negative and ordered");
    }
    if (stallTimeout.isNegative() || stallTimeout.isZero()) {
      throw new IllegalArgumentException("stallTimeout " + stallTimeout + " must be positive");
    }
  }

  /**
   * The delay before retry number {@code retry} (1 for the first): {@code initialDelay * 2^(retry -
   * 1)}, capped at {@code maxDelay}, then "equal jitter" — uniformly drawn from its upper half — so
   * that many machines booting at once do not retry in lockstep.
   */
  public Duration delay(int retry, RandomGenerator random) {
    long base = initialDelay.toMillis();
    long capped = Math.min(maxDelay.toMillis(), base << Math.min(retry - 1, 30));
    if (capped <= 1) {
      return Duration.ofMillis(capped);
    }
    long half = capped / 2;
    return Duration.ofMillis(half + random.nextLong(capped - half + 1));
  }
}
