package io.chrootbooter.operator.boottest;

import static io.chrootbooter.operator.SpecRules.match;
import static io.chrootbooter.operator.SpecRules.quote;
import static io.chrootbooter.operator.SpecRules.require;

import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.BootTestPromotion;
import io.chrootbooter.api.v1alpha1.BootTestSpec;
import io.chrootbooter.api.v1alpha1.MachineSelection;
import io.chrootbooter.api.v1alpha1.Patterns;
import io.chrootbooter.protocol.GoDuration;
import io.fabric8.kubernetes.api.model.LabelSelectorRequirement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Checks a BootTest's spec as the CRD schema does, for API servers that do not apply it. Every
 * violation names field, value and rule.
 */
public final class BootTestValidator {
  private static final Pattern NAME = Pattern.compile(Patterns.OBJECT_NAME);
  private static final Pattern DURATION = Pattern.compile(Patterns.DURATION);
  private static final Pattern CHECK_NAME = Pattern.compile(BootTestCheck.CHECK_NAME);

  /** As the agent refuses them: arguments, and characters in one. */
  private static final int MAX_ARGS = 256;

  private static final int MAX_ARG = 4096;
  private static final Set<String> OPERATORS = Set.of("In", "NotIn", "Exists", "DoesNotExist");
  private static final String NOT_A_NAME =
      "is not an object name (lower-case letters, digits, '-' and '.')";
  private static final String NOT_A_DURATION = "is not a duration such as 90s, 5m or 1h30m";

  private BootTestValidator() {}

  /** What is wrong with {@code spec}; empty when nothing is. */
  public static List<String> violations(BootTestSpec spec) {
    List<String> v = new ArrayList<>();
    if (spec == null) {
      v.add("spec: required");
      return v;
    }
    require(v, "spec.imageRef", spec.imageRef());
    match(v, "spec.imageRef", spec.imageRef(), NAME, NOT_A_NAME);
    if (spec.machines() == null) {
      v.add("spec.machines: required");
    } else {
      selection(v, "spec.machines", spec.machines());
    }
    if (spec.promote() != null) {
      promote(v, spec);
    }
    if (spec.parallelism() != null && (spec.parallelism() < 1 || spec.parallelism() > 1000)) {
      v.add("spec.parallelism: " + spec.parallelism() + " is not between 1 and 1000");
    }
    match(v, "spec.timeout", spec.timeout(), DURATION, NOT_A_DURATION);
    List<BootTestCheck> checks = spec.checksOrEmpty();
    if (checks.isEmpty()) {
      v.add("spec.checks: at least one check is required");
    } else if (checks.size() > 32) {
      v.add("spec.checks: " + checks.size() + " items; at most 32");
    }
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < checks.size(); i++) {
      String field = "spec.checks[" + i + "]";
      BootTestCheck check = checks.get(i);
      if (check == null) {
        v.add(field + ": null");
        continue;
      }
      match(
          v,
          field + ".name",
          check.name(),
          CHECK_NAME,
          "is not a check name (letters, digits, '.', '_' and '-', at most 63)");
      if ("invalid".equals(check.kind())) {
        v.add(
            field
                + ": set exactly one of healthy, command, consoleMatches, consoleNever and"
                + " returns");
        continue;
      }
      if (!seen.add(check.nameOrDefault())) {
        v.add(
            field
                + ": a second check named "
                + quote(check.nameOrDefault())
                + "; give each check a name of its own");
      }
      if (check.healthy() != null) {
        match(v, field + ".healthy.timeout", check.healthy().timeout(), DURATION, NOT_A_DURATION);
      }
      if (check.returns() != null) {
        require(v, field + ".returns.trigger", check.returns().trigger());
        match(v, field + ".returns.timeout", check.returns().timeout(), DURATION, NOT_A_DURATION);
      }
      if (check.command() != null) {
        command(v, field + ".command", check.command());
      }
      if (check.consoleMatches() != null) {
        pattern(v, field + ".consoleMatches.pattern", check.consoleMatches().pattern());
        match(
            v,
            field + ".consoleMatches.timeout",
            check.consoleMatches().timeout(),
            DURATION,
            NOT_A_DURATION);
      }
      if (check.consoleNever() != null) {
        pattern(v, field + ".consoleNever.pattern", check.consoleNever().pattern());
      }
    }
    return v;
  }

  private static void command(List<String> v, String field, BootTestCheck.Command command) {
    List<String> run = command.run();
    if (run == null || run.isEmpty()) {
      v.add(field + ".run: give the program and its arguments, such as [uname, -r]");
    } else if (run.size() > MAX_ARGS) {
      v.add(field + ".run: " + run.size() + " items; at most " + MAX_ARGS);
    } else {
      for (int i = 0; i < run.size(); i++) {
        String arg = run.get(i);
        String at = field + ".run[" + i + "]";
        if (arg == null) {
          v.add(at + ": null");
        } else if (arg.length() > MAX_ARG) {
          v.add(at + ": " + arg.length() + " characters; at most " + MAX_ARG);
        } else if (arg.indexOf('\0') >= 0) {
          v.add(at + ": holds a NUL character");
        } else if (i == 0 && arg.isBlank()) {
          v.add(at + ": the program is empty");
        }
      }
    }
    if (command.exitCode() != null && (command.exitCode() < 0 || command.exitCode() > 255)) {
      v.add(field + ".exitCode: " + command.exitCode() + " is not between 0 and 255");
    }
    match(v, field + ".timeout", command.timeout(), DURATION, NOT_A_DURATION);
    if (command.timeout() != null && DURATION.matcher(command.timeout()).matches()) {
      var timeout = GoDuration.tryParse(command.timeout());
      if (timeout.isPresent()
          && (timeout.get().isZero()
              || timeout.get().compareTo(BootTestCheck.MAX_COMMAND_TIMEOUT) > 0)) {
        v.add(field + ".timeout: " + quote(command.timeout()) + " is not between 1ms and 1h");
      }
    }
  }

  private static void pattern(List<String> v, String field, String pattern) {
    if (pattern == null || pattern.isEmpty()) {
      v.add(field + ": required");
      return;
    }
    if (pattern.length() > BootTestCheck.MAX_PATTERN) {
      v.add(field + ": " + pattern.length() + " characters; at most " + BootTestCheck.MAX_PATTERN);
      return;
    }
    ConsoleCheck.problem(pattern)
        .ifPresent(
            p -> v.add(field + ": " + quote(pattern) + " is not a regular expression: " + p));
  }

  private static void selection(List<String> v, String field, MachineSelection selection) {
    if (selection.selector() == null && selection.namesOrEmpty().isEmpty()) {
      v.add(field + ": give a selector, names, or both");
    }
    List<String> names = selection.namesOrEmpty();
    if (names.size() > 1000) {
      v.add(field + ".names: " + names.size() + " items; at most 1000");
    }
    for (int i = 0; i < names.size(); i++) {
      if (names.get(i) == null) {
        v.add(field + ".names[" + i + "]: null");
      } else {
        match(v, field + ".names[" + i + "]", names.get(i), NAME, NOT_A_NAME);
      }
    }
    if (selection.selector() != null && selection.selector().getMatchExpressions() != null) {
      List<LabelSelectorRequirement> exprs = selection.selector().getMatchExpressions();
      for (int i = 0; i < exprs.size(); i++) {
        String op = exprs.get(i).getOperator();
        if (op == null || !OPERATORS.contains(op)) {
          v.add(
              field
                  + ".selector.matchExpressions["
                  + i
                  + "].operator: "
                  + (op == null
                      ? "required"
                      : quote(op) + " is not In, NotIn, Exists or DoesNotExist"));
        }
      }
    }
  }

  /**
   * spec.promote: its selection, its numbers, and no overlap with the tested machines that shows in
   * the spec (the same name in both lists, or the same selector); an overlap through labels is
   * refused when the test starts, before any machine is held.
   */
  private static void promote(List<String> v, BootTestSpec spec) {
    BootTestPromotion promote = spec.promote();
    if (promote.promoteTo() == null) {
      v.add("spec.promote.promoteTo: required");
    } else {
      selection(v, "spec.promote.promoteTo", promote.promoteTo());
      if (spec.machines() != null) {
        List<String> tested = spec.machines().namesOrEmpty();
        List<String> names = promote.promoteTo().namesOrEmpty();
        for (int i = 0; i < names.size(); i++) {
          if (names.get(i) != null && tested.contains(names.get(i))) {
            v.add(
                "spec.promote.promoteTo.names["
                    + i
                    + "]: "
                    + quote(names.get(i))
                    + " is in spec.machines.names too; a machine is either tested or promoted");
          }
        }
        if (promote.promoteTo().selector() != null
            && promote.promoteTo().selector().equals(spec.machines().selector())) {
          v.add(
              "spec.promote.promoteTo.selector: the same as spec.machines.selector; it would"
                  + " promote to the machines tested");
        }
      }
    }
    if (promote.maxUnavailable() != null
        && (promote.maxUnavailable() < 1 || promote.maxUnavailable() > 1000)) {
      v.add(
          "spec.promote.maxUnavailable: "
              + promote.maxUnavailable()
              + " is not between 1 and 1000");
    }
    if (promote.failureThreshold() != null
        && (promote.failureThreshold() < 1 || promote.failureThreshold() > 1000)) {
      v.add(
          "spec.promote.failureThreshold: "
              + promote.failureThreshold()
              + " is not between 1 and 1000");
    }
  }
}
