package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.console.ConsoleCommand;
import io.chrootbooter.agent.console.ProgressBar;
import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.DownloadCancelledException;
import io.chrootbooter.agent.fetch.DownloadProgress;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.RetryPolicy;
import io.chrootbooter.agent.pivot.BootController;
import io.chrootbooter.agent.pivot.LastReturn;
import io.chrootbooter.agent.pivot.TargetSession;
import io.chrootbooter.agent.pivot.TargetSpec;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.protocol.Action;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.Progress;
import io.chrootbooter.protocol.ReturnTrigger;
import io.chrootbooter.protocol.StatusReport;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * The agent's decisions: which image to load and when, on one worker thread, so a desired state, a
 * console command and a trigger never race. The {@link BootController} owns enter and return; the
 * {@link ImageLoader} owns download, verify and mount; this class owns "what next" and what the
 * status says.
 *
 * <p>Rules: a desired state is applied once per generation and image (a stream replay does nothing;
 * a BootImage re-mirrored under the same MachineBoot generation names another image, {@link
 * DesiredState.Image#identity()}, and is booted); a new generation or image cancels a download in
 * progress and returns a running target ({@code SpecChange}); a failed load waits for a new
 * generation, a new image or {@code resume}; a console {@code load} wins over the spec, and a
 * console override holds, until the spec's generation changes (a new image alone does not end
 * them); a target that powers itself off leaves the machine in the bootstrap, one that reboots
 * itself is booted again; {@code Hold} changes nothing on the machine (a running target keeps
 * running) but cancels a download of an older generation.
 */
public final class Agent implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Agent.class);

  /** Static facts about this agent. */
  public record Settings(
      Path targetConsole,
      Duration grace,
      Optional<NetworkRestore> network,
      Supplier<AgentInfo> info) {}

  private final BootController controller;
  private final ImageLoader loader;
  private final Settings settings;
  private final PrintStream console;
  private final ExecutorService worker =
      Executors.newSingleThreadExecutor(
          r -> {
            Thread t = new Thread(r, "cb-agent");
            t.setDaemon(true);
            return t;
          });
  private volatile Runnable onChange = () -> {};

  // Guarded by this.
  private DesiredState desired;
  private long appliedGeneration = -1;
  // What the applied generation boots: a re-mirrored BootImage under the same generation differs.
  private DesiredState.Identity appliedImage;
  // The last load was typed at the console: it wins over the spec until its generation changes.
  private boolean consoleWins;
  private CancelSignal loadCancel;
  private MachinePhase loadPhase;
  private DownloadProgress progress;
  private String error;
  private Booted booted;
  private Booted bootedBefore;
  private DesiredState runningState;
  private LastReturn handledReturn;
  private boolean progressDone;
  private long heldGeneration = -1;

  public Agent(
      BootController controller, ImageLoader loader, Settings settings, PrintStream console) {
    this.controller = controller;
    this.loader = loader;
    this.settings = settings;
    this.console = console;
    controller.onChange(this::controllerChanged);
  }

  /**
   * The agent's previous run in this boot ended abnormally (the bootstrap's launcher says how):
   * reported as a failure until the next load, so that status and Events show it.
   */
  public void previousRun(String what) {
    LOG.errorf("the agent's previous run %s", what);
    fail("the agent's previous run " + what);
  }

  /** Runs after every change of what {@link #status()} says. */
  public void onChange(Runnable listener) {
    this.onChange = listener;
  }

  /** The controller (for triggers and the console). */
  public BootController controller() {
    return controller;
  }

  /** The image loader (for the console's {@code images}). */
  public ImageLoader loader() {
    return loader;
  }

  /** The latest desired state, if any arrived. */
  public synchronized Optional<DesiredState> desired() {
    return Optional.ofNullable(desired);
  }

  // ---- inputs -------------------------------------------------------------------------------

  /** A desired state arrived (stream thread, or the command line once at start). */
  public void desired(DesiredState state) {
    synchronized (this) {
      desired = state;
      if (loadCancel != null && supersedesLoad(state)) {
        LOG.infof("generation %d supersedes the download in progress", state.generation());
        loadCancel.cancel();
      }
    }
    worker.execute(() -> apply(state, false));
  }

  /** {@code load} typed at the console: overrides the spec until its generation changes. */
  public List<String> consoleLoad(ConsoleCommand.Load load) throws IOException {
    ImageFormat format = load.format().or(() -> ImageFormat.fromUrl(load.url())).orElse(null);
    if (format == null) {
      throw new IOException(
          "cannot tell the format from the URL; add --format " + ImageFormat.names("|"));
    }
    synchronized (this) {
      if (loadCancel != null) {
        loadCancel.cancel();
      }
    }
    return await(
        worker.submit(
            () -> {
              controller.trigger(ReturnTrigger.Console, "load typed at the console");
              DesiredState.Image image =
                  new DesiredState.Image(
                      null, load.url(), load.sha256().orElse(null), format, null, null);
              DesiredState state =
                  new DesiredState(
                      Action.Run, currentGeneration(), "console", image, "tmpfs", null, null, null);
              return load(state, true);
            }));
  }

  /** {@code resume} at the console: follow the spec again, booting its image now. */
  public List<String> resume() throws IOException {
    return await(
        worker.submit(
            () -> {
              boolean boot = controller.resume();
              DesiredState state;
              synchronized (this) {
                state = desired;
                error = null;
                consoleWins = false;
              }
              if (state == null) {
                return List.of("no desired state has arrived (phase " + phase() + ")");
              }
              if (state.action() == Action.Hold) {
                return List.of(
                    "following the spec; the operator holds generation "
                        + state.generation()
                        + " ("
                        + state.reason()
                        + "): nothing to boot (phase "
                        + phase()
                        + ")");
              }
              if (!boot || !state.runs()) {
                return List.of("following the spec (phase " + phase() + ")");
              }
              List<String> lines = new ArrayList<>();
              lines.add("console override ended; booting " + describe(state));
              lines.addAll(load(state, false));
              return lines;
            }));
  }

  /**
   * Whether {@code state} ends the load in progress: a new generation does, and so does a new image
   * of the applied generation (its BootImage was re-mirrored), unless the console's load won.
   */
  private boolean supersedesLoad(DesiredState state) {
    if (state.generation() != appliedGeneration) {
      return true;
    }
    return state.runs() && !consoleWins && !state.image().identity().equals(appliedImage);
  }

  // ---- the worker ---------------------------------------------------------------------------

  private void apply(DesiredState state, boolean force) {
    synchronized (this) {
      if (state != desired) {
        return; // a newer state is queued behind this one
      }
    }
    try {
      switch (state.action()) {
        case Hold -> hold(state);
        case Bootstrap -> {
          controller.specChanged(state.generation(), false);
          synchronized (this) {
            appliedGeneration = state.generation();
            appliedImage = null;
            consoleWins = false;
            error = null;
          }
          changed();
        }
        case Run -> {
          if (!state.runs()) {
            LOG.warn("a Run state without an image URL; ignored");
            return;
          }
          boolean free = controller.specChanged(state.generation(), true);
          boolean override = controller.phase() == MachinePhase.ConsoleOverride;
          synchronized (this) {
            if (!force && !isNew(state)) {
              return;
            }
            // Not free under the same generation: a console override holds until the generation
            // changes (or resume), whatever image the spec names now; a target that runs is
            // returned by the boot of the spec's new image, once that image is fetched and mounted.
            if (!free && override) {
              return;
            }
            consoleWins = false;
          }
          load(state, false);
        }
      }
    } catch (IOException | RuntimeException e) {
      LOG.errorf(e, "applying generation %d failed", state.generation());
      fail(e.getMessage());
    }
  }

  /**
   * Whether {@code state} asks for more than the machine has applied: a new generation, or under
   * the same generation a new image (a replay of the same image, as after a reconnect, does not
   * boot it again; nor does anything while the console's load wins).
   */
  private boolean isNew(DesiredState state) {
    if (state.generation() != appliedGeneration) {
      return true;
    }
    return !consoleWins && !state.image().identity().equals(appliedImage);
  }

  /**
   * {@code Hold}: the operator has nothing to apply for this generation (the MachineBoot's spec is
   * invalid, or its image is not Ready yet: a new image still mirroring, or the running one being
   * mirrored again). The machine keeps doing what it does: a running target keeps running, since an
   * invalid edit or a re-mirroring image must not end a machine's work; a console override stays;
   * the bootstrap stays the bootstrap. A download of an older generation was cancelled on arrival
   * ({@link #desired(DesiredState)}): its image is no longer wanted. The generation is not applied,
   * so the {@code Run} that follows once the spec is valid or the image Ready (same generation) is
   * applied, returning the running target then. Why it is held: the operator's conditions on the
   * MachineBoot ({@code InvalidSpec}, {@code ImageNotReady}), the console's {@code status}, and one
   * line on the console.
   */
  private void hold(DesiredState state) {
    boolean first;
    synchronized (this) {
      first = heldGeneration != state.generation();
      heldGeneration = state.generation();
    }
    LOG.infof("the operator holds generation %d: %s", state.generation(), state.reason());
    if (first) {
      Optional<String> running = controller.session().map(s -> s.spec().imageUrl());
      console.println(
          "chrootbooter: the operator holds generation "
              + state.generation()
              + " ("
              + state.reason()
              + "); "
              + running.map(url -> "<" + url + "> keeps running").orElse("nothing changes"));
      changed();
    }
  }

  /** Loads and boots {@code state}'s image; the lines tell the console what happened. */
  private List<String> load(DesiredState state, boolean fromConsole) {
    DesiredState.Image image = state.image();
    CancelSignal cancel = new CancelSignal();
    synchronized (this) {
      appliedGeneration = state.generation();
      appliedImage = image.identity();
      consoleWins |= fromConsole;
      loadCancel = cancel;
      loadPhase = MachinePhase.Downloading;
      progress = null;
      progressDone = false;
      error = null;
    }
    changed();
    String what = describe(state);
    console.println("chrootbooter: loading " + what);
    try {
      StopRule stop = StopRule.of(image.stop());
      ImageFormat format =
          Optional.ofNullable(image.format())
              .orElseThrow(
                  () ->
                      new IllegalArgumentException(
                          "image.format: missing or not known to this agent, which knows "
                              + ImageFormat.names(", ")));
      Overlay overlay = Overlay.parse(state.overlay() == null ? "tmpfs" : state.overlay());
      Optional<String> sha = Optional.ofNullable(image.sha256());
      FetchOptions options = new FetchOptions(RetryPolicy.DEFAULT, cancel, this::progress, 1000);
      ImageLoader.Prepared prepared =
          loader.prepare(
              new ImageLoader.Request(
                  image.url(), sha, format, overlay, image.kernelModulesOrDefault()),
              options,
              phase -> {
                synchronized (this) {
                  loadPhase = phase;
                }
                changed();
              });
      prepared.note().ifPresent(note -> console.println("chrootbooter: " + note));
      if (cancel.isCancelled()) {
        prepared.release().release();
        throw new DownloadCancelledException(image.url(), 0);
      }
      String init = image.init() == null ? TargetSpec.DEFAULT_INIT : image.init();
      TargetSpec spec =
          new TargetSpec(
              prepared.root(),
              init,
              image.url(),
              stop.signal().orElseGet(() -> InitSignals.gracefulSignal(prepared.root(), init)),
              stop.grace().orElse(settings.grace()),
              settings.targetConsole());
      LOG.infof(
          "%s: power-off signal %d%s, grace period %d ms%s",
          what,
          spec.gracefulSignal(),
          stop.signal().isPresent() ? " (BootImage)" : " (from the init)",
          spec.grace().toMillis(),
          stop.grace().isPresent() ? " (BootImage)" : " (--grace)");
      synchronized (this) {
        bootedBefore = booted;
        booted = new Booted(spec, image.name());
        runningState = state;
        loadPhase = null;
        progress = null;
      }
      console.println(
          "chrootbooter: entering "
              + what
              + " (sha256 "
              + prepared.sha256()
              + (prepared.cached() ? ", cached" : "")
              + ")");
      controller.boot(spec, prepared.release(), bootTimeout(state));
      return List.of("running " + what);
    } catch (DownloadCancelledException e) {
      LOG.infof("loading %s cancelled", what);
      return List.of("cancelled: " + what);
    } catch (IOException | RuntimeException | LinkageError | StackOverflowError e) {
      if (cancel.isCancelled()) {
        // Whatever a cancelled download broke on the way out (a half entry, a closed stream).
        LOG.infof("loading %s cancelled (%s)", what, e.getMessage());
        return List.of("cancelled: " + what);
      }
      // LinkageError: a native library that cannot load (a broken bootstrap) must fail the
      // load with its message, not end the worker thread with the phase stuck at Downloading;
      // StackOverflowError: a hostile image's nesting. An exhausted heap ends the JVM instead
      // (-XX:+ExitOnOutOfMemoryError): init restarts the agent, which says so (previousRun).
      String message = e.getMessage() == null ? e.toString() : e.getMessage();
      LOG.errorf("loading %s failed: %s", what, message);
      fail(message);
      if (fromConsole) {
        throw new IllegalStateException(message, e);
      }
      return List.of("failed: " + message);
    } finally {
      synchronized (this) {
        if (loadCancel == cancel) {
          loadCancel = null;
          loadPhase = null;
          progress = null;
        }
      }
      changed();
    }
  }

  private void progress(DownloadProgress p) {
    boolean complete = p.total() >= 0 && p.bytes() >= p.total();
    synchronized (this) {
      progress = p;
      if (progressDone) {
        return;
      }
      progressDone = complete;
    }
    console.print("\r" + ProgressBar.render(p.bytes(), p.total(), p.bytesPerSecond(), 30));
    if (complete) {
      console.println();
    }
    console.flush();
    changed();
  }

  private void fail(String message) {
    synchronized (this) {
      error = message.replaceAll("[^\\x20-\\x7e]", " ");
      if (error.length() > 1000) {
        error = error.substring(0, 1000);
      }
    }
    console.println("chrootbooter: failed: " + error);
    changed();
  }

  /** After the controller changed: a new return restores the network and may reboot the image. */
  private void controllerChanged() {
    Optional<LastReturn> last = controller.lastReturn();
    boolean newReturn;
    synchronized (this) {
      newReturn = last.isPresent() && last.get() != handledReturn;
      if (newReturn) {
        handledReturn = last.get();
      }
    }
    if (newReturn) {
      LastReturn r = last.get();
      console.println(
          "chrootbooter: back in the bootstrap ("
              + r.trigger()
              + (r.reason().isEmpty() ? "" : ": " + r.reason())
              + ", "
              + r.duration().toMillis()
              + " ms)"
              + (controller.phase() == MachinePhase.ConsoleOverride
                  ? "; console override: type 'resume' to follow the spec again"
                  : ""));
      settings.network().ifPresent(NetworkRestore::restore);
      if (r.trigger() == ReturnTrigger.TargetExit && r.initExit().contains("SIGHUP")) {
        // reboot(2) inside a PID namespace ends its init with SIGHUP: boot the image again.
        DesiredState again;
        synchronized (this) {
          again = runningState;
        }
        if (again != null) {
          worker.execute(() -> load(again, false));
        }
      }
    }
    changed();
  }

  private void changed() {
    onChange.run();
  }

  // ---- what the status says -------------------------------------------------------------------

  /**
   * The phase the status reports. Lock order: the controller is never called while this object's
   * lock is held (the controller calls back into it under its own lock).
   */
  public MachinePhase phase() {
    return phase(controller.phase());
  }

  private synchronized MachinePhase phase(MachinePhase controllerPhase) {
    // The next image is fetched and mounted while the current target still runs; once that target
    // is being ended, the return is what the machine does, and what the status must say.
    if (controllerPhase == MachinePhase.Returning) {
      return MachinePhase.Returning;
    }
    if (loadPhase != null) {
      return loadPhase;
    }
    if (error != null && controllerPhase == MachinePhase.Bootstrap) {
      return MachinePhase.Failed;
    }
    return controllerPhase;
  }

  /**
   * An image the agent booted, by the spec it booted it with: the status names the image of the
   * target session that exists, so during a switch the old image is named while it returns.
   */
  private record Booted(TargetSpec spec, String name) {}

  /** The status report as of now. */
  public StatusReport status() {
    // The session is read before and after the phase: a session that changed in between (a switch
    // completed) is read again, so the phase and the image named belong to the same target.
    Optional<TargetSession> session;
    MachinePhase phase;
    Optional<TargetSession> after = controller.session();
    do {
      session = after;
      phase = phase();
      after = controller.session();
    } while (!session.equals(after));
    Optional<LastReturn> last = controller.lastReturn();
    // A session in the bootstrap is one being entered this instant (the controller sets the
    // session, then Running): the bootstrap names no image.
    Optional<TargetSpec> running =
        phase == MachinePhase.Bootstrap || phase == MachinePhase.ConsoleOverride
            ? Optional.empty()
            : session.map(TargetSession::spec);
    synchronized (this) {
      Progress p =
          progress == null
              ? null
              : new Progress(
                  progress.bytes(),
                  progress.total() < 0 ? null : progress.total(),
                  (long) progress.bytesPerSecond());
      return new StatusReport(
          phase,
          p,
          running.map(this::imageOf).orElse(null),
          phase == MachinePhase.Failed ? error : null,
          last.map(
                  r ->
                      new io.chrootbooter.protocol.LastReturn(
                          r.trigger().name(),
                          r.reason().isEmpty() ? null : r.reason(),
                          r.time().toString(),
                          r.duration().toMillis(),
                          r.forced()))
              .orElse(null),
          settings.info().get(),
          appliedGeneration < 0 ? null : appliedGeneration);
    }
  }

  /** The name of the image booted with {@code spec} (null for a console {@code load}). */
  private String imageOf(TargetSpec spec) {
    if (booted != null && booted.spec() == spec) {
      return booted.name();
    }
    return bootedBefore != null && bootedBefore.spec() == spec ? bootedBefore.name() : null;
  }

  /** Lines for the console's {@code status}. */
  public List<String> statusLines() {
    boolean running = controller.session().isPresent();
    synchronized (this) {
      return statusLines(running);
    }
  }

  private List<String> statusLines(boolean running) {
    List<String> lines = new ArrayList<>();
    if (loadPhase != null && progress != null) {
      lines.add(
          "download: "
              + ProgressBar.render(
                  progress.bytes(), progress.total(), progress.bytesPerSecond(), 20));
    }
    if (error != null) {
      lines.add("error: " + error);
    }
    if (desired != null) {
      lines.add(
          "spec: generation "
              + desired.generation()
              + ", "
              + describe(desired)
              + (desired.action() == Action.Hold && running
                  ? "; the running image keeps running"
                  : ""));
    }
    return lines;
  }

  /** The state's {@code bootTimeout}; zero (no limit) when unset. */
  private static Duration bootTimeout(DesiredState state) {
    String timeout = state.bootTimeout();
    return timeout == null || timeout.isEmpty()
        ? Duration.ZERO
        : GoDuration.parse("bootTimeout", timeout);
  }

  private synchronized long currentGeneration() {
    return desired == null ? 0 : desired.generation();
  }

  static String describe(DesiredState state) {
    return switch (state.action()) {
      case Run ->
          state.image() == null
              ? "an image"
              : (state.image().name() == null ? "" : state.image().name() + " ")
                  + "<"
                  + state.image().url()
                  + ">";
      case Bootstrap -> "the bootstrap";
      case Hold -> "hold (" + state.reason() + ")";
    };
  }

  private static List<String> await(Future<List<String>> future) throws IOException {
    try {
      return future.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw io;
      }
      throw new IOException(cause.getMessage(), cause);
    }
  }

  /** Stops following; returns a running target (trigger {@code Console}, "agent shutdown"). */
  @Override
  public void close() throws IOException {
    synchronized (this) {
      if (loadCancel != null) {
        loadCancel.cancel();
      }
    }
    worker.shutdownNow();
    controller.close();
  }
}
