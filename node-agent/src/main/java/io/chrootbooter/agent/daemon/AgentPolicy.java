package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.console.ConsoleCommand;
import io.chrootbooter.agent.console.ProgressBar;
import io.chrootbooter.agent.fetch.DownloadProgress;
import io.chrootbooter.agent.pivot.LastReturn;
import io.chrootbooter.agent.pivot.TargetSpec;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The agent's decisions, without I/O: {@link #decide} maps a {@link State} and an {@link Event} to
 * the next state, the {@link Action}s the {@link Agent} carries out, and the reason for them. The
 * {@link Agent} feeds every input to it (a desired state, a console command, a return, a load's
 * progress and outcome) and does what it says; the boot controller keeps the target session and the
 * console override (docs/architecture.md §6, "The agent's decisions", has the table).
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
public final class AgentPolicy {
  private AgentPolicy() {}

  /**
   * A load in progress (download, verify, mount, enter).
   *
   * @param id tells this load's events from a later one's
   * @param phase {@code Downloading}, {@code Verifying} or {@code Mounting}; null once the root is
   *     prepared and the target is being entered
   * @param progress the download's latest progress, null before the first
   * @param progressDone whether the console's progress bar reached 100 % (it is not drawn again)
   * @param cancelled whether a newer desired state or console {@code load} cancelled it
   */
  public record Load(
      long id,
      DesiredState state,
      boolean fromConsole,
      MachinePhase phase,
      DownloadProgress progress,
      boolean progressDone,
      boolean cancelled) {
    Load with(MachinePhase phase, DownloadProgress progress, boolean progressDone) {
      return new Load(id, state, fromConsole, phase, progress, progressDone, cancelled);
    }

    Load cancel() {
      return new Load(id, state, fromConsole, phase, progress, progressDone, true);
    }
  }

  /** An image the agent entered, by the spec it entered it with (its name for the status). */
  public record Booted(TargetSpec spec, String name) {}

  /**
   * What the agent knows and has done.
   *
   * @param desired the latest desired state, null before the first
   * @param appliedGeneration the generation applied last, -1 before the first
   * @param appliedImage what that generation boots (a re-mirrored BootImage under the same
   *     generation differs); null for the bootstrap
   * @param consoleWins the last load was typed at the console: it wins over the spec until the
   *     spec's generation changes
   * @param load the load in progress, null when none
   * @param error why the last load or application failed, until the next load or {@code resume}
   * @param heldGeneration the generation last announced as held, -1 before the first
   * @param running the desired state of the target entered last: booted again when it reboots
   * @param booted the image entered last; {@code bootedBefore} the one before (named while it
   *     returns during a switch)
   * @param loads how many loads were started (the next load's id)
   */
  public record State(
      DesiredState desired,
      long appliedGeneration,
      DesiredState.Identity appliedImage,
      boolean consoleWins,
      Load load,
      String error,
      long heldGeneration,
      DesiredState running,
      Booted booted,
      Booted bootedBefore,
      long loads) {
    /** The state an agent starts in. */
    public static final State INITIAL =
        new State(null, -1, null, false, null, null, -1, null, null, null, 0);

    /** The state's shape, one row per {@link Mode} and {@link Kind} in the policy's table. */
    public Mode mode() {
      if (load != null) {
        return Mode.LOADING;
      }
      if (error != null) {
        return Mode.FAILED;
      }
      if (consoleWins) {
        return Mode.CONSOLE;
      }
      return appliedGeneration < 0 ? Mode.WAITING : Mode.FOLLOWING;
    }

    State withDesired(DesiredState d) {
      return new State(
          d,
          appliedGeneration,
          appliedImage,
          consoleWins,
          load,
          error,
          heldGeneration,
          running,
          booted,
          bootedBefore,
          loads);
    }

    State withApplied(long generation, DesiredState.Identity image, boolean wins) {
      return new State(
          desired,
          generation,
          image,
          wins,
          load,
          error,
          heldGeneration,
          running,
          booted,
          bootedBefore,
          loads);
    }

    State withLoad(Load l) {
      return new State(
          desired,
          appliedGeneration,
          appliedImage,
          consoleWins,
          l,
          error,
          heldGeneration,
          running,
          booted,
          bootedBefore,
          loads);
    }

    State withError(String e) {
      return new State(
          desired,
          appliedGeneration,
          appliedImage,
          consoleWins,
          load,
          e,
          heldGeneration,
          running,
          booted,
          bootedBefore,
          loads);
    }

    State withHeld(long generation) {
      return new State(
          desired,
          appliedGeneration,
          appliedImage,
          consoleWins,
          load,
          error,
          generation,
          running,
          booted,
          bootedBefore,
          loads);
    }

    State withEntering(DesiredState state, Booted b) {
      return new State(
          desired,
          appliedGeneration,
          appliedImage,
          consoleWins,
          load.with(null, null, load.progressDone()),
          error,
          heldGeneration,
          state,
          b,
          booted,
          loads);
    }

    State withLoads(long n) {
      return new State(
          desired,
          appliedGeneration,
          appliedImage,
          consoleWins,
          load,
          error,
          heldGeneration,
          running,
          booted,
          bootedBefore,
          n);
    }
  }

  /** The shapes of {@link State} the table of decisions distinguishes. */
  public enum Mode {
    /** Nothing was applied yet (no desired state, or one not yet applied); nothing failed. */
    WAITING,
    /** Following the spec, whose generation was applied: nothing loads, nothing failed. */
    FOLLOWING,
    /** The console's load won over the spec; nothing loads, nothing failed. */
    CONSOLE,
    /** A load is in progress. */
    LOADING,
    /** The last load or application failed. */
    FAILED
  }

  /** The kinds of {@link Event}, one row per {@link Mode} each in the policy's table. */
  public enum Kind {
    DESIRED_ARRIVED,
    APPLY_RUN,
    APPLY_BOOTSTRAP,
    APPLY_HOLD,
    SPEC_APPLIED,
    CONSOLE_LOAD_TYPED,
    CONSOLE_LOAD,
    CONSOLE_RESUME,
    RETURNED_SPEC_CHANGE,
    RETURNED_HOTKEY,
    RETURNED_SERIAL,
    RETURNED_HELPER,
    RETURNED_CONSOLE,
    RETURNED_BOOT_TIMEOUT,
    RETURNED_TARGET_EXIT,
    RETURNED_TARGET_REBOOT,
    RETURNED_VERITY_MISMATCH,
    REBOOT,
    LOAD_PHASE,
    PROGRESS,
    PREPARED,
    ENTERED,
    LOAD_FAILED,
    LOAD_CANCELLED,
    FAILURE,
    IMAGE_FAILED
  }

  /** An input. */
  public sealed interface Event {
    Kind kind();

    /** A desired state arrived (stream thread, or the command line once at start). */
    record Arrived(DesiredState state) implements Event {
      public Kind kind() {
        return Kind.DESIRED_ARRIVED;
      }
    }

    /**
     * The worker's turn for a desired state that arrived.
     *
     * @param runningUrl the image of the target that runs now, if one does
     */
    record Apply(DesiredState state, Optional<String> runningUrl) implements Event {
      public Kind kind() {
        return switch (state.action()) {
          case Run -> Kind.APPLY_RUN;
          case Bootstrap -> Kind.APPLY_BOOTSTRAP;
          case Hold -> Kind.APPLY_HOLD;
        };
      }
    }

    /**
     * The controller's answer to {@link Action.SpecChanged} for a {@code Run}.
     *
     * @param free whether no target runs and no override holds the generation
     * @param override whether the controller is in {@code ConsoleOverride}
     */
    record SpecApplied(DesiredState state, boolean free, boolean override) implements Event {
      public Kind kind() {
        return Kind.SPEC_APPLIED;
      }
    }

    /** {@code load} typed at the console (its thread, before the worker's turn). */
    record ConsoleLoadTyped() implements Event {
      public Kind kind() {
        return Kind.CONSOLE_LOAD_TYPED;
      }
    }

    /** The worker's turn for a console {@code load} of {@code image}. */
    record ConsoleLoad(DesiredState.Image image) implements Event {
      public Kind kind() {
        return Kind.CONSOLE_LOAD;
      }
    }

    /**
     * {@code resume} at the console, after the controller left its override.
     *
     * @param boot the controller's answer: the spec names an image and no target runs
     * @param controllerPhase the controller's phase now
     */
    record Resumed(boolean boot, MachinePhase controllerPhase) implements Event {
      public Kind kind() {
        return Kind.CONSOLE_RESUME;
      }
    }

    /**
     * A target returned (any trigger, including {@code return} typed at the console).
     *
     * @param override whether the controller now holds a console override
     */
    record Returned(LastReturn last, boolean override) implements Event {
      public Kind kind() {
        return switch (last.trigger()) {
          case SpecChange -> Kind.RETURNED_SPEC_CHANGE;
          case Hotkey -> Kind.RETURNED_HOTKEY;
          case Serial -> Kind.RETURNED_SERIAL;
          case Helper -> Kind.RETURNED_HELPER;
          case Console -> Kind.RETURNED_CONSOLE;
          case BootTimeout -> Kind.RETURNED_BOOT_TIMEOUT;
          case TargetExit -> rebooted() ? Kind.RETURNED_TARGET_REBOOT : Kind.RETURNED_TARGET_EXIT;
          case VerityMismatch -> Kind.RETURNED_VERITY_MISMATCH;
        };
      }

      /** reboot(2) inside a PID namespace ends its init with SIGHUP. */
      boolean rebooted() {
        return last.trigger() == ReturnTrigger.TargetExit && last.initExit().contains("SIGHUP");
      }
    }

    /** The worker's turn to boot again the image of a target that rebooted itself. */
    record Reboot(DesiredState state) implements Event {
      public Kind kind() {
        return Kind.REBOOT;
      }
    }

    /** Load {@code id} reached {@code phase}. */
    record LoadPhase(long id, MachinePhase phase) implements Event {
      public Kind kind() {
        return Kind.LOAD_PHASE;
      }
    }

    /** Load {@code id}'s download progressed. */
    record Progress(long id, DownloadProgress progress) implements Event {
      public Kind kind() {
        return Kind.PROGRESS;
      }
    }

    /**
     * Load {@code id}'s root is mounted; {@code spec} would enter it.
     *
     * @param note what the user should know about the load (a cached image found altered)
     * @param cancelled whether the load's cancel signal fired meanwhile
     */
    record Prepared(
        long id,
        TargetSpec spec,
        String sha256,
        boolean cached,
        Optional<String> note,
        boolean cancelled)
        implements Event {
      public Kind kind() {
        return Kind.PREPARED;
      }
    }

    /** Load {@code id}'s target was entered. */
    record Entered(long id) implements Event {
      public Kind kind() {
        return Kind.ENTERED;
      }
    }

    /**
     * Load {@code id} ended with {@code cause} (any throwable the load let out).
     *
     * @param cancelled whether the load's cancel signal fired: what broke is then the cancel's
     *     doing, not a failure
     */
    record LoadFailed(long id, Throwable cause, boolean cancelled) implements Event {
      public Kind kind() {
        return cancelled ? Kind.LOAD_CANCELLED : Kind.LOAD_FAILED;
      }
    }

    /** Something failed outside a load (applying a desired state, the agent's previous run). */
    record Failure(String message) implements Event {
      public Kind kind() {
        return Kind.FAILURE;
      }
    }

    /**
     * The running image failed under its target (a block of a Lazy image failed its dm-verity
     * check): the machine returns to the bootstrap by {@code trigger} and reports {@code message}.
     */
    record ImageFailed(ReturnTrigger trigger, String message) implements Event {
      public Kind kind() {
        return Kind.IMAGE_FAILED;
      }
    }
  }

  /** An output, carried out by the {@link Agent} in order. */
  public sealed interface Action {
    /** Fire the cancel signal of load {@code id}. */
    record CancelLoad(long id) implements Action {}

    /**
     * Tell the controller the spec's generation (it ends an override of an older one and returns a
     * target of an older one); for a {@code Run} ({@code run} not null) feed back {@link
     * Event.SpecApplied} with its answer.
     */
    record SpecChanged(long generation, DesiredState run) implements Action {}

    /** Feed {@link Event.Apply} for {@code state} on the worker. */
    record QueueApply(DesiredState state) implements Action {}

    /** Feed {@link Event.Reboot} for {@code state} on the worker. */
    record QueueReboot(DesiredState state) implements Action {}

    /** Return a running target (none running: nothing happens). */
    record ReturnTarget(ReturnTrigger trigger, String reason) implements Action {}

    /** Download, verify and mount {@code load}'s image, feeding its events back. */
    record StartLoad(Load load) implements Action {}

    /** Unmount what the load prepared: it is not entered. */
    record ReleasePrepared() implements Action {}

    /**
     * Enter load {@code id}'s prepared root with {@code spec} (the controller returns a running
     * target first), under {@code state}'s {@code bootTimeout}; feed back {@link Event.Entered}.
     */
    record EnterTarget(long id, TargetSpec spec, DesiredState state) implements Action {}

    /** Bring the bootstrap's network back as the lease had it. */
    record RestoreNetwork() implements Action {}

    /** Write {@code text} to the console as it is. */
    record Show(String text) implements Action {}

    /** Lines that answer the console command being run. */
    record Reply(String line) implements Action {}

    /** The console command being run failed with {@code message}. */
    record ReplyError(String message) implements Action {}

    /** The status changed: report it. */
    record Report() implements Action {}
  }

  /** The next state, what to do, and why. */
  public record Decision(State next, List<Action> actions, String reason) {
    public Decision {
      actions = List.copyOf(actions);
    }
  }

  /** The decision on {@code event} in {@code state}. Pure. */
  public static Decision decide(State s, Event event) {
    if (event instanceof Event.Arrived e) {
      return arrived(s, e.state());
    }
    if (event instanceof Event.Apply e) {
      return apply(s, e);
    }
    if (event instanceof Event.SpecApplied e) {
      return specApplied(s, e);
    }
    if (event instanceof Event.ConsoleLoadTyped) {
      if (s.load() == null || s.load().cancelled()) {
        return nothing(s, "console load: no download to cancel");
      }
      return new Decision(
          s.withLoad(s.load().cancel()),
          List.of(new Action.CancelLoad(s.load().id())),
          "console load: cancels the load in progress");
    }
    if (event instanceof Event.ConsoleLoad e) {
      long generation = s.desired() == null ? 0 : s.desired().generation();
      DesiredState state =
          DesiredState.builder()
              .action(io.chrootbooter.protocol.Action.Run)
              .generation(generation)
              .reason("console")
              .image(e.image())
              .overlay("tmpfs")
              .build();
      List<Action> actions = new ArrayList<>();
      actions.add(new Action.ReturnTarget(ReturnTrigger.Console, "load typed at the console"));
      return startLoad(s, state, true, actions, "console load wins over the spec");
    }
    if (event instanceof Event.Resumed e) {
      return resumed(s, e);
    }
    if (event instanceof Event.Returned e) {
      return returned(s, e);
    }
    if (event instanceof Event.Reboot e) {
      return startLoad(
          s, e.state(), false, new ArrayList<>(), "the target rebooted itself: booted again");
    }
    if (event instanceof Event.Failure e) {
      return fail(s, e.message(), new ArrayList<>(), "failed: " + e.message());
    }
    if (event instanceof Event.ImageFailed e) {
      List<Action> actions = new ArrayList<>();
      actions.add(new Action.ReturnTarget(e.trigger(), e.message()));
      if (s.load() != null) {
        // Another image is being loaded: it replaces the failed one, and is what the status shows.
        actions.add(0, new Action.Show("chrootbooter: " + e.message() + "\n"));
        return new Decision(s, actions, "the running image failed while another loads");
      }
      return fail(s, e.message(), actions, "the running image failed: " + e.message());
    }
    return loadEvent(s, event);
  }

  private static Decision arrived(State s, DesiredState state) {
    State next = s.withDesired(state);
    List<Action> actions = new ArrayList<>();
    actions.add(new Action.QueueApply(state));
    if (s.load() != null && !s.load().cancelled() && supersedesLoad(s, state)) {
      actions.add(0, new Action.CancelLoad(s.load().id()));
      return new Decision(
          next.withLoad(s.load().cancel()),
          actions,
          "generation " + state.generation() + " supersedes the download in progress");
    }
    return new Decision(next, actions, "generation " + state.generation() + " arrived");
  }

  /**
   * Whether {@code state} ends the load in progress: a new generation does, and so does a new image
   * of the applied generation (its BootImage was re-mirrored), unless the console's load won.
   */
  static boolean supersedesLoad(State s, DesiredState state) {
    if (state.generation() != s.appliedGeneration()) {
      return true;
    }
    return state.runs() && !s.consoleWins() && !state.image().identity().equals(s.appliedImage());
  }

  private static Decision apply(State s, Event.Apply e) {
    DesiredState state = e.state();
    if (state != s.desired()) {
      return nothing(s, "generation " + state.generation() + ": a newer desired state is queued");
    }
    return switch (state.action()) {
      case Hold -> {
        if (s.heldGeneration() == state.generation()) {
          yield nothing(s, "generation " + state.generation() + " is held, as announced");
        }
        yield new Decision(
            s.withHeld(state.generation()),
            List.of(
                new Action.Show(
                    "chrootbooter: the operator holds generation "
                        + state.generation()
                        + " ("
                        + state.reason()
                        + "); "
                        + e.runningUrl()
                            .map(url -> "<" + url + "> keeps running")
                            .orElse("nothing changes")
                        + "\n"),
                new Action.Report()),
            "the operator holds generation " + state.generation() + ": " + state.reason());
      }
      case Bootstrap ->
          new Decision(
              s.withApplied(state.generation(), null, false).withError(null),
              List.of(new Action.SpecChanged(state.generation(), null), new Action.Report()),
              "generation " + state.generation() + " keeps the machine in the bootstrap");
      case Run -> {
        if (!state.runs()) {
          yield nothing(s, "a Run state without an image URL; ignored");
        }
        yield new Decision(
            s,
            List.of(new Action.SpecChanged(state.generation(), state)),
            "generation "
                + state.generation()
                + " runs "
                + describe(state)
                + ": ask the controller");
      }
    };
  }

  private static Decision specApplied(State s, Event.SpecApplied e) {
    DesiredState state = e.state();
    if (!isNew(s, state)) {
      return nothing(
          s,
          s.consoleWins() && state.generation() == s.appliedGeneration()
              ? "the console's load wins over generation " + state.generation()
              : "generation " + state.generation() + " and its image are applied already");
    }
    if (!e.free() && e.override()) {
      return nothing(s, "a console override holds generation " + state.generation());
    }
    return startLoad(
        s.withApplied(s.appliedGeneration(), s.appliedImage(), false),
        state,
        false,
        new ArrayList<>(),
        "generation " + state.generation() + " is new: booting " + describe(state));
  }

  /**
   * Whether {@code state} asks for more than the machine has applied: a new generation, or under
   * the same generation a new image (a replay of the same image, as after a reconnect, does not
   * boot it again; nor does anything while the console's load wins).
   */
  static boolean isNew(State s, DesiredState state) {
    if (state.generation() != s.appliedGeneration()) {
      return true;
    }
    return !s.consoleWins() && !state.image().identity().equals(s.appliedImage());
  }

  private static Decision resumed(State s, Event.Resumed e) {
    State next = s.withApplied(s.appliedGeneration(), s.appliedImage(), false).withError(null);
    String phase = " (phase " + phase(next, e.controllerPhase()) + ")";
    DesiredState state = s.desired();
    if (state == null) {
      return reply(next, "no desired state has arrived" + phase);
    }
    if (state.action() == io.chrootbooter.protocol.Action.Hold) {
      return reply(
          next,
          "following the spec; the operator holds generation "
              + state.generation()
              + " ("
              + state.reason()
              + "): nothing to boot"
              + phase);
    }
    if (!e.boot() || !state.runs()) {
      return reply(next, "following the spec" + phase);
    }
    List<Action> actions = new ArrayList<>();
    actions.add(new Action.Reply("console override ended; booting " + describe(state)));
    return startLoad(next, state, false, actions, "resume: booting the spec's image");
  }

  private static Decision reply(State next, String line) {
    return new Decision(next, List.of(new Action.Reply(line)), "resume: " + line);
  }

  private static Decision returned(State s, Event.Returned e) {
    LastReturn r = e.last();
    List<Action> actions = new ArrayList<>();
    actions.add(
        new Action.Show(
            "chrootbooter: back in the bootstrap ("
                + r.trigger()
                + (r.reason().isEmpty() ? "" : ": " + r.reason())
                + ", "
                + r.duration().toMillis()
                + " ms)"
                + (e.override() ? "; console override: type 'resume' to follow the spec again" : "")
                + "\n"));
    actions.add(new Action.RestoreNetwork());
    String reason = "returned by " + r.trigger();
    if (e.rebooted() && s.running() != null) {
      actions.add(new Action.QueueReboot(s.running()));
      reason = "the target rebooted itself: boot " + describe(s.running()) + " again";
    }
    actions.add(new Action.Report());
    return new Decision(s, actions, reason);
  }

  private static Decision startLoad(
      State s, DesiredState state, boolean fromConsole, List<Action> actions, String reason) {
    long id = s.loads() + 1;
    Load load = new Load(id, state, fromConsole, MachinePhase.Downloading, null, false, false);
    State next =
        s.withApplied(state.generation(), state.image().identity(), s.consoleWins() || fromConsole)
            .withLoad(load)
            .withError(null)
            .withLoads(id);
    actions.add(new Action.Report());
    actions.add(new Action.Show("chrootbooter: loading " + describe(state) + "\n"));
    actions.add(new Action.StartLoad(load));
    return new Decision(next, actions, reason);
  }

  /** The events of a load: stale ones (of an ended load) change nothing. */
  private static Decision loadEvent(State s, Event event) {
    long id = loadId(event);
    Load load = s.load();
    if (load == null || load.id() != id) {
      List<Action> release =
          event instanceof Event.Prepared ? List.of(new Action.ReleasePrepared()) : List.of();
      return new Decision(s, release, "load " + id + " is not the load in progress");
    }
    String what = describe(load.state());
    if (event instanceof Event.LoadPhase e) {
      return new Decision(
          s.withLoad(load.with(e.phase(), load.progress(), load.progressDone())),
          List.of(new Action.Report()),
          what + ": " + e.phase());
    }
    if (event instanceof Event.Progress e) {
      DownloadProgress p = e.progress();
      if (load.progressDone()) {
        return new Decision(
            s.withLoad(load.with(load.phase(), p, true)), List.of(), what + ": progress");
      }
      boolean complete = p.total() >= 0 && p.bytes() >= p.total();
      return new Decision(
          s.withLoad(load.with(load.phase(), p, complete)),
          List.of(
              new Action.Show(
                  "\r"
                      + ProgressBar.render(p.bytes(), p.total(), p.bytesPerSecond(), 30)
                      + (complete ? "\n" : "")),
              new Action.Report()),
          what + ": progress");
    }
    if (event instanceof Event.Prepared e) {
      List<Action> actions = new ArrayList<>();
      e.note().ifPresent(note -> actions.add(new Action.Show("chrootbooter: " + note + "\n")));
      if (e.cancelled() || load.cancelled()) {
        actions.addAll(
            List.of(
                new Action.ReleasePrepared(),
                new Action.Reply("cancelled: " + what),
                new Action.Report()));
        return new Decision(s.withLoad(null), actions, "loading " + what + " cancelled");
      }
      actions.add(
          new Action.Show(
              "chrootbooter: entering "
                  + what
                  + " (sha256 "
                  + e.sha256()
                  + (e.cached() ? ", cached" : "")
                  + ")\n"));
      actions.add(new Action.EnterTarget(id, e.spec(), load.state()));
      return new Decision(
          s.withEntering(load.state(), new Booted(e.spec(), load.state().image().name())),
          actions,
          "entering " + what);
    }
    if (event instanceof Event.Entered) {
      return new Decision(
          s.withLoad(null),
          List.of(new Action.Reply("running " + what), new Action.Report()),
          "running " + what);
    }
    Event.LoadFailed f = (Event.LoadFailed) event;
    if (f.cancelled() || load.cancelled()) {
      return new Decision(
          s.withLoad(null),
          List.of(new Action.Reply("cancelled: " + what), new Action.Report()),
          "loading " + what + " cancelled");
    }
    Throwable cause = f.cause();
    String message = cause.getMessage() == null ? cause.toString() : cause.getMessage();
    List<Action> actions = new ArrayList<>();
    actions.add(
        load.fromConsole()
            ? new Action.ReplyError(message)
            : new Action.Reply("failed: " + message));
    return fail(s.withLoad(null), message, actions, "loading " + what + " failed: " + message);
  }

  private static long loadId(Event event) {
    if (event instanceof Event.LoadPhase e) {
      return e.id();
    }
    if (event instanceof Event.Progress e) {
      return e.id();
    }
    if (event instanceof Event.Prepared e) {
      return e.id();
    }
    if (event instanceof Event.Entered e) {
      return e.id();
    }
    return ((Event.LoadFailed) event).id();
  }

  private static Decision fail(State s, String message, List<Action> actions, String reason) {
    String error = message.replaceAll("[^\\x20-\\x7e]", " ");
    if (error.length() > 1000) {
      error = error.substring(0, 1000);
    }
    actions.add(0, new Action.Show("chrootbooter: failed: " + error + "\n"));
    actions.add(new Action.Report());
    return new Decision(s.withError(error), actions, reason);
  }

  private static Decision nothing(State s, String reason) {
    return new Decision(s, List.of(), reason);
  }

  /**
   * The image a console {@code load} names; its format from {@code --format}, else from the URL.
   *
   * @throws IOException when neither tells the format
   */
  public static DesiredState.Image consoleImage(ConsoleCommand.Load load) throws IOException {
    ImageFormat format = load.format().or(() -> ImageFormat.fromUrl(load.url())).orElse(null);
    if (format == null) {
      throw new IOException(
          "cannot tell the format from the URL; add --format " + ImageFormat.names("|"));
    }
    return DesiredState.Image.builder()
        .url(load.url())
        .sha256(load.sha256().orElse(null))
        .format(format)
        .build();
  }

  /**
   * The phase the status reports, given the controller's. The next image is fetched and mounted
   * while the current target still runs; once that target is being ended, the return is what the
   * machine does, and what the status must say.
   */
  public static MachinePhase phase(State s, MachinePhase controllerPhase) {
    if (controllerPhase == MachinePhase.Returning) {
      return MachinePhase.Returning;
    }
    if (s.load() != null && s.load().phase() != null) {
      return s.load().phase();
    }
    if (s.error() != null && controllerPhase == MachinePhase.Bootstrap) {
      return MachinePhase.Failed;
    }
    return controllerPhase;
  }

  /** {@code name <url>}, {@code the bootstrap} or {@code hold (reason)}. */
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
}
