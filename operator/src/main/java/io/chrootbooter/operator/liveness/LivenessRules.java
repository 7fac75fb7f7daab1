package io.chrootbooter.operator.liveness;

import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.StatusReport;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Stream;

/** The pure decisions of liveness: lost or not, renew or not, rebooted or not. */
public final class LivenessRules {
  /** The longest Lease name: a DNS subdomain. */
  static final int MAX_NAME = 253;

  static final String LEASE_SUFFIX = "-agent";

  private LivenessRules() {}

  /** Whether an agent last heard from at {@code lastSeen} is lost at {@code now}. */
  public static boolean isLost(Instant lastSeen, Instant now, Duration lostAfter) {
    return !now.isBefore(lastSeen.plus(lostAfter));
  }

  /**
   * Whether a Lease renewed at {@code renewTime} (null: none yet) is renewed when the agent is
   * heard from at {@code now}: once it is older than a third of {@code lostAfter}. With the agent's
   * heartbeat at a quarter of lostAfter, that renews every second heartbeat, and a Lease is never
   * older than half of lostAfter while its agent speaks: one lost heartbeat does not make it lost.
   */
  public static boolean needsRenewal(Instant renewTime, Instant now, Duration lostAfter) {
    return renewTime == null || !now.isBefore(renewTime.plus(lostAfter.dividedBy(3)));
  }

  /**
   * Whether the status' {@code lastSeen} (null: none) is refreshed when the agent is heard from at
   * {@code now} and nothing else changed: once it is {@code lostAfter} old. That bounds the SEEN
   * column's lag for a live machine to lostAfter plus one heartbeat, for one status write per
   * machine per lostAfter.
   */
  public static boolean needsSeenWrite(Instant lastSeen, Instant now, Duration lostAfter) {
    return lastSeen == null || !now.isBefore(lastSeen.plus(lostAfter));
  }

  /** The heartbeat the operator asks agents for: a quarter of {@code lostAfter}, at least 1 s. */
  public static Duration heartbeat(Duration lostAfter) {
    Duration quarter = lostAfter.dividedBy(4);
    return quarter.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : quarter;
  }

  /**
   * Whether a report shows a reboot: it names another kernel boot id than the status, which showed
   * the machine {@code Running} or its agent lost. A report of a boot after a stay in the bootstrap
   * or a failure is a boot, not the end of a running image.
   */
  public static boolean rebooted(MachineBootStatus before, StatusReport report, boolean lost) {
    String previous = bootIdOf(before);
    String next = report.agent() == null ? null : report.agent().bootId();
    if (previous == null || next == null || previous.equals(next)) {
      return false;
    }
    return lost || before.phase() == MachinePhase.Running;
  }

  /** The kernel boot id the status shows, or null. */
  public static String bootIdOf(MachineBootStatus status) {
    return status == null || status.agent() == null ? null : status.agent().bootId();
  }

  /**
   * When the agent was last heard from, as far as the objects tell: the latest of the Lease's
   * renewal, the status' {@code lastSeen} and {@code lastReportTime}.
   */
  public static Optional<Instant> lastSeen(Instant leaseRenewed, MachineBootStatus status) {
    return Stream.of(
            Optional.ofNullable(leaseRenewed),
            parse(status == null ? null : status.lastSeen()),
            parse(status == null ? null : status.lastReportTime()))
        .flatMap(Optional::stream)
        .max(Instant::compareTo);
  }

  /** Whether liveness applies: the agent has reported (the phase is past the network boot). */
  public static boolean tracked(MachineBootStatus status) {
    return status != null
        && status.phase() != null
        && status.phase() != MachinePhase.Pending
        && status.phase() != MachinePhase.PXEBooting;
  }

  /**
   * The name of a MachineBoot's agent Lease: its name and {@code -agent}; a name too long for that
   * keeps its start and ends in a digest of the whole, so that two MachineBoots never share one.
   */
  public static String leaseName(String machineBoot) {
    Objects.requireNonNull(machineBoot, "machineBoot");
    if (machineBoot.length() + LEASE_SUFFIX.length() <= MAX_NAME) {
      return machineBoot + LEASE_SUFFIX;
    }
    String digest = digest(machineBoot);
    String head = machineBoot.substring(0, MAX_NAME - LEASE_SUFFIX.length() - digest.length() - 1);
    return head.replaceAll("[.-]+$", "") + "-" + digest + LEASE_SUFFIX;
  }

  /** An RFC 3339 time, empty when absent or not one. */
  public static Optional<Instant> parse(String time) {
    if (time == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(Instant.parse(time));
    } catch (DateTimeParseException e) {
      return Optional.empty();
    }
  }

  private static String digest(String text) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d, 0, 5);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
    }
  }
}
