package io.chrootbooter.agent.pivot;

import java.nio.file.Path;
import java.time.Duration;
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
 */
public record TargetSpec(
    Path root, String init, String imageUrl, int gracefulSignal, Duration grace, Path console) {
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
  }

  /** This spec with another console (a relay's pty slave). */
  public TargetSpec withConsole(Path other) {
    return new TargetSpec(root, init, imageUrl, gracefulSignal, grace, other);
  }
}
