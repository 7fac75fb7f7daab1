package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.agent.daemon.AgentPolicy.Action;
import io.chrootbooter.agent.daemon.AgentPolicy.Booted;
import io.chrootbooter.agent.daemon.AgentPolicy.Decision;
import io.chrootbooter.agent.daemon.AgentPolicy.Event;
import io.chrootbooter.agent.daemon.AgentPolicy.Kind;
import io.chrootbooter.agent.daemon.AgentPolicy.Load;
import io.chrootbooter.agent.daemon.AgentPolicy.Mode;
import io.chrootbooter.agent.daemon.AgentPolicy.State;
import io.chrootbooter.agent.fetch.DownloadCancelledException;
import io.chrootbooter.agent.fetch.DownloadProgress;
import io.chrootbooter.agent.pivot.LastReturn;
import io.chrootbooter.agent.pivot.TargetSpec;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The agent's decisions, one row per state shape ({@link Mode}) and event ({@link Kind}): the shape
 * after the event and the actions, by name, in order. Further tests check what the actions say.
 */
class AgentPolicyTest {
  // ---- the states of the table ----------------------------------------------------------------

  static DesiredState run(long generation, String sha) {
    return DesiredState.builder()
        .action(io.chrootbooter.protocol.Action.Run)
        .generation(generation)
        .reason("Ready")
        .image(
            DesiredState.Image.builder()
                .name("debian")
                .url("http://images/" + sha + ".squashfs")
                .sha256(sha.repeat(64))
                .format(ImageFormat.SQUASHFS)
                .build())
        .overlay("tmpfs")
        .build();
  }

  static DesiredState of(io.chrootbooter.protocol.Action action, long generation, String reason) {
    return DesiredState.builder().action(action).generation(generation).reason(reason).build();
  }

  static final DesiredState RUN7 = run(7, "a");
  static final DesiredState RUN8 = run(8, "b");
  static final DesiredState BOOTSTRAP9 =
      of(io.chrootbooter.protocol.Action.Bootstrap, 9, "no image");
  static final DesiredState HOLD9 = of(io.chrootbooter.protocol.Action.Hold, 9, "ImageNotReady");
  static final TargetSpec SPEC7 =
      new TargetSpec(
          Path.of("/r7"),
          null,
          RUN7.image().url(),
          15,
          Duration.ofSeconds(10),
          Path.of("/dev/console"));

  static final State WAITING = State.INITIAL;
  static final State FOLLOWING =
      new State(
          RUN7,
          7,
          RUN7.image().identity(),
          false,
          null,
          null,
          -1,
          RUN7,
          new Booted(SPEC7, "debian"),
          null,
          1);
  static final DesiredState CONSOLE7 =
      DesiredState.builder()
          .action(io.chrootbooter.protocol.Action.Run)
          .generation(7)
          .reason("console")
          .image(run(7, "c").image())
          .overlay("tmpfs")
          .build();
  static final State CONSOLE =
      new State(
          RUN7, 7, CONSOLE7.image().identity(), true, null, null, -1, CONSOLE7, null, null, 1);
  static final Load LOAD8 = new Load(2, RUN8, false, MachinePhase.Downloading, null, false, false);
  static final State LOADING =
      new State(
          RUN8,
          8,
          RUN8.image().identity(),
          false,
          LOAD8,
          null,
          -1,
          RUN7,
          new Booted(SPEC7, "debian"),
          null,
          2);
  static final State FAILED =
      new State(
          RUN8,
          8,
          RUN8.image().identity(),
          false,
          null,
          "HTTP 404",
          -1,
          RUN7,
          new Booted(SPEC7, "debian"),
          null,
          2);

  static State state(Mode mode) {
    return switch (mode) {
      case WAITING -> WAITING;
      case FOLLOWING -> FOLLOWING;
      case CONSOLE -> CONSOLE;
      case LOADING -> LOADING;
      case FAILED -> FAILED;
    };
  }

  // ---- the events of the table ----------------------------------------------------------------

  static LastReturn returned(ReturnTrigger trigger, String initExit) {
    return new LastReturn(
        trigger,
        "why",
        Instant.parse("2026-01-01T00:00:00Z"),
        Duration.ofMillis(40),
        false,
        initExit);
  }

  /** The state an event of {@code kind} meets (an Apply meets the state that arrived), then it. */
  record Case(UnaryOperator<State> before, Function<State, Event> event) {
    static Case of(Function<State, Event> event) {
      return new Case(s -> s, event);
    }

    static Case applying(DesiredState arrived) {
      return new Case(
          s -> s.withDesired(arrived), s -> new Event.Apply(arrived, Optional.of("http://run")));
    }
  }

  static long loadId(State s) {
    return s.load() == null ? 99 : s.load().id();
  }

  static Case event(Kind kind) {
    return switch (kind) {
      case DESIRED_ARRIVED -> Case.of(s -> new Event.Arrived(run(9, "e")));
      case APPLY_RUN -> Case.applying(run(9, "e"));
      case APPLY_BOOTSTRAP -> Case.applying(BOOTSTRAP9);
      case APPLY_HOLD -> Case.applying(HOLD9);
      case SPEC_APPLIED -> Case.of(s -> new Event.SpecApplied(run(9, "e"), true, false));
      case CONSOLE_LOAD_TYPED -> Case.of(s -> new Event.ConsoleLoadTyped());
      case CONSOLE_LOAD -> Case.of(s -> new Event.ConsoleLoad(run(0, "d").image()));
      case CONSOLE_RESUME -> Case.of(s -> new Event.Resumed(true, MachinePhase.Bootstrap));
      case RETURNED_SPEC_CHANGE -> returnedBy(ReturnTrigger.SpecChange, "");
      case RETURNED_HOTKEY -> returnedBy(ReturnTrigger.Hotkey, "");
      case RETURNED_SERIAL -> returnedBy(ReturnTrigger.Serial, "");
      case RETURNED_HELPER -> returnedBy(ReturnTrigger.Helper, "");
      case RETURNED_CONSOLE -> returnedBy(ReturnTrigger.Console, "");
      case RETURNED_BOOT_TIMEOUT -> returnedBy(ReturnTrigger.BootTimeout, "");
      case RETURNED_TARGET_EXIT -> returnedBy(ReturnTrigger.TargetExit, "exit 0");
      case RETURNED_TARGET_REBOOT -> returnedBy(ReturnTrigger.TargetExit, "signal 1 (SIGHUP)");
      case RETURNED_VERITY_MISMATCH -> returnedBy(ReturnTrigger.VerityMismatch, "");
      case REBOOT -> Case.of(s -> new Event.Reboot(RUN7));
      case LOAD_PHASE -> Case.of(s -> new Event.LoadPhase(loadId(s), MachinePhase.Verifying));
      case PROGRESS ->
          Case.of(
              s ->
                  new Event.Progress(
                      loadId(s), new DownloadProgress(10, 100, 5, Optional.empty())));
      case PREPARED ->
          Case.of(
              s ->
                  new Event.Prepared(
                      loadId(s), SPEC7, "a".repeat(64), false, Optional.empty(), false));
      case ENTERED -> Case.of(s -> new Event.Entered(loadId(s)));
      case LOAD_FAILED ->
          Case.of(s -> new Event.LoadFailed(loadId(s), new IOException("HTTP 503"), false));
      case LOAD_CANCELLED ->
          Case.of(
              s -> new Event.LoadFailed(loadId(s), new DownloadCancelledException("u", 5), true));
      case FAILURE -> Case.of(s -> new Event.Failure("the agent's previous run ran out of memory"));
      case IMAGE_FAILED ->
          Case.of(
              s ->
                  new Event.ImageFailed(
                      ReturnTrigger.VerityMismatch, "VerityMismatch: data block 7 failed"));
    };
  }

  static Case returnedBy(ReturnTrigger trigger, String initExit) {
    return Case.of(s -> new Event.Returned(returned(trigger, initExit), false));
  }

  static Decision decide(Mode mode, Kind kind) {
    Case c = event(kind);
    State before = c.before().apply(state(mode));
    Event e = c.event().apply(before);
    assertThat(e.kind()).isEqualTo(kind);
    return AgentPolicy.decide(before, e);
  }

  static String names(List<Action> actions) {
    return actions.stream().map(a -> a.getClass().getSimpleName()).collect(Collectors.joining(" "));
  }

  // ---- the table ------------------------------------------------------------------------------

  // mode, event, mode after, actions in order
  static final String[] TABLE = {
    "WAITING    DESIRED_ARRIVED         WAITING    QueueApply",
    "WAITING    APPLY_RUN               WAITING    SpecChanged",
    "WAITING    APPLY_BOOTSTRAP         FOLLOWING  SpecChanged Report",
    "WAITING    APPLY_HOLD              WAITING    Show Report",
    "WAITING    SPEC_APPLIED            LOADING    Report Show StartLoad",
    "WAITING    CONSOLE_LOAD_TYPED      WAITING   ",
    "WAITING    CONSOLE_LOAD            LOADING    ReturnTarget Report Show StartLoad",
    "WAITING    CONSOLE_RESUME          WAITING    Reply",
    "WAITING    RETURNED_SPEC_CHANGE    WAITING    Show RestoreNetwork Report",
    "WAITING    RETURNED_HOTKEY         WAITING    Show RestoreNetwork Report",
    "WAITING    RETURNED_SERIAL         WAITING    Show RestoreNetwork Report",
    "WAITING    RETURNED_HELPER         WAITING    Show RestoreNetwork Report",
    "WAITING    RETURNED_CONSOLE        WAITING    Show RestoreNetwork Report",
    "WAITING    RETURNED_BOOT_TIMEOUT   WAITING    Show RestoreNetwork Report",
    "WAITING    RETURNED_VERITY_MISMATCH WAITING    Show RestoreNetwork Report",
    "WAITING    RETURNED_TARGET_EXIT    WAITING    Show RestoreNetwork Report",
    "WAITING    RETURNED_TARGET_REBOOT  WAITING    Show RestoreNetwork Report",
    "WAITING    REBOOT                  LOADING    Report Show StartLoad",
    "WAITING    LOAD_PHASE              WAITING   ",
    "WAITING    PROGRESS                WAITING   ",
    "WAITING    PREPARED                WAITING    ReleasePrepared",
    "WAITING    ENTERED                 WAITING   ",
    "WAITING    LOAD_FAILED             WAITING   ",
    "WAITING    LOAD_CANCELLED          WAITING   ",
    "WAITING    FAILURE                 FAILED     Show Report",
    "WAITING    IMAGE_FAILED             FAILED     Show ReturnTarget Report",
    "FOLLOWING  DESIRED_ARRIVED         FOLLOWING  QueueApply",
    "FOLLOWING  APPLY_RUN               FOLLOWING  SpecChanged",
    "FOLLOWING  APPLY_BOOTSTRAP         FOLLOWING  SpecChanged Report",
    "FOLLOWING  APPLY_HOLD              FOLLOWING  Show Report",
    "FOLLOWING  SPEC_APPLIED            LOADING    Report Show StartLoad",
    "FOLLOWING  CONSOLE_LOAD_TYPED      FOLLOWING ",
    "FOLLOWING  CONSOLE_LOAD            LOADING    ReturnTarget Report Show StartLoad",
    "FOLLOWING  CONSOLE_RESUME          LOADING    Reply Report Show StartLoad",
    "FOLLOWING  RETURNED_SPEC_CHANGE    FOLLOWING  Show RestoreNetwork Report",
    "FOLLOWING  RETURNED_HOTKEY         FOLLOWING  Show RestoreNetwork Report",
    "FOLLOWING  RETURNED_SERIAL         FOLLOWING  Show RestoreNetwork Report",
    "FOLLOWING  RETURNED_HELPER         FOLLOWING  Show RestoreNetwork Report",
    "FOLLOWING  RETURNED_CONSOLE        FOLLOWING  Show RestoreNetwork Report",
    "FOLLOWING  RETURNED_BOOT_TIMEOUT   FOLLOWING  Show RestoreNetwork Report",
    "FOLLOWING  RETURNED_VERITY_MISMATCH FOLLOWING  Show RestoreNetwork Report",
    "FOLLOWING  RETURNED_TARGET_EXIT    FOLLOWING  Show RestoreNetwork Report",
    "FOLLOWING  RETURNED_TARGET_REBOOT  FOLLOWING  Show RestoreNetwork QueueReboot Report",
    "FOLLOWING  REBOOT                  LOADING    Report Show StartLoad",
    "FOLLOWING  LOAD_PHASE              FOLLOWING ",
    "FOLLOWING  PROGRESS                FOLLOWING ",
    "FOLLOWING  PREPARED                FOLLOWING  ReleasePrepared",
    "FOLLOWING  ENTERED                 FOLLOWING ",
    "FOLLOWING  LOAD_FAILED             FOLLOWING ",
    "FOLLOWING  LOAD_CANCELLED          FOLLOWING ",
    "FOLLOWING  FAILURE                 FAILED     Show Report",
    "FOLLOWING  IMAGE_FAILED             FAILED     Show ReturnTarget Report",
    "CONSOLE    DESIRED_ARRIVED         CONSOLE    QueueApply",
    "CONSOLE    APPLY_RUN               CONSOLE    SpecChanged",
    "CONSOLE    APPLY_BOOTSTRAP         FOLLOWING  SpecChanged Report",
    "CONSOLE    APPLY_HOLD              CONSOLE    Show Report",
    "CONSOLE    SPEC_APPLIED            LOADING    Report Show StartLoad",
    "CONSOLE    CONSOLE_LOAD_TYPED      CONSOLE   ",
    "CONSOLE    CONSOLE_LOAD            LOADING    ReturnTarget Report Show StartLoad",
    "CONSOLE    CONSOLE_RESUME          LOADING    Reply Report Show StartLoad",
    "CONSOLE    RETURNED_SPEC_CHANGE    CONSOLE    Show RestoreNetwork Report",
    "CONSOLE    RETURNED_HOTKEY         CONSOLE    Show RestoreNetwork Report",
    "CONSOLE    RETURNED_SERIAL         CONSOLE    Show RestoreNetwork Report",
    "CONSOLE    RETURNED_HELPER         CONSOLE    Show RestoreNetwork Report",
    "CONSOLE    RETURNED_CONSOLE        CONSOLE    Show RestoreNetwork Report",
    "CONSOLE    RETURNED_BOOT_TIMEOUT   CONSOLE    Show RestoreNetwork Report",
    "CONSOLE    RETURNED_VERITY_MISMATCH CONSOLE    Show RestoreNetwork Report",
    "CONSOLE    RETURNED_TARGET_EXIT    CONSOLE    Show RestoreNetwork Report",
    "CONSOLE    RETURNED_TARGET_REBOOT  CONSOLE    Show RestoreNetwork QueueReboot Report",
    "CONSOLE    REBOOT                  LOADING    Report Show StartLoad",
    "CONSOLE    LOAD_PHASE              CONSOLE   ",
    "CONSOLE    PROGRESS                CONSOLE   ",
    "CONSOLE    PREPARED                CONSOLE    ReleasePrepared",
    "CONSOLE    ENTERED                 CONSOLE   ",
    "CONSOLE    LOAD_FAILED             CONSOLE   ",
    "CONSOLE    LOAD_CANCELLED          CONSOLE   ",
    "CONSOLE    FAILURE                 FAILED     Show Report",
    "CONSOLE    IMAGE_FAILED             FAILED     Show ReturnTarget Report",
    "LOADING    DESIRED_ARRIVED         LOADING    CancelLoad QueueApply",
    "LOADING    APPLY_RUN               LOADING    SpecChanged",
    "LOADING    APPLY_BOOTSTRAP         LOADING    SpecChanged Report",
    "LOADING    APPLY_HOLD              LOADING    Show Report",
    "LOADING    SPEC_APPLIED            LOADING    Report Show StartLoad",
    "LOADING    CONSOLE_LOAD_TYPED      LOADING    CancelLoad",
    "LOADING    CONSOLE_LOAD            LOADING    ReturnTarget Report Show StartLoad",
    "LOADING    CONSOLE_RESUME          LOADING    Reply Report Show StartLoad",
    "LOADING    RETURNED_SPEC_CHANGE    LOADING    Show RestoreNetwork Report",
    "LOADING    RETURNED_HOTKEY         LOADING    Show RestoreNetwork Report",
    "LOADING    RETURNED_SERIAL         LOADING    Show RestoreNetwork Report",
    "LOADING    RETURNED_HELPER         LOADING    Show RestoreNetwork Report",
    "LOADING    RETURNED_CONSOLE        LOADING    Show RestoreNetwork Report",
    "LOADING    RETURNED_BOOT_TIMEOUT   LOADING    Show RestoreNetwork Report",
    "LOADING    RETURNED_VERITY_MISMATCH LOADING    Show RestoreNetwork Report",
    "LOADING    RETURNED_TARGET_EXIT    LOADING    Show RestoreNetwork Report",
    "LOADING    RETURNED_TARGET_REBOOT  LOADING    Show RestoreNetwork QueueReboot Report",
    "LOADING    REBOOT                  LOADING    Report Show StartLoad",
    "LOADING    LOAD_PHASE              LOADING    Report",
    "LOADING    PROGRESS                LOADING    Show Report",
    "LOADING    PREPARED                LOADING    Show EnterTarget",
    "LOADING    ENTERED                 FOLLOWING  Reply Report",
    "LOADING    LOAD_FAILED             FAILED     Show Reply Report",
    "LOADING    LOAD_CANCELLED          FOLLOWING  Reply Report",
    "LOADING    FAILURE                 LOADING    Show Report",
    "LOADING    IMAGE_FAILED             LOADING    Show ReturnTarget",
    "FAILED     DESIRED_ARRIVED         FAILED     QueueApply",
    "FAILED     APPLY_RUN               FAILED     SpecChanged",
    "FAILED     APPLY_BOOTSTRAP         FOLLOWING  SpecChanged Report",
    "FAILED     APPLY_HOLD              FAILED     Show Report",
    "FAILED     SPEC_APPLIED            LOADING    Report Show StartLoad",
    "FAILED     CONSOLE_LOAD_TYPED      FAILED    ",
    "FAILED     CONSOLE_LOAD            LOADING    ReturnTarget Report Show StartLoad",
    "FAILED     CONSOLE_RESUME          LOADING    Reply Report Show StartLoad",
    "FAILED     RETURNED_SPEC_CHANGE    FAILED     Show RestoreNetwork Report",
    "FAILED     RETURNED_HOTKEY         FAILED     Show RestoreNetwork Report",
    "FAILED     RETURNED_SERIAL         FAILED     Show RestoreNetwork Report",
    "FAILED     RETURNED_HELPER         FAILED     Show RestoreNetwork Report",
    "FAILED     RETURNED_CONSOLE        FAILED     Show RestoreNetwork Report",
    "FAILED     RETURNED_BOOT_TIMEOUT   FAILED     Show RestoreNetwork Report",
    "FAILED     RETURNED_VERITY_MISMATCH FAILED     Show RestoreNetwork Report",
    "FAILED     RETURNED_TARGET_EXIT    FAILED     Show RestoreNetwork Report",
    "FAILED     RETURNED_TARGET_REBOOT  FAILED     Show RestoreNetwork QueueReboot Report",
    "FAILED     REBOOT                  LOADING    Report Show StartLoad",
    "FAILED     LOAD_PHASE              FAILED    ",
    "FAILED     PROGRESS                FAILED    ",
    "FAILED     PREPARED                FAILED     ReleasePrepared",
    "FAILED     ENTERED                 FAILED    ",
    "FAILED     LOAD_FAILED             FAILED    ",
    "FAILED     LOAD_CANCELLED          FAILED    ",
    "FAILED     FAILURE                 FAILED     Show Report",
    "FAILED     IMAGE_FAILED             FAILED     Show ReturnTarget Report",
  };

  record Row(Mode mode, Kind kind, Mode after, String actions) {
    @Override
    public String toString() {
      return mode + " x " + kind + " -> " + after + " [" + actions + "]";
    }
  }

  static Stream<Row> rows() {
    return Arrays.stream(TABLE)
        .map(
            line -> {
              String[] f = line.trim().split("\\s+", 4);
              return new Row(
                  Mode.valueOf(f[0]),
                  Kind.valueOf(f[1]),
                  Mode.valueOf(f[2]),
                  f.length > 3 ? f[3] : "");
            });
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("rows")
  void decides(Row row) {
    Decision d = decide(row.mode(), row.kind());
    assertThat(d.next().mode()).as("mode after").isEqualTo(row.after());
    assertThat(names(d.actions())).as("actions").isEqualTo(row.actions());
    assertThat(d.reason()).as("reason").isNotBlank();
  }

  @Test
  void everyStateMeetsEveryEventInTheTable() {
    Set<String> seen = new HashSet<>();
    rows()
        .forEach(
            r -> assertThat(seen.add(r.mode() + " " + r.kind())).as("duplicate " + r).isTrue());
    Set<String> all = new HashSet<>();
    for (Mode m : EnumSet.allOf(Mode.class)) {
      for (Kind k : EnumSet.allOf(Kind.class)) {
        all.add(m + " " + k);
      }
    }
    assertThat(seen).containsExactlyInAnyOrderElementsOf(all);
  }

  // ---- what the rules mean --------------------------------------------------------------------

  static <T extends Action> T only(Decision d, Class<T> type) {
    List<T> found = d.actions().stream().filter(type::isInstance).map(type::cast).toList();
    assertThat(found).as(type.getSimpleName()).hasSize(1);
    return found.get(0);
  }

  static String shown(Decision d) {
    return d.actions().stream()
        .filter(Action.Show.class::isInstance)
        .map(a -> ((Action.Show) a).text())
        .collect(Collectors.joining());
  }

  @Test
  void aReplayOfTheAppliedImageBootsNothingAReMirroredImageBootsIt() {
    Decision replay = AgentPolicy.decide(FOLLOWING, new Event.SpecApplied(RUN7, false, false));
    assertThat(replay.actions()).isEmpty();
    assertThat(replay.reason()).contains("applied already");

    DesiredState remirrored = run(7, "f");
    Decision d = AgentPolicy.decide(FOLLOWING, new Event.SpecApplied(remirrored, false, false));
    assertThat(only(d, Action.StartLoad.class).load().state()).isSameAs(remirrored);
    assertThat(d.next().appliedImage()).isEqualTo(remirrored.image().identity());
  }

  @Test
  void theConsolesLoadWinsUntilTheGenerationChanges() {
    DesiredState remirrored = run(7, "f");
    assertThat(
            AgentPolicy.decide(CONSOLE, new Event.SpecApplied(remirrored, true, false)).actions())
        .isEmpty();
    // Its arrival does not cancel a console load either.
    State consoleLoading = CONSOLE.withLoad(LOAD8);
    assertThat(names(AgentPolicy.decide(consoleLoading, new Event.Arrived(remirrored)).actions()))
        .isEqualTo("QueueApply");

    Decision next = AgentPolicy.decide(CONSOLE, new Event.SpecApplied(RUN8, true, false));
    assertThat(next.next().consoleWins()).isFalse();
    assertThat(only(next, Action.StartLoad.class).load().fromConsole()).isFalse();
  }

  @Test
  void aConsoleOverrideOfTheGenerationHoldsTheMachine() {
    Decision d = AgentPolicy.decide(FOLLOWING, new Event.SpecApplied(RUN8, false, true));
    assertThat(d.actions()).isEmpty();
    assertThat(d.reason()).isEqualTo("a console override holds generation 8");
  }

  @Test
  void aReplayArrivingDuringItsLoadDoesNotCancelItAHoldOfTheNextGenerationDoes() {
    assertThat(names(AgentPolicy.decide(LOADING, new Event.Arrived(RUN8)).actions()))
        .isEqualTo("QueueApply");
    DesiredState hold = of(io.chrootbooter.protocol.Action.Hold, 8, "ImageNotReady");
    assertThat(names(AgentPolicy.decide(LOADING, new Event.Arrived(hold)).actions()))
        .isEqualTo("QueueApply");
    Decision d = AgentPolicy.decide(LOADING, new Event.Arrived(HOLD9));
    assertThat(only(d, Action.CancelLoad.class).id()).isEqualTo(LOAD8.id());
    assertThat(d.next().load().cancelled()).isTrue();
    // Cancelled once: a second arrival does not cancel again.
    assertThat(names(AgentPolicy.decide(d.next(), new Event.Arrived(run(10, "g"))).actions()))
        .isEqualTo("QueueApply");
  }

  @Test
  void aHoldIsAnnouncedOnceAndNamesWhatKeepsRunning() {
    State s = FOLLOWING.withDesired(HOLD9);
    Decision first = AgentPolicy.decide(s, new Event.Apply(HOLD9, Optional.of("http://x/a.sq")));
    assertThat(shown(first))
        .isEqualTo(
            "chrootbooter: the operator holds generation 9 (ImageNotReady); <http://x/a.sq> keeps"
                + " running\n");
    assertThat(AgentPolicy.decide(first.next(), new Event.Apply(HOLD9, Optional.empty())).actions())
        .isEmpty();
    assertThat(shown(AgentPolicy.decide(s, new Event.Apply(HOLD9, Optional.empty()))))
        .endsWith("; nothing changes\n");
  }

  @Test
  void aStaleOrImagelessDesiredStateIsIgnored() {
    assertThat(AgentPolicy.decide(FOLLOWING, new Event.Apply(RUN8, Optional.empty())).reason())
        .contains("a newer desired state is queued");
    DesiredState noUrl = of(io.chrootbooter.protocol.Action.Run, 9, "Ready");
    Decision d =
        AgentPolicy.decide(FOLLOWING.withDesired(noUrl), new Event.Apply(noUrl, Optional.empty()));
    assertThat(d.actions()).isEmpty();
    assertThat(d.reason()).isEqualTo("a Run state without an image URL; ignored");
  }

  @Test
  void aTargetThatRebootsItselfIsBootedAgainOneThatPowersOffIsNot() {
    Decision reboot =
        AgentPolicy.decide(
            FOLLOWING,
            new Event.Returned(returned(ReturnTrigger.TargetExit, "signal 1 (SIGHUP)"), false));
    assertThat(only(reboot, Action.QueueReboot.class).state()).isSameAs(RUN7);
    Decision off =
        AgentPolicy.decide(
            FOLLOWING, new Event.Returned(returned(ReturnTrigger.TargetExit, "exit 0"), false));
    assertThat(off.actions()).noneMatch(Action.QueueReboot.class::isInstance);
    Decision hotkey =
        AgentPolicy.decide(FOLLOWING, new Event.Returned(returned(ReturnTrigger.Hotkey, ""), true));
    assertThat(shown(hotkey))
        .isEqualTo(
            "chrootbooter: back in the bootstrap (Hotkey: why, 40 ms); console override: type"
                + " 'resume' to follow the spec again\n");
  }

  @Test
  void aConsoleLoadFailsTheCommandASpecLoadReportsFailed() {
    State consoleLoading =
        LOADING.withLoad(new Load(2, CONSOLE7, true, MachinePhase.Downloading, null, false, false));
    Decision d =
        AgentPolicy.decide(
            consoleLoading, new Event.LoadFailed(2, new IOException("HTTP 503"), false));
    assertThat(only(d, Action.ReplyError.class).message()).isEqualTo("HTTP 503");
    assertThat(d.next().error()).isEqualTo("HTTP 503");
    assertThat(AgentPolicy.phase(d.next(), MachinePhase.Bootstrap)).isEqualTo(MachinePhase.Failed);
    assertThat(AgentPolicy.phase(d.next(), MachinePhase.Running)).isEqualTo(MachinePhase.Running);

    Decision spec =
        AgentPolicy.decide(LOADING, new Event.LoadFailed(2, new StackOverflowError(), false));
    assertThat(only(spec, Action.Reply.class).line())
        .isEqualTo("failed: java.lang.StackOverflowError");
  }

  @Test
  void anErrorIsPrintableAndBounded() {
    Decision d = AgentPolicy.decide(WAITING, new Event.Failure("bad\u001b[2J" + "x".repeat(2000)));
    assertThat(d.next().error()).hasSize(1000).startsWith("bad [2Jxxx").matches("[\\x20-\\x7e]*");
  }

  @Test
  void theProgressBarIsDrawnUntilComplete() {
    Decision half =
        AgentPolicy.decide(
            LOADING, new Event.Progress(2, new DownloadProgress(50, 100, 10, Optional.empty())));
    assertThat(shown(half)).startsWith("\r").doesNotEndWith("\n");
    Decision done =
        AgentPolicy.decide(
            half.next(),
            new Event.Progress(2, new DownloadProgress(100, 100, 10, Optional.empty())));
    assertThat(shown(done)).startsWith("\r").endsWith("\n");
    Decision after =
        AgentPolicy.decide(
            done.next(),
            new Event.Progress(2, new DownloadProgress(100, 100, 10, Optional.empty())));
    assertThat(after.actions()).isEmpty();
    assertThat(after.next().load().progress().bytes()).isEqualTo(100);
  }

  @Test
  void aLoadCancelledWhileItsRootWasMountedIsReleasedNotEntered() {
    State cancelled = LOADING.withLoad(LOAD8.cancel());
    Decision d =
        AgentPolicy.decide(
            cancelled, new Event.Prepared(2, SPEC7, "a".repeat(64), true, Optional.empty(), false));
    assertThat(names(d.actions())).isEqualTo("ReleasePrepared Reply Report");
    assertThat(only(d, Action.Reply.class).line())
        .isEqualTo("cancelled: debian <http://images/b.squashfs>");
    assertThat(d.next().load()).isNull();
  }

  @Test
  void anEnteredImageIsNamedAndBootedAgainOnReboot() {
    Decision d =
        AgentPolicy.decide(
            LOADING, new Event.Prepared(2, SPEC7, "a".repeat(64), true, Optional.empty(), false));
    assertThat(shown(d))
        .isEqualTo(
            "chrootbooter: entering debian <http://images/b.squashfs> (sha256 "
                + "a".repeat(64)
                + ", cached)\n");
    assertThat(d.next().running()).isSameAs(RUN8);
    assertThat(d.next().load().phase()).isNull();
    Action.EnterTarget enter = only(d, Action.EnterTarget.class);
    assertThat(enter.spec()).isSameAs(SPEC7);
  }

  @Test
  void whatTheLoaderNotedIsShownBeforeTheTargetIsEntered() {
    Decision d =
        AgentPolicy.decide(
            LOADING,
            new Event.Prepared(
                2, SPEC7, "a".repeat(64), false, Optional.of("cached image altered"), false));
    assertThat(names(d.actions())).isEqualTo("Show Show EnterTarget");
    assertThat(shown(d)).startsWith("chrootbooter: cached image altered\nchrootbooter: entering ");
  }

  @Test
  void theStatusPhase() {
    assertThat(AgentPolicy.phase(LOADING, MachinePhase.Returning))
        .isEqualTo(MachinePhase.Returning);
    assertThat(AgentPolicy.phase(LOADING, MachinePhase.Running))
        .isEqualTo(MachinePhase.Downloading);
    assertThat(AgentPolicy.phase(FAILED, MachinePhase.ConsoleOverride))
        .isEqualTo(MachinePhase.ConsoleOverride);
  }

  @Test
  void resumeClearsTheErrorAndSaysWhyNothingBoots() {
    Decision d = AgentPolicy.decide(FAILED, new Event.Resumed(false, MachinePhase.Bootstrap));
    assertThat(d.next().error()).isNull();
    assertThat(only(d, Action.Reply.class).line())
        .isEqualTo("following the spec (phase Bootstrap)");
    State held = FOLLOWING.withDesired(HOLD9);
    assertThat(
            only(
                    AgentPolicy.decide(held, new Event.Resumed(false, MachinePhase.Running)),
                    Action.Reply.class)
                .line())
        .isEqualTo(
            "following the spec; the operator holds generation 9 (ImageNotReady): nothing to boot"
                + " (phase Running)");
  }
}
