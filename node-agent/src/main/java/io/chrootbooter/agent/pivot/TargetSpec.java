package io.chrootbooter.agent.pivot;

import io.chrootbooter.agent.confine.ConfinedMounts;
import io.chrootbooter.protocol.Confinement;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * One target to boot.
 *
 * @param root the prepared root (overlay or extracted tree), checked by {@code RootCheck}
 * @param init the program to exec as PID 1, absolute inside the root (BootImage {@code init})
 * @param imageUrl recorded in {@code last_image_url}
 * @param gracefulSignal asks the init to power off: the BootImage's {@code spec.stop.signal}, or
 *     chosen from the init: {@code SIGRTMIN+4} for systemd, {@code SIGUSR2} for busybox init,
 *     {@code SIGTERM} for sysvinit
 * @param grace how long a graceful return may take before the cgroup is killed: the BootImage's
 *     {@code spec.stop.gracePeriod}, or the agent's {@code --grace} (default 10 s)
 * @param console the target's stdin, stdout and stderr (the bootstrap console; a log file in tests)
 * @param confinement how the target is confined ({@code io.chrootbooter.agent.confine})
 * @param devices the device nodes a {@link Confinement#Confined} target sees besides the basic
 *     ones; empty for a {@link Confinement#Machine} target, which sees them all
 */
public record TargetSpec(
    Path root,
    String init,
    String imageUrl,
    int gracefulSignal,
    Duration grace,
    Path console,
    Confinement confinement,
    List<String> devices) {
  public static final String DEFAULT_INIT = "/sbin/init";
  public static final Duration DEFAULT_GRACE = Duration.ofSeconds(10);

  public TargetSpec {
    Objects.requireNonNull(root, "root");
    init = init == null || init.isEmpty() ? DEFAULT_INIT : init;
    if (!init.startsWith("/") || init.contains("\n")) {
      throw new IllegalArgumentException(
          "init \"" + init + "\" is not an absolute path inside the image");
    }
    imageUrl = imageUrl == null ? "" : imageUrl;
    if (gracefulSignal <= 0 || gracefulSignal > 64) {
      throw new IllegalArgumentException(
          "gracefulSignal " + gracefulSignal + " is not a signal number 1..64");
    }
    grace = grace == null ? DEFAULT_GRACE : grace;
    if (grace.isNegative()) {
      throw new IllegalArgumentException("grace " + grace + " is negative");
    }
    Objects.requireNonNull(console, "console");
    confinement = confinement == null ? Confinement.DEFAULT : confinement;
    devices =
        confinement == Confinement.Confined ? ConfinedMounts.checkDevices(devices) : List.of();
  }

  /** A target with the whole machine ({@link Confinement#Machine}). */
  public TargetSpec(
      Path root, String init, String imageUrl, int gracefulSignal, Duration grace, Path console) {
    this(root, init, imageUrl, gracefulSignal, grace, console, Confinement.Machine, List.of());
  }

  /** This target with {@code confinement} and, when Confined, {@code devices}. */
  public TargetSpec confined(Confinement confinement, List<String> devices) {
    return new TargetSpec(
        root, init, imageUrl, gracefulSignal, grace, console, confinement, devices);
  }
}
