package io.chrootbooter.agent.pivot;

import io.chrootbooter.agent.trigger.HelperInbox;
import io.chrootbooter.agent.trigger.HelperMessage;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.jboss.logging.Logger;

/**
 * The agent's boot state machine: at most one target at a time, every trigger funnels into {@link
 * #trigger}, and the console override of docs/architecture.md §2. Thread-safe: triggers arrive on
 * watcher threads, the console and the operator stream on theirs.
 */
public final class BootController implements TargetControl {
  private static final Logger LOG = Logger.getLogger(BootController.class);

  private final PivotConfig config;
  private final Signals signals;
  private final Clock clock;
  private final ScheduledExecutorService timer;

  // Written under this object's lock; read without it, so that a status report is never held up
  // by a boot or a return, which keep the lock for seconds.
  private volatile TargetSession session;
  private volatile MachinePhase phase = MachinePhase.Bootstrap;
  private volatile LastReturn lastReturn;
  private long specGeneration;
  private boolean specNamesImage;
  private long overrideGeneration = -1;
  private ScheduledFuture<?> bootTimeout;
  private volatile Runnable listener = () -> {};
  private volatile ConsoleHook consoles;
  private volatile FlightSteps steps = FlightSteps.NONE;

  public BootController(PivotConfig config, Signals signals, Clock clock) throws IOException {
    this.config = config;
    this.signals = signals;
    this.clock = clock;
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "cb-boot-timer");
              t.setDaemon(true);
              return t;
            });
    config.state().phase(MachinePhase.Bootstrap);
    config.state().noTarget();
  }

  /**
   * Runs {@code listener} after every change of phase, session or last return (from whichever
   * thread made it; keep it short, e.g. poke a status reporter).
   */
  public void onChange(Runnable listener) {
    this.listener = listener == null ? () -> {} : listener;
  }

  /** Tells {@code steps} the steps of every enter and return from now on. */
  public void steps(FlightSteps steps) {
    this.steps = steps == null ? FlightSteps.NONE : steps;
  }

  /** Relays and records the consoles of every target booted from now on; null for none. */
  public void consoles(ConsoleHook hook) {
    this.consoles = hook;
  }

  /**
   * The phase after a return: a return by a human or the target itself (hotkey, serial, helper,
   * console) while the spec still names an image holds the machine in {@link
   * MachinePhase#ConsoleOverride}; anything else goes back to {@link MachinePhase#Bootstrap}. Pure.
   */
  public static MachinePhase phaseAfterReturn(ReturnTrigger trigger, boolean specNamesImage) {
    return trigger.overridesSpec() && specNamesImage
        ? MachinePhase.ConsoleOverride
        : MachinePhase.Bootstrap;
  }

  /**
   * Whether a spec update ends a console override taken at {@code overrideGeneration}: only a new
   * generation does, a replay of the same one (a stream reconnect) does not. Pure.
   */
  public static boolean overrideEnds(long overrideGeneration, long newGeneration) {
    return newGeneration != overrideGeneration;
  }

  /**
   * Boots {@code spec}; any running target is returned first (trigger {@link
   * ReturnTrigger#SpecChange}).
   *
   * @param image the root's mounts, released on return; may be null
   * @param bootTimeout how long the target has to run {@code /.bootstrap-return --healthy}; zero
   *     for no limit
   */
  public synchronized void boot(TargetSpec spec, Teardown.Step image, Duration healthyWithin)
      throws IOException {
    if (session != null) {
      returnNow(ReturnTrigger.SpecChange, "new image " + spec.imageUrl(), clock.instant());
    }
    overrideGeneration = -1;
    // The helper's messages are bound to this target: a late one never returns the next target.
    AtomicReference<TargetSession> owner = new AtomicReference<>();
    HelperInbox inbox = new HelperInbox(timer, message -> handleHelper(owner, message));
    session =
        TargetSession.enter(spec, config, image, signals, clock, inbox::offer, consoles, steps);
    owner.set(session);
    TargetSession started = session;
    phase = MachinePhase.Running;
    listener.run();
    started
        .target()
        .onExit()
        .thenRunAsync(
            () -> triggerAsync(started, ReturnTrigger.TargetExit, "the target's init exited"),
            timer);
    if (!healthyWithin.isZero()) {
      bootTimeout =
          timer.schedule(
              () ->
                  triggerAsync(
                      started,
                      ReturnTrigger.BootTimeout,
                      "not healthy within " + healthyWithin.toMillis() + " ms"),
              healthyWithin.toMillis(),
              TimeUnit.MILLISECONDS);
    }
  }

  /**
   * Runs on the timer thread (the return closes the FIFO's watcher, so not on that): at most one
   * call per message kind is pending however many the target writes ({@link HelperInbox}).
   */
  private void handleHelper(AtomicReference<TargetSession> owner, HelperMessage message) {
    if (message instanceof HelperMessage.Healthy) {
      synchronized (this) {
        if (session == null || session != owner.get()) {
          return;
        }
        if (bootTimeout != null) {
          bootTimeout.cancel(false);
          bootTimeout = null;
        }
        session.markHealthy();
        steps.healthy(clock.instant());
      }
      LOG.info("the target reports healthy");
      listener.run();
    } else if (message instanceof HelperMessage.Return r) {
      Instant at = clock.instant();
      synchronized (this) {
        // The owner is set under this lock, before boot() releases it.
        if (session == null || session != owner.get()) {
          return;
        }
        try {
          returnNow(ReturnTrigger.Helper, r.reason(), at);
        } catch (IOException e) {
          LOG.errorf(e, "return by %s failed", ReturnTrigger.Helper);
          phase = MachinePhase.Failed;
        }
      }
    }
  }

  /** Returns only if {@code expected} is still the running session (a late event is dropped). */
  private void triggerAsync(TargetSession expected, ReturnTrigger trigger, String reason) {
    Instant at = clock.instant();
    synchronized (this) {
      if (session != expected) {
        return;
      }
      try {
        returnNow(trigger, reason, at);
      } catch (IOException e) {
        LOG.errorf(e, "return by %s failed", trigger);
      }
    }
  }

  /**
   * A trigger fired: returns to the bootstrap if a target runs. Safe to call from any thread; a
   * trigger while nothing runs is logged and ignored.
   *
   * @return the return's report, empty when nothing ran
   */
  public Optional<LastReturn> trigger(ReturnTrigger trigger, String reason) {
    Instant at = clock.instant();
    synchronized (this) {
      if (session == null) {
        LOG.infof("%s (%s): no target runs", trigger, reason);
        return Optional.empty();
      }
      try {
        return Optional.of(returnNow(trigger, reason, at));
      } catch (IOException e) {
        LOG.errorf(e, "return by %s failed", trigger);
        phase = MachinePhase.Failed;
        return Optional.empty();
      }
    }
  }

  private LastReturn returnNow(ReturnTrigger trigger, String reason, Instant at)
      throws IOException {
    steps.returnTriggered(trigger, reason, at);
    phase = MachinePhase.Returning;
    listener.run();
    if (bootTimeout != null) {
      bootTimeout.cancel(false);
      bootTimeout = null;
    }
    TargetSession ending = session;
    try {
      lastReturn = ending.returnToBootstrap(trigger, reason, at);
    } finally {
      session = null;
    }
    phase = phaseAfterReturn(trigger, specNamesImage);
    if (phase == MachinePhase.ConsoleOverride) {
      overrideGeneration = specGeneration;
    }
    config.state().phase(phase);
    // The agent restores the bootstrap's network on this call (its policy's RestoreNetwork).
    listener.run();
    steps.returnEnded(clock.instant());
    return lastReturn;
  }

  /**
   * The operator's desired state changed. Ends a console override when the generation is new.
   *
   * @return whether the caller should now boot the spec's image
   */
  public synchronized boolean specChanged(long generation, boolean namesImage) throws IOException {
    boolean newGeneration = generation != specGeneration;
    specGeneration = generation;
    specNamesImage = namesImage;
    if (phase == MachinePhase.ConsoleOverride) {
      if (!overrideEnds(overrideGeneration, generation)) {
        return false;
      }
      phase = MachinePhase.Bootstrap;
      config.state().phase(phase);
      listener.run();
    }
    if (session != null && newGeneration) {
      returnNow(ReturnTrigger.SpecChange, "spec generation " + generation, clock.instant());
    }
    return namesImage && session == null;
  }

  /** {@code resume} at the console: leave the override; true when the spec names an image. */
  public synchronized boolean resume() throws IOException {
    if (phase == MachinePhase.ConsoleOverride) {
      phase = MachinePhase.Bootstrap;
      config.state().phase(phase);
      listener.run();
    }
    return specNamesImage && session == null;
  }

  public MachinePhase phase() {
    return phase;
  }

  public Optional<LastReturn> lastReturn() {
    return Optional.ofNullable(lastReturn);
  }

  /** The running session, if any. */
  public Optional<TargetSession> session() {
    return Optional.ofNullable(session);
  }

  /** Ends any running target (trigger {@link ReturnTrigger#Console}: the agent stops). */
  @Override
  public void close() throws IOException {
    synchronized (this) {
      if (session != null) {
        returnNow(ReturnTrigger.Console, "agent shutdown", clock.instant());
      }
    }
    timer.shutdownNow();
  }
}
