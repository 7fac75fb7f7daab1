package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.console.ConsoleCommand;
import io.chrootbooter.agent.daemon.AgentPolicy.Action;
import io.chrootbooter.agent.daemon.AgentPolicy.Event;
import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.DownloadCancelledException;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.Retries;
import io.chrootbooter.agent.lazy.LazyImage;
import io.chrootbooter.agent.pivot.CommandChecks;
import io.chrootbooter.agent.pivot.LastReturn;
import io.chrootbooter.agent.pivot.TargetControl;
import io.chrootbooter.agent.pivot.TargetSpec;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import io.chrootbooter.protocol.StatusReport;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * Carries out the {@link AgentPolicy}: every input becomes an {@link Event}, and the policy's
 * {@link Action}s are done here, on one worker thread for what loads and boots, so a desired state,
 * a console command and a trigger never race. The {@link TargetControl} owns enter and return; the
 * {@link Images} download, verify and mount; {@link AgentStatus} says what the status is.
 */
public final class Agent implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Agent.class);

  /** Static facts about this agent. */
  public record Settings(
      Path targetConsole,
      Duration grace,
      Optional<NetworkRestore> network,
      Supplier<AgentInfo> info) {}

  private final TargetControl controller;
  private final Images loader;
  private final Settings settings;
  private final PrintStream console;
  private final ExecutorService worker =
      Executors.newSingleThreadExecutor(
          r -> {
            Thread t = new Thread(r, "cb-agent");
            t.setDaemon(true);
            return t;
          });
  private final Map<Long, CancelSignal> cancels = new ConcurrentHashMap<>();
  private final FlightRecorder recorder = new FlightRecorder(java.time.Clock.systemUTC());
  private volatile Runnable onChange = () -> {};
  private volatile CommandChecks commandChecks;
  // Guarded by this: the policy's state, and the return handled last (by identity).
  private AgentPolicy.State state = AgentPolicy.State.INITIAL;
  private LastReturn handledReturn;
  // The worker's: the root of the load being entered, and how long its target has to be healthy.
  private ImageLoader.Prepared prepared;
  // The Lazy image of the target entered last, while it is not released.
  private volatile LazyImage runningLazy;

  public Agent(TargetControl controller, Images loader, Settings settings, PrintStream console) {
    this.controller = controller;
    this.loader = loader;
    this.settings = settings;
    this.console = console;
    controller.onChange(this::controllerChanged);
  }

  /** The previous run ended abnormally: reported as a failure until the next load. */
  public void previousRun(String what) {
    LOG.errorf("the agent's previous run %s", what);
    handle(new Event.Failure("the agent's previous run " + what), new Replies());
  }

  /**
   * Runs the commands of a BootTest's command checks that a desired state carries, in the target
   * booted with it once it reports healthy; their results go into {@link #status()}.
   */
  public void commandChecks(CommandChecks checks) {
    this.commandChecks = checks;
  }

  /** A change of what {@link #status()} says that no event of the policy made (a result). */
  public void statusChanged() {
    onChange.run();
  }

  /** Runs after every change of what {@link #status()} says. */
  public void onChange(Runnable listener) {
    this.onChange = listener;
  }

  /** The flight recorder of this agent's boots, switches and returns. */
  public FlightRecorder recorder() {
    return recorder;
  }

  public TargetControl controller() {
    return controller;
  }

  public Images loader() {
    return loader;
  }

  /** The policy's state now. */
  synchronized AgentPolicy.State state() {
    return state;
  }

  /** A desired state arrived (stream thread, or the command line once at start). */
  public void desired(DesiredState desired) {
    recorder.desiredArrived(desired);
    handle(new Event.Arrived(desired), new Replies());
  }

  /** {@code load} typed at the console: overrides the spec until its generation changes. */
  public List<String> consoleLoad(ConsoleCommand.Load load) throws IOException {
    DesiredState.Image image = AgentPolicy.consoleImage(load);
    handle(new Event.ConsoleLoadTyped(), new Replies());
    return Replies.onWorker(worker, r -> handle(new Event.ConsoleLoad(image), r));
  }

  /** {@code resume} at the console: follow the spec again, booting its image now. */
  public List<String> resume() throws IOException {
    return Replies.onWorker(
        worker, r -> handle(new Event.Resumed(controller.resume(), controller.phase()), r));
  }

  /** Decides on {@code event} and does what the policy says. */
  private void handle(Event event, Replies replies) {
    AgentPolicy.Decision d;
    synchronized (this) {
      d = AgentPolicy.decide(state, event);
      state = d.next();
    }
    boolean quiet = event instanceof Event.Progress || event instanceof Event.LoadPhase;
    if (!quiet) {
      LOG.infof("%s: %s", event.kind(), d.reason());
    }
    for (Action action : d.actions()) {
      try {
        execute(action, replies);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
  }

  private void execute(Action action, Replies replies) throws IOException {
    if (action instanceof Action.CancelLoad a) {
      cancel(a.id());
    } else if (action instanceof Action.SpecChanged a) {
      boolean free = controller.specChanged(a.generation(), a.run() != null);
      if (a.run() != null) {
        boolean override = controller.phase() == MachinePhase.ConsoleOverride;
        handle(new Event.SpecApplied(a.run(), free, override), replies);
      }
    } else if (action instanceof Action.QueueApply a) {
      worker.execute(() -> applyOnWorker(a.state()));
    } else if (action instanceof Action.QueueReboot a) {
      worker.execute(() -> handle(new Event.Reboot(a.state()), new Replies()));
    } else if (action instanceof Action.ReturnTarget a) {
      controller.trigger(a.trigger(), a.reason());
    } else if (action instanceof Action.StartLoad a) {
      recorder.loadStarted(a.load().state(), bootTimeoutOrZero(a.load().state()));
      load(a.load(), replies);
    } else if (action instanceof Action.ReleasePrepared) {
      recorder.loadFailed("cancelled: a newer desired state or load came");
      prepared.release().release();
    } else if (action instanceof Action.EnterTarget a) {
      // The network as the bootstrap has it is recorded before any target can change it.
      settings.network().ifPresent(NetworkRestore::awaitSnapshot);
      CommandChecks checks = commandChecks;
      if (checks != null) {
        checks.booted(null, List.of()); // the commands of an earlier target are done with
      }
      controller.boot(a.spec(), prepared.release(), LoadSteps.bootTimeout(a.state()));
      Optional<LazyImage> lazy = prepared.lazy();
      if (checks != null) {
        checks.booted(controller.session().orElse(null), a.state().commands());
        checks.poke(controller.session());
      }
      handle(new Event.Entered(a.id()), replies);
      // After Entered: a corruption found already fails the image that now runs.
      lazy.ifPresentOrElse(this::watch, () -> runningLazy = null);
    } else if (action instanceof Action.RestoreNetwork) {
      settings.network().ifPresent(NetworkRestore::restore);
    } else if (action instanceof Action.Show a) {
      console.print(a.text());
      console.flush();
    } else if (action instanceof Action.Reply a) {
      replies.lines.add(a.line());
    } else if (action instanceof Action.ReplyError a) {
      replies.error = a.message();
    } else if (action instanceof Action.Report) {
      onChange.run();
    }
  }

  private void applyOnWorker(DesiredState desired) {
    try {
      Optional<String> running = controller.session().map(s -> s.spec().imageUrl());
      handle(new Event.Apply(desired, running), new Replies());
    } catch (RuntimeException e) {
      Throwable cause = e instanceof java.io.UncheckedIOException u ? u.getCause() : e;
      LOG.errorf(cause, "applying generation %d failed", desired.generation());
      String message = cause.getMessage() == null ? cause.toString() : cause.getMessage();
      handle(new Event.Failure(message), new Replies());
    }
  }

  /** Downloads, verifies and mounts {@code load}'s image, then lets the policy enter it. */
  private void load(AgentPolicy.Load load, Replies replies) {
    long id = load.id();
    CancelSignal cancel = cancels.computeIfAbsent(id, k -> new CancelSignal());
    try {
      FetchOptions options =
          new FetchOptions(
              Retries.DOWNLOAD,
              Retries.STALL_TIMEOUT,
              cancel,
              p -> {
                recorder.progress(p);
                handle(new Event.Progress(id, p), replies);
              },
              1000);
      prepared =
          loader.prepare(
              LoadSteps.request(load.state()),
              options,
              phase -> {
                recorder.loadPhase(phase);
                handle(new Event.LoadPhase(id, phase), replies);
              });
      recorder.prepared(prepared.sha256());
      TargetSpec spec;
      try {
        spec = LoadSteps.spec(load.state(), prepared.root(), settings);
      } catch (RuntimeException e) {
        prepared.release().release();
        throw e;
      }
      handle(
          new Event.Prepared(
              id,
              spec,
              prepared.sha256(),
              prepared.cached(),
              prepared.note(),
              cancel.isCancelled()),
          replies);
    } catch (RuntimeException | IOException | LinkageError | StackOverflowError e) {
      // LinkageError: a native library that cannot load (a broken bootstrap) must fail the
      // load with its message, not end the worker thread with the phase stuck at Downloading;
      // StackOverflowError: a hostile image's nesting. An exhausted heap ends the JVM instead
      // (-XX:+ExitOnOutOfMemoryError): init restarts the agent, which says so (previousRun).
      Throwable cause = e instanceof java.io.UncheckedIOException u ? u.getCause() : e;
      boolean cancelled = cause instanceof DownloadCancelledException || cancel.isCancelled();
      recorder.loadFailed(
          cancelled
              ? "cancelled: a newer desired state or load came"
              : cause.getMessage() == null ? cause.toString() : cause.getMessage());
      handle(new Event.LoadFailed(id, cause, cancelled), replies);
    } finally {
      cancels.remove(id);
      prepared = null;
    }
  }

  /**
   * Follows the running Lazy image: its prefetch's progress goes into the status, and a block that
   * fails its dm-verity check returns the target and fails (reason {@code VerityMismatch}).
   */
  private void watch(LazyImage lazy) {
    runningLazy = lazy;
    lazy.onProgress(
        () -> {
          if (runningLazy == lazy) {
            onChange.run();
          }
        });
    lazy.onCorruption(
        c -> {
          if (runningLazy != lazy || lazy.closed()) {
            return; // a late report of an image already released
          }
          String message =
              StatusReport.VERITY_MISMATCH
                  + (c.kind().equals("data") ? "data block " : "hash tree block ")
                  + (c.block() < 0 ? "(unknown)" : String.valueOf(c.block()))
                  + " of the running image failed its dm-verity check ("
                  + c.device()
                  + "); the read failed and the machine returns to the bootstrap";
          handle(new Event.ImageFailed(ReturnTrigger.VerityMismatch, message), new Replies());
        });
  }

  private static java.time.Duration bootTimeoutOrZero(DesiredState state) {
    try {
      return LoadSteps.bootTimeout(state);
    } catch (RuntimeException e) {
      return java.time.Duration.ZERO; // the load refuses it, with the reason
    }
  }

  private void cancel(long id) {
    cancels.computeIfAbsent(id, k -> new CancelSignal()).cancel();
  }

  /** After the controller changed: a new return is the policy's to handle. */
  private void controllerChanged() {
    CommandChecks checks = commandChecks;
    if (checks != null) {
      checks.poke(controller.session()); // the target may have reported healthy
    }
    Optional<LastReturn> last = controller.lastReturn();
    synchronized (this) {
      if (last.isEmpty() || last.get() == handledReturn) {
        last = Optional.empty();
      } else {
        handledReturn = last.get();
      }
    }
    if (last.isPresent()) {
      boolean override = controller.phase() == MachinePhase.ConsoleOverride;
      handle(new Event.Returned(last.get(), override), new Replies());
    } else {
      onChange.run();
    }
  }

  /**
   * The phase the status reports. Lock order: the controller is never called while this object's
   * lock is held (the controller calls back into it under its own lock).
   */
  public MachinePhase phase() {
    MachinePhase controllerPhase = controller.phase();
    return AgentPolicy.phase(state(), controllerPhase);
  }

  /** The status report as of now. */
  public StatusReport status() {
    StatusReport report =
        AgentStatus.report(controller, this::phase, this::state, settings.info().get())
            .withTimelines(recorder.timelines());
    LazyImage lazy = runningLazy;
    if (lazy != null
        && !lazy.closed()
        && (report.phase() == MachinePhase.Running || report.phase() == MachinePhase.Returning)) {
      report = report.withPrefetch(lazy.prefetch());
    }
    CommandChecks checks = commandChecks;
    Optional<io.chrootbooter.agent.pivot.TargetSession> session = controller.session();
    if (checks == null || report.phase() != MachinePhase.Running || session.isEmpty()) {
      return report;
    }
    return report.withCommands(checks.results(session.get()));
  }

  /** Lines for the console's {@code status}. */
  public List<String> statusLines() {
    boolean running = controller.session().isPresent();
    return AgentStatus.lines(state(), running);
  }

  /** Stops following; returns a running target (trigger {@code Console}, "agent shutdown"). */
  @Override
  public void close() throws IOException {
    cancels.values().forEach(CancelSignal::cancel);
    worker.shutdownNow();
    controller.close();
  }
}
