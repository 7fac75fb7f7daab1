package io.chrootbooter.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The {@code --check} flags of {@code kubectl boot test} as BootTest checks:
 *
 * <pre>
 * healthy[=TIMEOUT]            {healthy: {timeout}}
 * command=SHELL COMMAND        {command: {run: [/bin/sh, -c, SHELL COMMAND]}} (exit code 0 expected)
 * console-matches=REGEX        {consoleMatches: {pattern: REGEX}}
 * console-never=REGEX          {consoleNever: {pattern: REGEX}}
 * returns=TRIGGER              {returns: {trigger}}  (SpecChange, Hotkey, Serial, Helper)
 * </pre>
 *
 * Without flags the test has one check, {@code healthy}; a command check without a healthy check
 * gets one in front (the agent runs a boot's commands once its image reports healthy).
 */
final class Checks {

  private static final List<String> TRIGGERS = List.of("SpecChange", "Hotkey", "Serial", "Helper");

  private Checks() {}

  static ArrayNode parse(List<String> flags) {
    ArrayNode checks = Json.MAPPER.createArrayNode();
    if (flags == null || flags.isEmpty()) {
      checks.addObject().putObject("healthy");
      return checks;
    }
    boolean healthy = false;
    boolean afterHealthy = false;
    for (String flag : flags) {
      ObjectNode check = parse(flag);
      healthy |= check.has("healthy");
      afterHealthy |= check.has("command");
      checks.add(check);
    }
    if (afterHealthy && !healthy) {
      // The agent runs a boot's commands once the image reports healthy: the test needs a
      // healthy check before them.
      checks.insertObject(0).putObject("healthy");
    }
    if (checks.size() > 32) {
      throw new CliException(Exit.USAGE, "at most 32 checks");
    }
    return checks;
  }

  static ObjectNode parse(String flag) {
    int eq = flag.indexOf('=');
    String kind = eq < 0 ? flag : flag.substring(0, eq);
    String value = eq < 0 ? null : flag.substring(eq + 1);
    ObjectNode check = Json.object();
    switch (kind) {
      case "healthy" -> {
        ObjectNode h = check.putObject("healthy");
        if (value != null) {
          GoDurations.parse(value, "--check healthy=");
          h.put("timeout", value);
        }
      }
      case "command" -> {
        if (value == null || value.isBlank()) {
          throw bad(flag, "command=CMD needs a command, such as command='uname -r'");
        }
        if (value.length() > 4096) {
          throw bad(flag.substring(0, 20) + "...", "a command of at most 4,096 characters");
        }
        ArrayNode run = check.putObject("command").putArray("run");
        run.add("/bin/sh").add("-c").add(value);
      }
      case "console-matches", "console-never" -> {
        if (value == null || value.isEmpty() || value.length() > 1024) {
          throw bad(
              value == null || value.length() <= 1024 ? flag : kind + "=...",
              kind + "=REGEX needs a regular expression of 1 to 1,024 characters");
        }
        try {
          Pattern.compile(value);
        } catch (PatternSyntaxException e) {
          throw bad(flag, "not a regular expression: " + Cluster.firstLine(e.getDescription()));
        }
        check
            .putObject(kind.equals("console-never") ? "consoleNever" : "consoleMatches")
            .put("pattern", value);
      }
      case "returns" -> {
        if (value == null || !TRIGGERS.contains(value)) {
          throw bad(flag, "returns=TRIGGER: one of " + String.join(", ", TRIGGERS));
        }
        check.putObject("returns").put("trigger", value);
      }
      default ->
          throw bad(
              flag,
              "give healthy[=TIMEOUT], command=CMD, console-matches=REGEX, console-never=REGEX or"
                  + " returns=TRIGGER");
    }
    return check;
  }

  private static CliException bad(String flag, String why) {
    return new CliException(Exit.USAGE, "--check " + Terminal.printable(flag) + ": " + why);
  }
}
