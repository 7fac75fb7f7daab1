package io.chrootbooter.operator.agentapi;

import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.Patterns;
import io.chrootbooter.operator.SpecRules;
import io.chrootbooter.protocol.StatusReport;
import io.chrootbooter.protocol.TestCommand;
import io.chrootbooter.protocol.Timeline;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The operator's check of a {@link StatusReport}: nothing an agent sends is trusted, every field is
 * checked before anything is written. Unknown fields and an unknown phase were refused while it was
 * read ({@link AgentResource}).
 */
final class StatusReportRules {
  private static final Pattern NAME = Pattern.compile(Patterns.OBJECT_NAME);
  private static final Pattern TRIGGER = Pattern.compile("^[A-Za-z]{1,32}$");
  private static final Pattern PRINTABLE = Pattern.compile("^[\\x20-\\x7e]*$");
  private static final Pattern IP = Pattern.compile("^[0-9A-Fa-f:.]{2,45}$");
  private static final int MAX_TEXT = 1024;
  private static final Pattern CHECK_NAME = Pattern.compile(BootTestCheck.CHECK_NAME);

  /** Results a report may carry: one per check of a BootTest at most. */
  static final int MAX_COMMANDS = 32;

  private StatusReportRules() {}

  /** Every problem of the report, empty when it may be written. */
  static List<String> violations(StatusReport report) {
    List<String> v = new ArrayList<>();
    if (report.phase() == null) {
      v.add("phase: required");
    }
    var progress = report.progress();
    if (progress != null) {
      nonNegative(v, "progress.bytes", progress.bytes());
      nonNegative(v, "progress.total", progress.total());
      nonNegative(v, "progress.bytesPerSecond", progress.bytesPerSecond());
    }
    var prefetch = report.prefetch();
    if (prefetch != null) {
      nonNegative(v, "prefetch.bytesLocal", prefetch.bytesLocal());
      nonNegative(v, "prefetch.total", prefetch.total());
      if (prefetch.bytesLocal() != null
          && prefetch.total() != null
          && prefetch.bytesLocal() > prefetch.total()) {
        v.add(
            "prefetch.bytesLocal: "
                + prefetch.bytesLocal()
                + " is more than prefetch.total "
                + prefetch.total());
      }
      text(v, "prefetch.error", prefetch.error());
    }
    SpecRules.match(v, "currentImage", report.currentImage(), NAME, "is not a BootImage name");
    text(v, "error", report.error());
    var lastReturn = report.lastReturn();
    if (lastReturn != null) {
      // A name this operator does not know is accepted and recorded as Other (Returns): an agent
      // newer than its operator may know a trigger more.
      SpecRules.match(
          v, "lastReturn.trigger", lastReturn.trigger(), TRIGGER, "is not a trigger name");
      text(v, "lastReturn.reason", lastReturn.reason());
      text(v, "lastReturn.time", lastReturn.time());
      nonNegative(v, "lastReturn.durationMillis", lastReturn.durationMillis());
    }
    var agent = report.agent();
    if (agent != null) {
      text(v, "agent.version", agent.version());
      text(v, "agent.bootId", agent.bootId());
      text(v, "agent.kernel", agent.kernel());
      text(v, "agent.jit", agent.jit());
      SpecRules.match(v, "agent.ip", agent.ip(), IP, "is not an IP address");
    }
    nonNegative(v, "appliedGeneration", report.appliedGeneration());
    List<TestCommand.Result> commands = report.commands();
    if (commands.size() > MAX_COMMANDS) {
      v.add("commands: " + commands.size() + " results; at most " + MAX_COMMANDS);
      return v;
    }
    for (int i = 0; i < commands.size(); i++) {
      String field = "commands[" + i + "]";
      TestCommand.Result r = commands.get(i);
      if (r == null) {
        v.add(field + ": null");
        continue;
      }
      SpecRules.require(v, field + ".name", r.name());
      SpecRules.match(v, field + ".name", r.name(), CHECK_NAME, "is not a check name");
      if (r.exitCode() != null && (r.exitCode() < 0 || r.exitCode() > 255)) {
        v.add(field + ".exitCode: " + r.exitCode() + " is not between 0 and 255");
      }
      nonNegative(v, field + ".durationMillis", r.durationMillis());
      output(v, field + ".stdout", r.stdout());
      output(v, field + ".stderr", r.stderr());
      text(v, field + ".error", r.error());
    }
    timelines(v, report.timelines());
    return v;
  }

  /** A command's output: any text, up to the bound the agent keeps. */
  private static void output(List<String> v, String field, String value) {
    if (value != null && value.length() > TestCommand.MAX_OUTPUT_BYTES) {
      v.add(field + ": " + value.length() + " characters; at most " + TestCommand.MAX_OUTPUT_BYTES);
    }
  }

  /** At most this many steps in a timeline (a switch has 15 at most). */
  static final int MAX_STEPS = 32;

  /** At most this many seconds in a step or a timeline (a year). */
  static final double MAX_SECONDS = 365 * 24 * 3600.0;

  private static final Pattern STEP = Pattern.compile("^[a-z]{1,24}(-[a-z]{1,24}){0,3}$");
  private static final Pattern SHA256 = Pattern.compile("^[0-9a-f]{64}$");

  /**
   * The flight recorder's timelines: few, each with few steps, names and times as the protocol has
   * them. A step name this operator does not know, but that has the shape of one, is accepted (an
   * agent newer than its operator may record a step more); the step metric counts only known ones.
   */
  private static void timelines(List<String> v, List<Timeline> timelines) {
    if (timelines == null) {
      return;
    }
    if (timelines.size() > StatusReport.MAX_TIMELINES) {
      v.add("timelines: " + timelines.size() + " timelines; at most " + StatusReport.MAX_TIMELINES);
      return;
    }
    for (int i = 0; i < timelines.size(); i++) {
      Timeline t = timelines.get(i);
      String at = "timelines[" + i + "]";
      if (t == null) {
        v.add(at + ": null");
        continue;
      }
      SpecRules.match(v, at + ".image", t.image(), NAME, "is not a BootImage name");
      SpecRules.match(v, at + ".digest", t.digest(), SHA256, "is not a SHA-256 (64 hex digits)");
      SpecRules.match(v, at + ".trigger", t.trigger(), TRIGGER, "is not a trigger name");
      time(v, at + ".started", t.started());
      seconds(v, at + ".seconds", t.seconds());
      if (t.result() != null
          && !Timeline.SUCCEEDED.equals(t.result())
          && !Timeline.FAILED.equals(t.result())) {
        v.add(at + ".result: " + SpecRules.quote(t.result()) + " is not Succeeded or Failed");
      }
      text(v, at + ".message", t.message());
      if (t.steps().size() > MAX_STEPS) {
        v.add(at + ".steps: " + t.steps().size() + " steps; at most " + MAX_STEPS);
        continue;
      }
      for (int j = 0; j < t.steps().size(); j++) {
        Timeline.Step step = t.steps().get(j);
        String sat = at + ".steps[" + j + "]";
        if (step == null) {
          v.add(sat + ": null");
          continue;
        }
        if (step.name() == null) {
          v.add(sat + ".name: required");
        } else {
          SpecRules.match(v, sat + ".name", step.name(), STEP, "is not a step name");
        }
        time(v, sat + ".at", step.at());
        seconds(v, sat + ".seconds", step.seconds());
        text(v, sat + ".detail", step.detail());
      }
    }
  }

  private static void time(List<String> v, String field, String value) {
    if (value == null) {
      v.add(field + ": required");
      return;
    }
    if (value.length() > 40 || FlightRecords.instant(value).isEmpty()) {
      v.add(field + ": " + SpecRules.quote(value) + " is not an RFC 3339 time");
    }
  }

  private static void seconds(List<String> v, String field, Double value) {
    if (value != null && !(value >= 0 && value <= MAX_SECONDS)) {
      v.add(field + ": " + value + " is not between 0 and " + (long) MAX_SECONDS);
    }
  }

  private static void nonNegative(List<String> v, String field, Long value) {
    if (value != null && value < 0) {
      v.add(field + ": " + value + " is negative");
    }
  }

  private static void text(List<String> v, String field, String value) {
    if (value == null) {
      return;
    }
    if (value.length() > MAX_TEXT) {
      v.add(field + ": " + value.length() + " characters; at most " + MAX_TEXT);
    } else if (!PRINTABLE.matcher(value).matches()) {
      v.add(field + ": " + SpecRules.quote(value) + " holds characters other than printable ASCII");
    }
  }
}
