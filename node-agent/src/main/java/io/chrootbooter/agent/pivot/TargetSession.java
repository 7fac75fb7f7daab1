package io.chrootbooter.agent.pivot;

import io.chrootbooter.agent.confine.DeviceFilter;
import io.chrootbooter.agent.sys.LinuxSyscalls;
import io.chrootbooter.agent.trigger.DeviceWatcher;
import io.chrootbooter.agent.trigger.HelperMessage;
import io.chrootbooter.agent.trigger.TriggerWatchers;
import io.chrootbooter.agent.unpack.RootCheck;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import io.chrootbooter.protocol.Timeline;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * One boot of one target, and the single owner of everything it acquired: the image mounts handed
 * in, the console's terminal settings ({@link ConsoleMode}), the staging directory with the
 * helper's FIFO and script, the FIFO's watcher, the cgroup and the processes in it. {@link
 * #returnToBootstrap} ends the target and walks the teardown list in reverse; so does a failed
 * {@link #enter}.
 */
public final class TargetSession {
  private static final Logger LOG = Logger.getLogger(TargetSession.class);
  private static final AtomicInteger SEQUENCE = new AtomicInteger();

  /** mknod(2) type bits of a FIFO. */
  private static final int S_IFIFO = 0010000;

  private final TargetSpec spec;
  private final PivotConfig config;
  private final Teardown teardown;
  private final Target target;
  private final Clock clock;
  private final FlightSteps steps;
  private LastReturn lastReturn;

  private TargetSession(
      TargetSpec spec,
      PivotConfig config,
      Teardown teardown,
      Target target,
      Clock clock,
      FlightSteps steps) {
    this.steps = steps;
    this.spec = spec;
    this.config = config;
    this.teardown = teardown;
    this.target = target;
    this.clock = clock;
  }

  /**
   * Enters the target.
   *
   * @param image the mounts of the prepared root, released after the target is gone; may be null
   *     when the caller owns them
   * @param helper called on a watcher thread for each message of the in-target helper
   */
  public static TargetSession enter(
      TargetSpec spec,
      PivotConfig config,
      Teardown.Step image,
      Signals signals,
      Clock clock,
      Consumer<HelperMessage> helper)
      throws IOException {
    return enter(spec, config, image, signals, clock, helper, null);
  }

  /**
   * As {@link #enter(TargetSpec, PivotConfig, Teardown.Step, Signals, Clock, Consumer)}, with the
   * target's consoles relayed by {@code consoles} (null for none): started before the target,
   * released after its last process is gone and before the console's settings are put back.
   */
  public static TargetSession enter(
      TargetSpec spec,
      PivotConfig config,
      Teardown.Step image,
      Signals signals,
      Clock clock,
      Consumer<HelperMessage> helper,
      ConsoleHook consoles)
      throws IOException {
    return enter(spec, config, image, signals, clock, helper, consoles, FlightSteps.NONE);
  }

  /**
   * As {@link #enter(TargetSpec, PivotConfig, Teardown.Step, Signals, Clock, Consumer,
   * ConsoleHook)}, telling {@code steps} when the enter began ({@code pivot-root}), when {@code
   * pivot_root} was done and the init exec'd, and the steps of this target's return.
   */
  public static TargetSession enter(
      TargetSpec spec,
      PivotConfig config,
      Teardown.Step image,
      Signals signals,
      Clock clock,
      Consumer<HelperMessage> helper,
      ConsoleHook consoles,
      FlightSteps steps)
      throws IOException {
    steps.step(Timeline.PIVOT_ROOT, clock.instant(), null);
    Teardown teardown = new Teardown();
    if (image != null) {
      teardown.push("image mounts of " + spec.root(), image);
    }
    boolean ok = false;
    try {
      RootCheck.check(spec.root(), spec.init(), RootCheck.Machine.current());
      // Every path the enter step mounts on, checked and made inside the root, never through a
      // symbolic link: a hostile image is refused here, before anything runs in it.
      MountPoints.Prepared points = MountPoints.prepare(spec.root());
      // Pushed before the target: restored after its last process is gone, so it cannot undo it.
      Optional<ConsoleMode> mode = ConsoleMode.save(spec.console());
      if (mode.isPresent()) {
        teardown.push("console mode of " + spec.console(), mode.get()::restore);
      }
      TargetSpec entered = spec;
      Map<String, Path> consoleBinds = Map.of();
      if (consoles != null) {
        ConsoleHook.Consoles relayed = consoles.start(spec);
        teardown.push("console relay", relayed);
        entered = spec.withConsole(relayed.console());
        consoleBinds = relayed.binds();
      }
      String name = "target-" + ProcessHandle.current().pid() + "-" + SEQUENCE.incrementAndGet();
      Path staging = Files.createDirectories(config.staging()).resolve(name);
      Files.createDirectory(
          staging,
          PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      teardown.push("staging " + staging, () -> deleteTree(staging));
      Path fifo = staging.resolve("return.fifo");
      // Root inside the target only: other users of the target cannot take the machine back.
      LinuxSyscalls syscalls = new LinuxSyscalls();
      syscalls.mknod(fifo, S_IFIFO | 0600, 0, 0);
      syscalls.chmod(fifo, 0600);
      Path script = staging.resolve("bootstrap-return");
      Files.writeString(script, EnterScript.helperScript());
      Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("r-xr-xr-x"));
      Path cmdline = staging.resolve("cmdline");
      Files.writeString(cmdline, EnterScript.targetCommandLine(readCmdline()));
      Files.setPosixFilePermissions(cmdline, PosixFilePermissions.fromString("r--r--r--"));
      DeviceWatcher watcher = TriggerWatchers.helper(fifo, helper);
      teardown.push("helper FIFO watcher", watcher::close);
      Cgroup cgroup =
          Cgroup.create(config.cgroupParent(), name, config.pidsMax(), config.memoryMax());
      teardown.push("cgroup " + cgroup.dir(), cgroup::close);
      if (spec.confinement() == Confinement.Confined) {
        // Before anything runs in the cgroup: its processes open only the private /dev's devices.
        DeviceFilter.attach(cgroup.dir(), DeviceFilter.allowed(spec.console(), spec.devices()));
      }
      Target target =
          Target.start(
              config.busybox(),
              entered,
              fifo,
              points.helper() ? Optional.of(script) : Optional.empty(),
              cmdline,
              cgroup,
              signals,
              consoleBinds,
              steps);
      teardown.push("target processes", () -> target.stop(Signals.SIGKILL, Duration.ZERO));
      config.state().running(target.initPid(), spec.imageUrl(), clock.instant());
      ok = true;
      return new TargetSession(spec, config, teardown, target, clock, steps);
    } finally {
      if (!ok) {
        teardown.close();
      }
    }
  }

  private static String readCmdline() throws IOException {
    return Files.readString(Path.of("/proc/cmdline"), java.nio.charset.StandardCharsets.UTF_8);
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (var walk = Files.walk(dir)) {
      for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  /** The running target. */
  public Target target() {
    return target;
  }

  /** What was booted. */
  public TargetSpec spec() {
    return spec;
  }

  private volatile boolean healthy;

  /** Whether the target ran {@code /.bootstrap-return --healthy}. */
  public boolean healthy() {
    return healthy;
  }

  /** The target reported healthy. */
  void markHealthy() {
    healthy = true;
  }

  /** The return, once done. */
  public synchronized LastReturn lastReturn() {
    return lastReturn;
  }

  /**
   * Ends the target and releases everything, in reverse order of acquisition. Idempotent: a second
   * call returns the first call's report.
   *
   * @param triggeredAt when the trigger fired, the start of {@code lastReturn.duration}
   */
  public synchronized LastReturn returnToBootstrap(
      ReturnTrigger trigger, String reason, Instant triggeredAt) throws IOException {
    if (lastReturn != null) {
      return lastReturn;
    }
    long start = System.nanoTime();
    config.state().phase(MachinePhase.Returning);
    boolean forced;
    try {
      forced =
          target.stop(
              spec.gracefulSignal(),
              trigger == ReturnTrigger.TargetExit ? Duration.ZERO : spec.grace(),
              steps);
    } finally {
      steps.step(Timeline.TEARDOWN, clock.instant(), null);
      try {
        teardown.close();
        config.state().noTarget();
      } finally {
        steps.step(Timeline.BOOTSTRAP_READY, clock.instant(), null);
      }
    }
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    Duration sinceTrigger = Duration.between(triggeredAt, clock.instant());
    lastReturn =
        new LastReturn(
            trigger,
            reason,
            triggeredAt,
            sinceTrigger.compareTo(took) > 0 ? sinceTrigger : took,
            forced,
            target.exitDescription());
    LOG.infof(
        "returned from %s: trigger %s (%s), %s, init %s, %d ms",
        spec.root(),
        trigger,
        reason,
        forced ? "forced" : "graceful",
        lastReturn.initExit(),
        lastReturn.duration().toMillis());
    return lastReturn;
  }
}
