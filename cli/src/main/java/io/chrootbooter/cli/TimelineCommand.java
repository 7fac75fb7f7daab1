package io.chrootbooter.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintStream;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code kubectl boot timeline m1 [--boot | --history] [-o json]}: the boot flight recorder's
 * timeline of the last switch ({@code status.lastSwitch}), the last boot ({@code status.lastBoot}),
 * or the summaries of the last boots and switches ({@code status.history}).
 */
@Command(
    name = "timeline",
    mixinStandardHelpOptions = true,
    description = {
      "A machine's last switch as a table of steps and durations, with the total (--boot: its"
          + " last boot from PXE; --history: the summaries of its recent boots and switches).",
      "Example: kubectl boot timeline m1"
    })
final class TimelineCommand implements Callable<Integer> {

  @ParentCommand KubectlBoot top;

  @Parameters(index = "0", paramLabel = "MACHINE", description = "The MachineBoot.")
  String machine;

  @Option(
      names = "--boot",
      description = "The last boot (status.lastBoot) instead of the last switch.")
  boolean boot;

  @Option(names = "--history", description = "The recent boots and switches (status.history).")
  boolean history;

  @Option(
      names = {"-o", "--output"},
      paramLabel = "FORMAT",
      description = "table (default) or json (the status field as the API has it).")
  String output = "table";

  @Override
  public Integer call() {
    Json.name(machine, "machine");
    if (!output.equals("table") && !output.equals("json")) {
      throw new CliException(
          Exit.USAGE, "--output " + Terminal.printable(output) + ": table or json");
    }
    if (boot && history) {
      throw new CliException(Exit.USAGE, "--boot and --history: choose one");
    }
    JsonNode status = Json.tree(top.cluster().machine(machine)).path("status");
    String field = history ? "history" : boot ? "lastBoot" : "lastSwitch";
    JsonNode t = status.path(field);
    boolean none = t.isMissingNode() || t.isNull() || (history && t.size() == 0);
    if (none) {
      throw new CliException(
          Exit.NOT_FOUND,
          "machineboot "
              + machine
              + " has no "
              + (history ? "history" : boot ? "boot" : "switch")
              + " recorded yet (status."
              + field
              + " is empty)"
              + (boot || history ? "" : "; switch it, or see its boot with --boot"));
    }
    if (output.equals("json")) {
      top.out.println(Json.write(t));
      return Exit.OK;
    }
    if (history) {
      printHistory(top.out, t);
    } else {
      print(top.out, machine, t, boot);
    }
    return Exit.OK;
  }

  /** One timeline: a heading, then a row per step and the total. */
  static void print(PrintStream out, String machine, JsonNode t, boolean boot) {
    String image = Json.text(t, "image");
    String digest = Json.text(t, "digest");
    String trigger = Json.text(t, "trigger");
    // A return on its own (no image follows it) is recorded as a switch without an image.
    String what =
        boot
            ? "boot of " + s(image == null ? "?" : image)
            : image == null ? "return to the bootstrap" : "switch to " + s(image);
    StringBuilder head = new StringBuilder(machine + ": " + what);
    if (digest != null) {
      head.append(" (sha256 ")
          .append(s(digest.length() > 12 ? digest.substring(0, 12) : digest))
          .append(")");
    }
    if (trigger != null) {
      head.append(", after a return by ").append(s(trigger));
    }
    out.println(head);
    String started = Json.text(t, "started");
    String result = Json.text(t, "result");
    out.println(
        "started "
            + s(started == null ? "?" : started)
            + ", "
            + s(result == null ? "in progress" : result)
            + (t.has("seconds") ? " in " + secs(t.path("seconds").asDouble()) + " s" : ""));
    String message = Json.text(t, "message");
    if (message != null) {
      out.println(s(Cluster.firstLine(message)));
    }
    out.println();
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"STEP", "AT", "SECONDS", "DETAIL"});
    OffsetDateTime t0 = time(started);
    double sum = 0;
    for (JsonNode step : t.path("steps")) {
      OffsetDateTime at = time(Json.text(step, "at"));
      String offset =
          t0 == null || at == null ? "" : "+" + secs(Duration.between(t0, at).toNanos() / 1e9);
      double seconds = step.path("seconds").asDouble();
      sum += seconds;
      rows.add(
          new String[] {
            s(Json.text(step, "name")),
            offset,
            step.has("seconds") ? secs(seconds) : "",
            s(Json.text(step, "detail"))
          });
    }
    rows.add(
        new String[] {
          "total", "", secs(t.has("seconds") ? t.path("seconds").asDouble() : sum), ""
        });
    table(out, rows, 2);
  }

  static void printHistory(PrintStream out, JsonNode history) {
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"STARTED", "IMAGE", "TRIGGER", "RESULT", "SECONDS", "SLOWEST STEP"});
    for (JsonNode h : history) {
      String slowest = "";
      double max = -1;
      Iterator<Map.Entry<String, JsonNode>> it = h.path("stepSeconds").fields();
      while (it.hasNext()) {
        Map.Entry<String, JsonNode> e = it.next();
        if (e.getValue().asDouble() > max) {
          max = e.getValue().asDouble();
          slowest = s(e.getKey()) + " " + secs(max) + " s";
        }
      }
      rows.add(
          new String[] {
            s(Json.text(h, "started")),
            s(Json.text(h, "image")),
            h.has("trigger") ? s(Json.text(h, "trigger")) : "(boot)",
            s(Json.text(h, "result")),
            h.has("seconds") ? secs(h.path("seconds").asDouble()) : "",
            slowest
          });
    }
    table(out, rows, 4);
  }

  /** Columns padded to their widest cell; the column {@code right} aligned right. */
  static void table(PrintStream out, List<String[]> rows, int right) {
    int[] width = new int[rows.get(0).length];
    for (String[] r : rows) {
      for (int i = 0; i < r.length; i++) {
        width[i] = Math.max(width[i], r[i].length());
      }
    }
    for (String[] r : rows) {
      StringBuilder line = new StringBuilder();
      for (int i = 0; i < r.length; i++) {
        String cell = r[i];
        String pad = " ".repeat(width[i] - cell.length());
        line.append(i == right && !cell.equals(rows.get(0)[i]) ? pad + cell : cell + pad);
        if (i < r.length - 1) {
          line.append("  ");
        }
      }
      out.println(line.toString().stripTrailing());
    }
  }

  static String secs(double seconds) {
    return String.format(Locale.ROOT, "%.2f", seconds);
  }

  private static OffsetDateTime time(String text) {
    if (text == null) {
      return null;
    }
    try {
      return OffsetDateTime.parse(text);
    } catch (DateTimeParseException e) {
      return null;
    }
  }

  /** A status text for the terminal: no control characters, one line. */
  private static String s(String text) {
    return text == null ? "" : Terminal.printable(text).replace('\n', ' ');
  }
}
