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
    for (String flag : flags) {
      checks.add(parse(flag));
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
        ArrayNode run = check.putObject("command").putArray("run");
        run.add("/bin/sh").add("-c").add(value);
      }
      case "console-matches", "console-never" -> {
        if (value == null || value.isEmpty()) {
          throw bad(flag, kind + "=REGEX needs a regular expression");
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
