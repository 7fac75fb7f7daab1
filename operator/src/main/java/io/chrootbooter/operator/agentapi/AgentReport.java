package io.chrootbooter.operator.agentapi;

import io.chrootbooter.api.v1alpha1.AgentInfo;
import io.chrootbooter.api.v1alpha1.LastReturn;
import io.chrootbooter.api.v1alpha1.MachinePhase;
import io.chrootbooter.api.v1alpha1.Patterns;
import io.chrootbooter.api.v1alpha1.Progress;
import io.chrootbooter.operator.SpecRules;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;

/**
 * A status report from an agent: {@code POST /agent/v1/machines/{mac}/status}. Nothing in it is
 * trusted: {@link #violations()} checks every field before anything is written.
 */
public record AgentReport(
    String phase,
    Progress progress,
    String currentImage,
    String error,
    LastReturn lastReturn,
    AgentInfo agent,
    Long appliedGeneration) {

  private static final Pattern NAME = Pattern.compile(Patterns.OBJECT_NAME);
  private static final Pattern TRIGGER = Pattern.compile("^[A-Za-z]{1,32}$");
  private static final Pattern PRINTABLE = Pattern.compile("^[\\x20-\\x7e]*$");
  private static final Pattern IP = Pattern.compile("^[0-9A-Fa-f:.]{2,45}$");
  private static final int MAX_TEXT = 1024;

  /** Every problem of the report, empty when it may be written. */
  public List<String> violations() {
    List<String> v = new ArrayList<>();
    if (phase == null) {
      v.add("phase: required");
    } else if (Arrays.stream(MachinePhase.values()).noneMatch(p -> p.name().equals(phase))) {
      v.add(
          "phase: "
              + SpecRules.quote(phase)
              + " is not one of "
              + Arrays.toString(MachinePhase.values()));
    }
    if (progress != null) {
      nonNegative(v, "progress.bytes", progress.bytes());
      nonNegative(v, "progress.total", progress.total());
      nonNegative(v, "progress.bytesPerSecond", progress.bytesPerSecond());
    }
    SpecRules.match(v, "currentImage", currentImage, NAME, "is not a BootImage name");
    text(v, "error", error);
    if (lastReturn != null) {
      SpecRules.match(
          v, "lastReturn.trigger", lastReturn.trigger(), TRIGGER, "is not a trigger name");
      text(v, "lastReturn.reason", lastReturn.reason());
      text(v, "lastReturn.time", lastReturn.time());
      nonNegative(v, "lastReturn.durationMillis", lastReturn.durationMillis());
    }
    if (agent != null) {
      text(v, "agent.version", agent.version());
      text(v, "agent.bootId", agent.bootId());
      text(v, "agent.kernel", agent.kernel());
      text(v, "agent.jit", agent.jit());
      SpecRules.match(v, "agent.ip", agent.ip(), IP, "is not an IP address");
    }
    nonNegative(v, "appliedGeneration", appliedGeneration);
    return v;
  }

  /** The phase, once {@link #violations()} is empty. */
  public MachinePhase machinePhase() {
    return MachinePhase.valueOf(phase);
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
