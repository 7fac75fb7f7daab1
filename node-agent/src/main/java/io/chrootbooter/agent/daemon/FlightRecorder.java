package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.fetch.DownloadProgress;
import io.chrootbooter.agent.pivot.FlightSteps;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import io.chrootbooter.protocol.StatusReport;
import io.chrootbooter.protocol.Timeline;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * The agent's side of the boot flight recorder: the steps of every boot, switch and return, each
 * with the moment it began, as {@link Timeline}s for the status report (the newest {@link
 * StatusReport#MAX_TIMELINES}). Each step lasts until the next one begins, so the steps add up to
 * the whole.
 *
 * <ul>
 *   <li>A <b>boot</b> is the first load of this agent's run when it follows the first desired
 *       state: {@code agent-up} (the JVM's start), {@code enrolled} (enrolment and the stream up to
 *       the first desired state), then as a switch.
 *   <li>A <b>switch</b>: {@code desired-state} (its arrival, until what it starts); when a target
 *       runs, its return ({@code return-trigger}, {@code grace}, {@code forced}, {@code teardown},
 *       {@code bootstrap-ready}: a new generation returns it at once, a console load once the next
 *       image is mounted); {@code download}, {@code verify}, {@code mount}; {@code pivot-root} (the
 *       enter step, up to {@code pivot_root}), {@code init-exec}, {@code healthy} (from the init's
 *       exec to its health report).
 *   <li>A <b>return</b> to the bootstrap alone: the return's steps, ending when the bootstrap is
 *       ready.
 * </ul>
 *
 * <p>A switch ends {@code Succeeded} when its image reports healthy, {@code Failed} when its load
 * fails or is cancelled, or when the image does not report healthy within its {@code bootTimeout}.
 * An image that never reports healthy (no {@code bootTimeout}) ends at its init's exec, with a
 * message saying so, once it returns or {@link #HEALTH_WAIT} passed.
 *
 * <p>Thread-safe: the worker, the stream and the controller's threads call it; it never calls out.
 */
public final class FlightRecorder implements FlightSteps {
  /** How long an image without a {@code bootTimeout} is waited for to report healthy. */
  static final Duration HEALTH_WAIT = Duration.ofMinutes(5);

  private record Mark(String name, Instant at, String detail) {}

  /** A timeline being recorded. */
  private static final class Open {
    final List<Mark> marks = new ArrayList<>();
    String image;
    String digest;
    String trigger;
    boolean returnOnly;
    DesiredState state;
    Duration bootTimeout = Duration.ZERO;
    DownloadProgress progress;

    Mark last() {
      return marks.get(marks.size() - 1);
    }

    boolean has(String name) {
      return marks.stream().anyMatch(m -> m.name().equals(name));
    }
  }

  private final Clock clock;
  // Guarded by this.
  private final Deque<Timeline> ended = new ArrayDeque<>();
  private Open open;
  private List<Mark> bootMarks = new ArrayList<>();
  private boolean loaded;
  private DesiredState firstArrived;
  private DesiredState arrived;
  private Instant arrivedAt;
  private String lastTrigger;

  public FlightRecorder(Clock clock) {
    this.clock = clock;
  }

  /** The agent started at {@code at} (its JVM's start), in the kernel boot {@code bootId}. */
  public synchronized void agentUp(Instant at, String bootId) {
    if (!loaded) {
      bootMarks.add(new Mark(Timeline.AGENT_UP, at, bootId == null ? null : "boot id " + bootId));
    }
  }

  /** The agent starts its enrolment with the operator (the stream follows it). */
  public synchronized void enrolling(Instant at) {
    if (!loaded && !bootMarks.isEmpty()) {
      bootMarks.add(new Mark(Timeline.ENROLLED, at, null));
    }
  }

  /** A desired state arrived. */
  public synchronized void desiredArrived(DesiredState state) {
    if (firstArrived == null) {
      firstArrived = state;
    }
    arrived = state;
    arrivedAt = clock.instant();
  }

  /** A load of {@code state} starts: a boot or switch begins (or the one in progress ends). */
  public synchronized void loadStarted(DesiredState state, Duration bootTimeout) {
    Instant now = clock.instant();
    if (open != null && open.state == state && !open.has(Timeline.DOWNLOAD)) {
      // The switch began with the return its desired state caused: the load goes on with it.
      open.bootTimeout = bootTimeout;
      loaded = true;
      bootMarks = List.of();
      return;
    }
    endWaitingForHealth(now, "superseded before the image reported healthy");
    if (open != null && open.returnOnly) {
      // A return whose end the controller has not said yet (a target that rebooted itself).
      close(now, Timeline.SUCCEEDED, null);
    }
    if (open != null) {
      close(now, Timeline.FAILED, "cancelled: another load started");
    }
    Open next = new Open();
    next.state = state;
    boolean boot = !loaded && state == firstArrived && !bootMarks.isEmpty();
    loaded = true;
    if (boot) {
      next.marks.addAll(bootMarks);
    }
    bootMarks = List.of();
    boolean fresh = state == arrived && arrivedAt != null;
    next.marks.add(
        new Mark(
            Timeline.DESIRED_STATE,
            fresh ? arrivedAt : now,
            state.reason() != null && state.reason().equals("console")
                ? "load typed at the console"
                : "generation " + state.generation()));
    arrivedAt = fresh ? null : arrivedAt;
    next.image = state.image() == null ? null : state.image().name();
    next.digest = state.image() == null ? null : state.image().sha256();
    next.trigger = boot ? null : lastTrigger;
    next.bootTimeout = bootTimeout;
    open = next;
  }

  /** The load in progress reached {@code phase}. */
  public synchronized void loadPhase(MachinePhase phase) {
    if (open == null || open.returnOnly) {
      return;
    }
    Instant now = clock.instant();
    switch (phase) {
      case Downloading -> add(Timeline.DOWNLOAD, now, null);
      case Verifying -> add(Timeline.VERIFY, now, open.has(Timeline.DOWNLOAD) ? null : "cached");
      case Mounting -> {
        if (!open.has(Timeline.VERIFY)) {
          // A tarball's digest is checked as it streams in: verified when the download ends.
          add(Timeline.VERIFY, now, "checked while downloading");
        }
        add(Timeline.MOUNT, now, null);
      }
      default -> {}
    }
  }

  /** The download of the load in progress progressed. */
  public synchronized void progress(DownloadProgress p) {
    if (open != null) {
      open.progress = p;
    }
  }

  /** The load in progress is mounted; {@code sha256} is what it verified. */
  public synchronized void prepared(String sha256) {
    if (open != null && sha256 != null && !sha256.isEmpty()) {
      open.digest = sha256;
    }
  }

  /** The load in progress failed (or was cancelled). */
  public synchronized void loadFailed(String message) {
    if (open != null && !open.returnOnly) {
      close(clock.instant(), Timeline.FAILED, message);
    }
  }

  @Override
  public synchronized void step(String name, Instant at, String detail) {
    if (open != null) {
      add(name, at, detail);
    }
  }

  @Override
  public synchronized void returnTriggered(ReturnTrigger trigger, String reason, Instant at) {
    lastTrigger = trigger.name();
    String detail = trigger.name() + (reason == null || reason.isEmpty() ? "" : ": " + reason);
    if (open != null && !open.returnOnly && open.has(Timeline.HEALTHY)) {
      // The running target of a boot or switch that waits for its health report returns.
      if (trigger == ReturnTrigger.BootTimeout) {
        close(at, Timeline.FAILED, "not healthy within its bootTimeout (" + reason + ")");
      } else {
        endWaitingForHealth(at, "returned (" + trigger + ") before the image reported healthy");
      }
    }
    if (open != null && !open.returnOnly && !open.has(Timeline.PIVOT_ROOT)) {
      // A switch: the running target returns once the next image is mounted.
      open.trigger = trigger.name();
      add(Timeline.RETURN_TRIGGER, at, detail);
      return;
    }
    if (open != null) {
      close(at, Timeline.FAILED, "interrupted by a return (" + trigger + ")");
    }
    if (trigger == ReturnTrigger.SpecChange
        && arrived != null
        && arrivedAt != null
        && arrived.runs()) {
      // A new generation returns the running target before its image loads: its switch begins.
      Open next = new Open();
      next.state = arrived;
      next.image = arrived.image().name();
      next.digest = arrived.image().sha256();
      next.trigger = trigger.name();
      next.marks.add(
          new Mark(Timeline.DESIRED_STATE, arrivedAt, "generation " + arrived.generation()));
      arrivedAt = null;
      open = next;
      add(Timeline.RETURN_TRIGGER, at, detail);
      return;
    }
    Open back = new Open();
    back.returnOnly = true;
    back.trigger = trigger.name();
    back.marks.add(new Mark(Timeline.RETURN_TRIGGER, at, detail));
    open = back;
  }

  @Override
  public synchronized void returnEnded(Instant at) {
    if (open != null && open.returnOnly) {
      close(at, Timeline.SUCCEEDED, null);
    }
  }

  @Override
  public synchronized void healthy(Instant at) {
    if (open != null && !open.returnOnly && open.has(Timeline.HEALTHY)) {
      close(at, Timeline.SUCCEEDED, null);
    }
  }

  /** The newest timelines, newest first: the one in progress, then those that ended. */
  public synchronized List<Timeline> timelines() {
    Instant now = clock.instant();
    if (open != null && !open.returnOnly && open.has(Timeline.HEALTHY)) {
      Mark exec = find(open, Timeline.HEALTHY);
      Duration wait = open.bootTimeout.isZero() ? HEALTH_WAIT : open.bootTimeout.plus(HEALTH_WAIT);
      if (exec != null && Duration.between(exec.at(), now).compareTo(wait) > 0) {
        endWaitingForHealth(now, "no health report within " + wait.toMinutes() + " min");
      }
    }
    List<Timeline> out = new ArrayList<>();
    if (open != null) {
      out.add(timeline(open, null, null, null));
    }
    for (Timeline t : ended) {
      if (out.size() == StatusReport.MAX_TIMELINES) {
        break;
      }
      out.add(t);
    }
    return out;
  }

  private static Mark find(Open o, String name) {
    for (Mark m : o.marks) {
      if (m.name().equals(name)) {
        return m;
      }
    }
    return null;
  }

  /**
   * Ends the open boot or switch that waits for its image's health report at its init's exec: the
   * image ran, but said nothing of its health.
   */
  private void endWaitingForHealth(Instant now, String message) {
    if (open == null || open.returnOnly || !open.has(Timeline.HEALTHY)) {
      return;
    }
    Mark exec = open.last();
    if (!exec.name().equals(Timeline.HEALTHY)) {
      return;
    }
    open.marks.remove(open.marks.size() - 1);
    Open o = open;
    open = null;
    remember(timeline(o, exec.at(), Timeline.SUCCEEDED, message));
  }

  private void add(String name, Instant at, String detail) {
    if (open.progress != null && !open.marks.isEmpty()) {
      Mark last = open.last();
      if (last.name().equals(Timeline.DOWNLOAD) && last.detail() == null) {
        // The download ended: its size and rate.
        open.marks.set(
            open.marks.size() - 1,
            new Mark(
                last.name(),
                last.at(),
                Timeline.sizeAtRate(open.progress.bytes(), Duration.between(last.at(), at))));
      }
    }
    Instant previous = open.marks.isEmpty() ? at : open.last().at();
    // Steps follow one another: a step never begins before the one before it.
    open.marks.add(new Mark(name, at.isBefore(previous) ? previous : at, detail));
  }

  private void close(Instant end, String result, String message) {
    Open o = open;
    open = null;
    remember(timeline(o, end, result, message));
  }

  private static Instant millis(Instant at) {
    return at == null ? null : at.truncatedTo(java.time.temporal.ChronoUnit.MILLIS);
  }

  private void remember(Timeline t) {
    ended.addFirst(t);
    while (ended.size() > StatusReport.MAX_TIMELINES) {
      ended.removeLast();
    }
  }

  /**
   * The timeline of {@code o}; {@code end} null while in progress. Times to the millisecond: each
   * step's seconds are then exactly the difference of two {@code at}s.
   */
  private static Timeline timeline(Open o, Instant end, String result, String message) {
    List<Timeline.Step> steps = new ArrayList<>();
    double total = 0;
    for (int i = 0; i < o.marks.size(); i++) {
      Mark m = o.marks.get(i);
      Instant at = millis(m.at());
      Instant until = i + 1 < o.marks.size() ? millis(o.marks.get(i + 1).at()) : millis(end);
      Double seconds = until == null ? null : Timeline.seconds(at, until);
      if (seconds != null) {
        total += seconds;
      }
      steps.add(new Timeline.Step(m.name(), at.toString(), seconds, m.detail()));
    }
    return new Timeline(
        o.image,
        o.digest,
        o.trigger,
        o.marks.isEmpty() ? null : millis(o.marks.get(0).at()).toString(),
        Math.round(total * 1000) / 1000.0,
        result,
        message,
        steps);
  }
}
