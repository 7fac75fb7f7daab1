package io.chrootbooter.operator.boottest;

import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.MachineTestResult;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckOutcome;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckResult;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;

/**
 * A BootTest's results as JUnit XML, the format CI systems read (Jenkins, GitLab, GitHub actions'
 * test reporters): one {@code <testsuite>} per machine, one {@code <testcase>} per check; a failed
 * check is a {@code <failure>}, a check in Error an {@code <error>}, a skipped or not yet run one
 * {@code <skipped>}. A failed or erring testcase carries its output (what a command wrote, the
 * console around a console check's match, or the console's last lines) and the machine's timeline
 * in its {@code <system-out>}; a passed one with output carries that. The machines of a promotion
 * ({@code spec.promote}) follow the tested ones, one suite each. Written by hand: the format is a
 * few elements, and every value is escaped here. It validates against the JUnit schema of Jenkins'
 * xUnit plugin ({@code junit-10.xsd}), which Ant's and Surefire's reports meet too: skipped counts
 * are on each {@code <testsuite>} only, as that schema has no {@code skipped} on {@code
 * <testsuites>}.
 */
public final class JunitReport {
  private static final DateTimeFormatter TIMESTAMP =
      DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss", Locale.ROOT);

  private JunitReport() {}

  /**
   * The report of {@code bt} as it stands: a test in progress reports its pending checks skipped.
   */
  public static String of(BootTest bt) {
    String ns = bt.getMetadata().getNamespace();
    String name = bt.getMetadata().getName();
    List<MachineTestResult> machines = new java.util.ArrayList<>();
    if (bt.getStatus() != null) {
      machines.addAll(bt.getStatus().machines());
      if (bt.getStatus().promotion() != null) {
        // A promoted machine is checked as a tested one is: a suite of its own.
        machines.addAll(bt.getStatus().promotion().machines());
      }
    }
    int tests = 0;
    int failures = 0;
    int errors = 0;
    double time = 0;
    StringBuilder suites = new StringBuilder();
    for (MachineTestResult m : machines) {
      int t = m.checks().size();
      int f = count(m, CheckOutcome.Failed);
      int e = count(m, CheckOutcome.Error);
      int s = t - f - e - count(m, CheckOutcome.Passed);
      double seconds = m.checks().stream().mapToDouble(JunitReport::seconds).sum();
      tests += t;
      failures += f;
      errors += e;
      time += seconds;
      suites
          .append("  <testsuite name=\"")
          .append(attr(ns + "/" + name + "/" + m.name()))
          .append("\" tests=\"")
          .append(t)
          .append("\" failures=\"")
          .append(f)
          .append("\" errors=\"")
          .append(e)
          .append("\" skipped=\"")
          .append(s)
          .append("\" time=\"")
          .append(format(seconds))
          .append('"');
      if (m.startTime() != null) {
        suites.append(" timestamp=\"").append(timestamp(m.startTime())).append('"');
      }
      suites.append(">\n    <properties>\n");
      property(suites, "machine", m.name());
      property(suites, "image", bt.getSpec() == null ? "" : bt.getSpec().imageRef());
      property(suites, "phase", m.phase() == null ? "" : m.phase().name());
      if (m.previousImage() != null) {
        property(suites, "previousImage", m.previousImage());
      }
      suites.append("    </properties>\n");
      for (CheckResult c : m.checks()) {
        testcase(suites, name, m, c);
      }
      suites.append("  </testsuite>\n");
    }
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        + "<testsuites name=\""
        + attr("BootTest " + ns + "/" + name)
        + "\" tests=\""
        + tests
        + "\" failures=\""
        + failures
        + "\" errors=\""
        + errors
        + "\" time=\""
        + format(time)
        + "\">\n"
        + suites
        + "</testsuites>\n";
  }

  private static void testcase(StringBuilder out, String test, MachineTestResult m, CheckResult c) {
    out.append("    <testcase name=\"")
        .append(attr(c.name()))
        .append("\" classname=\"")
        .append(attr(test + "." + m.name()))
        .append("\" time=\"")
        .append(format(seconds(c)))
        .append('"');
    CheckOutcome result = c.result() == null ? CheckOutcome.Pending : c.result();
    if (result == CheckOutcome.Passed) {
      if (c.output() == null) {
        out.append("/>\n");
        return;
      }
      // What a passed command wrote, or the console line a consoleMatches check found.
      out.append(">\n      <system-out>")
          .append(text(c.output()))
          .append("</system-out>\n    </testcase>\n");
      return;
    }
    out.append(">\n");
    String message = c.message() == null ? result.name() : c.message();
    switch (result) {
      case Failed, Error -> {
        String element = result == CheckOutcome.Failed ? "failure" : "error";
        out.append("      <")
            .append(element)
            .append(" message=\"")
            .append(attr(message))
            .append("\" type=\"")
            .append(attr(c.kind() == null ? "check" : c.kind()))
            .append("\">")
            .append(text(message))
            .append("</")
            .append(element)
            .append(">\n");
        out.append("      <system-out>");
        if (c.output() != null) {
          out.append(text(c.output()));
          if (!c.output().endsWith("\n")) {
            out.append('\n');
          }
          out.append("\ntimeline:\n");
        }
        for (var entry : m.timeline()) {
          out.append(text(entry.time() + " " + entry.event())).append('\n');
        }
        out.append("</system-out>\n");
      }
      default ->
          out.append("      <skipped message=\"")
              .append(attr(result == CheckOutcome.Skipped ? message : "not run yet: " + result))
              .append("\"/>\n");
    }
    out.append("    </testcase>\n");
  }

  private static void property(StringBuilder out, String name, String value) {
    out.append("      <property name=\"")
        .append(attr(name))
        .append("\" value=\"")
        .append(attr(value))
        .append("\"/>\n");
  }

  private static int count(MachineTestResult m, CheckOutcome outcome) {
    return (int) m.checks().stream().filter(c -> c.result() == outcome).count();
  }

  private static double seconds(CheckResult c) {
    return c.durationMillis() == null ? 0 : c.durationMillis() / 1000.0;
  }

  private static String format(double seconds) {
    return String.format(Locale.ROOT, "%.3f", seconds);
  }

  /** The Ant schema's timestamp: ISO 8601 without a zone (the status' times are UTC). */
  private static String timestamp(String rfc3339) {
    try {
      return LocalDateTime.ofInstant(Instant.parse(rfc3339), ZoneOffset.UTC).format(TIMESTAMP);
    } catch (java.time.format.DateTimeParseException e) {
      return "1970-01-01T00:00:00";
    }
  }

  /** Text escaped for an attribute value. */
  static String attr(String s) {
    return text(s).replace("\"", "&quot;").replace("'", "&apos;");
  }

  /**
   * Text escaped for element content; characters XML 1.0 cannot carry at all (control characters
   * but tab, newline and carriage return, lone surrogates, U+FFFE and U+FFFF) become U+FFFD.
   */
  static String text(String s) {
    if (s == null) {
      return "";
    }
    StringBuilder out = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      if (Character.isHighSurrogate(ch)
          && i + 1 < s.length()
          && Character.isLowSurrogate(s.charAt(i + 1))) {
        out.append(ch).append(s.charAt(++i));
        continue;
      }
      switch (ch) {
        case '&' -> out.append("&amp;");
        case '<' -> out.append("&lt;");
        case '>' -> out.append("&gt;");
        default -> {
          boolean allowed =
              ch == '\t'
                  || ch == '\n'
                  || ch == '\r'
                  || (ch >= 0x20 && ch <= 0xD7FF)
                  || (ch >= 0xE000 && ch <= 0xFFFD);
          out.append(allowed ? ch : '\uFFFD');
        }
      }
    }
    return out.toString();
  }
}
