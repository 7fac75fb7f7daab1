package io.chrootbooter.operator.agentapi;

import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.api.v1alpha1.TimelineSummary;
import io.chrootbooter.protocol.Timeline;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * The flight recorder's part of a MachineBoot's status, from the timelines an agent reports: {@code
 * status.lastBoot} and {@code status.lastSwitch} are the newest boot and the newest switch (or
 * return), in progress or ended; {@code status.history} holds the ended ones, newest first, at most
 * {@code limit}. Pure: the same status and timelines give the same result, so a report repeated
 * every heartbeat changes nothing and is not written.
 *
 * <p>A timeline is known by when it started ({@code started}) and its image: the agent sends its
 * newest ones in every report, and one already in the history is replaced, not added again.
 */
final class FlightRecords {
  private FlightRecords() {}

  /**
   * The status' timelines after a report.
   *
   * @param added the ended timelines the history did not hold before
   */
  record Result(
      Timeline lastBoot,
      Timeline lastSwitch,
      List<TimelineSummary> history,
      List<TimelineSummary> added) {

    /** Whether {@code status} shows something else. */
    boolean differsFrom(MachineBootStatus status) {
      return status == null
          || !Objects.equals(lastBoot, status.lastBoot())
          || !Objects.equals(lastSwitch, status.lastSwitch())
          || !Objects.equals(history, status.history());
    }
  }

  /**
   * @param old the status before; null for none
   * @param reported the report's timelines, newest first; null or empty: the status' are kept
   * @param withServed adds the operator's own steps to a boot
   * @param limit how many ended timelines the history keeps
   */
  static Result apply(
      MachineBootStatus old,
      List<Timeline> reported,
      UnaryOperator<Timeline> withServed,
      int limit) {
    Timeline lastBoot = old == null ? null : old.lastBoot();
    Timeline lastSwitch = old == null ? null : old.lastSwitch();
    List<TimelineSummary> before = old == null || old.history() == null ? List.of() : old.history();
    List<TimelineSummary> history = new ArrayList<>(before);
    List<TimelineSummary> added = new ArrayList<>();
    if (reported == null || reported.isEmpty()) {
      return new Result(lastBoot, lastSwitch, old == null ? null : old.history(), added);
    }
    List<Timeline> oldestFirst = new ArrayList<>(reported);
    java.util.Collections.reverse(oldestFirst);
    for (Timeline reportedOne : oldestFirst) {
      Timeline t = reportedOne.boot() ? withServed.apply(reportedOne) : reportedOne;
      if (t.boot()) {
        lastBoot = newer(lastBoot, t);
      } else {
        lastSwitch = newer(lastSwitch, t);
      }
      if (t.done()) {
        TimelineSummary summary = TimelineSummary.of(t);
        int at = indexOf(history, t.started(), t.image());
        if (at >= 0) {
          history.set(at, summary);
        } else {
          history.add(summary);
          added.add(summary);
        }
      }
    }
    history.sort(
        Comparator.comparing((TimelineSummary s) -> instant(s.started()).orElse(Instant.EPOCH))
            .reversed());
    List<TimelineSummary> kept =
        history.size() > limit ? List.copyOf(history.subList(0, limit)) : List.copyOf(history);
    added.retainAll(kept);
    return new Result(lastBoot, lastSwitch, kept.isEmpty() ? null : kept, added);
  }

  /** {@code t} when it started no earlier than {@code current}, else {@code current}. */
  private static Timeline newer(Timeline current, Timeline t) {
    if (current == null) {
      return t;
    }
    Optional<Instant> was = instant(current.started());
    Optional<Instant> is = instant(t.started());
    if (was.isEmpty() || (is.isPresent() && !is.get().isBefore(was.get()))) {
      return t;
    }
    return current;
  }

  private static int indexOf(List<TimelineSummary> history, String started, String image) {
    for (int i = 0; i < history.size(); i++) {
      if (Objects.equals(history.get(i).started(), started)
          && Objects.equals(history.get(i).image(), image)) {
        return i;
      }
    }
    return -1;
  }

  static Optional<Instant> instant(String text) {
    if (text == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(Instant.parse(text));
    } catch (DateTimeParseException e) {
      return Optional.empty();
    }
  }

  /**
   * A boot with the operator's steps before the agent's ({@code served}, the last of which lasts
   * until the agent started): {@code started} and {@code seconds} then span them too. A boot that
   * has them already, or no served steps, stays as it is.
   */
  static Timeline withServed(Timeline boot, List<Timeline.Step> served) {
    if (served.isEmpty()
        || boot.steps().isEmpty()
        || !Timeline.AGENT_UP.equals(boot.steps().get(0).name())) {
      return boot;
    }
    List<Timeline.Step> steps = new ArrayList<>(served);
    steps.addAll(boot.steps());
    double total = 0;
    for (Timeline.Step s : steps) {
      total += s.seconds() == null ? 0 : s.seconds();
    }
    return new Timeline(
        boot.image(),
        boot.digest(),
        boot.trigger(),
        served.get(0).at(),
        Math.round(total * 1000) / 1000.0,
        boot.result(),
        boot.message(),
        steps);
  }
}
