package io.chrootbooter.operator.boottest;

import io.chrootbooter.operator.console.ConsoleLogs;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The console checks of a BootTest ({@code consoleMatches}, {@code consoleNever}): a regular
 * expression over the console a machine's agent recorded, which the machine's target wrote and
 * nobody vetted. Both the text and the time are bounded: a check reads at most the last {@value
 * #MAX_TEXT} characters of a boot's console (the operator keeps 256 KiB per boot anyway), with the
 * terminal's escape sequences and carriage returns taken out, and a match that takes longer than
 * {@link #MATCH_BUDGET} (a pattern that backtracks without end on hostile text) is stopped and puts
 * the check in Error, saying so, instead of holding the reconciler.
 */
public final class ConsoleCheck {
  /** The most console text one match reads: the last characters of a boot's log. */
  static final int MAX_TEXT = 256 * 1024;

  /** How long one match may take. */
  static final Duration MATCH_BUDGET = Duration.ofMillis(250);

  /** The most characters of console an excerpt holds. */
  static final int MAX_EXCERPT = 4000;

  private static final Pattern ESCAPES =
      Pattern.compile("\u001B\\[[0-9;?]*[ -/]*[@-~]|\u001B[@-Z\\\\-_]|\r");

  private ConsoleCheck() {}

  /** A match stopped at {@link #MATCH_BUDGET}. */
  static final class TooSlowException extends RuntimeException {
    TooSlowException() {
      super(null, null, false, false);
    }
  }

  /** The console of the test's boots: the boots the machine's log shows that are not baseline. */
  record Boots(List<ConsoleLogs.View> views) {
    boolean none() {
      return views.isEmpty();
    }

    /** The newest boot: the one that runs now, or ran last. */
    Optional<ConsoleLogs.View> newest() {
      return views.isEmpty() ? Optional.empty() : Optional.of(views.get(views.size() - 1));
    }
  }

  /** The boots {@code consoles} holds of the machine, less those of {@code baseline}. */
  static Boots boots(Consoles consoles, String namespace, String machine, List<String> baseline) {
    Set<String> before = baseline == null ? Set.of() : Set.copyOf(baseline);
    List<ConsoleLogs.View> views = new ArrayList<>();
    for (ConsoleLogs.View v : consoles.of(namespace, machine)) {
      if (!before.contains(v.boot())) {
        views.add(v);
      }
    }
    return new Boots(List.copyOf(views));
  }

  /** The boot ids {@code consoles} holds of the machine now: what a test taking it excludes. */
  static List<String> baseline(Consoles consoles, String namespace, String machine) {
    return consoles.of(namespace, machine).stream().map(ConsoleLogs.View::boot).toList();
  }

  /** Why {@code pattern} cannot be used; empty when it can. */
  static Optional<String> problem(String pattern) {
    try {
      Pattern.compile(pattern);
      return Optional.empty();
    } catch (PatternSyntaxException e) {
      return Optional.of(e.getDescription() + " near index " + e.getIndex());
    }
  }

  /** A boot's console text as a check reads it: its last characters, without escapes. */
  static String text(ConsoleLogs.View view) {
    String raw = view.text();
    if (raw.length() > MAX_TEXT) {
      raw = raw.substring(raw.length() - MAX_TEXT);
    }
    return ESCAPES.matcher(raw).replaceAll("");
  }

  /**
   * Where {@code pattern} first matches {@code text}, within {@link #MATCH_BUDGET}.
   *
   * @return the match's start and end; empty for none
   * @throws TooSlowException when the match took longer than the budget
   */
  static Optional<int[]> find(Pattern pattern, String text) {
    long deadline = System.nanoTime() + MATCH_BUDGET.toNanos();
    Matcher m = pattern.matcher(new Deadlined(text, deadline));
    if (m.find()) {
      return Optional.of(new int[] {m.start(), m.end()});
    }
    return Optional.empty();
  }

  /** The lines around {@code [start, end)} of {@code text}, at most {@link #MAX_EXCERPT}. */
  static String excerpt(String text, int start, int end) {
    int from = start;
    for (int lines = 0; from > 0 && lines < 6; ) {
      from--;
      if (text.charAt(from) == '\n') {
        lines++;
      }
    }
    if (from > 0) {
      from++;
    }
    int to = end;
    for (int lines = 0; to < text.length() && lines < 5; to++) {
      if (text.charAt(to) == '\n') {
        lines++;
      }
    }
    from = Math.max(from, start - MAX_EXCERPT / 2);
    to = Math.min(to, Math.max(end, from + MAX_EXCERPT));
    to = Math.min(to, from + MAX_EXCERPT);
    return text.substring(from, to);
  }

  /** The last lines of {@code text}, at most {@link #MAX_EXCERPT} characters. */
  static String tail(String text) {
    if (text.length() <= MAX_EXCERPT) {
      return text;
    }
    String t = text.substring(text.length() - MAX_EXCERPT);
    int nl = t.indexOf('\n');
    return nl >= 0 && nl < 200 ? t.substring(nl + 1) : t;
  }

  /**
   * Text whose every read checks the clock now and then: a regular expression that backtracks
   * without end reads without end, and so meets the deadline.
   */
  private static final class Deadlined implements CharSequence {
    private final String text;
    private final long deadline;
    private int reads;

    Deadlined(String text, long deadline) {
      this.text = text;
      this.deadline = deadline;
    }

    @Override
    public char charAt(int index) {
      if ((++reads & 0xFFF) == 0 && System.nanoTime() > deadline) {
        throw new TooSlowException();
      }
      return text.charAt(index);
    }

    @Override
    public int length() {
      return text.length();
    }

    @Override
    public CharSequence subSequence(int start, int end) {
      return text.substring(start, end);
    }

    @Override
    public String toString() {
      return text;
    }
  }
}
