package io.chrootbooter.operator.statuspage;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.BootImageStatus;
import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.BootTestStatus;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootSpec;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.api.v1alpha1.MachineTestResult;
import io.chrootbooter.api.v1alpha1.PromotionStatus;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.liveness.LivenessRules;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.operator.status.Reason;
import io.chrootbooter.operator.status.RecordedEvent;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.Progress;
import io.chrootbooter.protocol.Timeline;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.HasMetadata;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * What the status page shows, computed from cached objects: pure functions, no I/O, no clock.
 * Values stay raw text here; the template escapes every one of them. Text that users or agents
 * write (messages, errors) is cut to {@link #MAX_TEXT} characters and has anything that looks like
 * a credential replaced, so a token pasted into an error never reaches a browser.
 */
public final class StatusView {
  private StatusView() {}

  /** Free text longer than this is cut, with an ellipsis. */
  static final int MAX_TEXT = 300;

  /** How many recent events a row shows. */
  static final int EVENTS_SHOWN = 3;

  private static final Pattern CREDENTIAL =
      Pattern.compile(
          "(?i)(cb\\.(?:token|nonce)=|(?:session|nonce)\\s*[=:]\\s*|(?:authorization:\\s*)?(?:bearer|basic)\\s+|authorization:\\s*"
              + "|(?:token|password|secret)\\s*[=:]\\s*)[^\\s\"'<>;,]+");
  private static final Pattern URL_USER_INFO =
      Pattern.compile("(?i)\\b([a-z][a-z0-9+.-]*://)[^/\\s@]+@");
  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("HH:mm:ss", Locale.ROOT).withZone(ZoneOffset.UTC);
  private static final DateTimeFormatter DATE_TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm", Locale.ROOT).withZone(ZoneOffset.UTC);

  /** The whole page. */
  public record Page(
      Summary summary, List<MachineRow> machines, List<ImageRow> images, List<TestRow> tests) {
    public Page {
      machines = List.copyOf(machines);
      images = List.copyOf(images);
      tests = List.copyOf(tests);
    }

    /** A page without BootTests. */
    public Page(Summary summary, List<MachineRow> machines, List<ImageRow> images) {
      this(summary, machines, images, List.of());
    }
  }

  /** The counts above the tables. */
  public record Summary(
      int machines, List<Count> machinePhases, int images, List<Count> imagePhases) {
    public Summary {
      machinePhases = List.copyOf(machinePhases);
      imagePhases = List.copyOf(imagePhases);
    }
  }

  /** How many objects are in one phase. */
  public record Count(Badge phase, int count) {}

  /** A phase as a coloured label; {@code css} is derived from an enum constant. */
  public record Badge(String text, String css) {
    static Badge of(Enum<?> phase) {
      return new Badge(phase.name(), "phase-" + phase.name().toLowerCase(Locale.ROOT));
    }
  }

  /**
   * A download: {@code max} is null when the total is unknown (an indeterminate bar), else {@code 0
   * <= value <= max}.
   */
  public record Download(long value, Long max, String text) {}

  /** The most recent return to the bootstrap. */
  public record Return(String trigger, String when, String whenExact, String took, String reason) {}

  /** One recorded event; {@code css} is {@code normal} or {@code warning}. */
  public record EventLine(
      String when, String whenExact, String css, String reason, String message) {}

  /** One MachineBoot. {@code message} is the Stalled or Reconciling condition's. */
  public record MachineRow(
      String id,
      String name,
      String namespace,
      String mac,
      Badge phase,
      String message,
      boolean stalled,
      String declared,
      String running,
      String ip,
      Download download,
      Return lastReturn,
      List<EventLine> events,
      boolean lost,
      String seen,
      String seenExact,
      String heldBy,
      String console,
      List<TimelineView> timelines) {
    public MachineRow {
      events = List.copyOf(events);
      timelines = List.copyOf(timelines);
    }
  }

  /**
   * A boot's or switch's timeline ({@code status.lastBoot}, {@code status.lastSwitch}): {@code
   * kind} "last boot" or "last switch", the image, how long it took ({@code millis} for the bars),
   * when it began, its result ({@code css} {@code ok}, {@code failed} or {@code running}) and its
   * steps.
   */
  public record TimelineView(
      String kind,
      String image,
      String took,
      long millis,
      String when,
      String whenExact,
      String result,
      String css,
      String message,
      List<StepLine> steps) {
    public TimelineView {
      steps = List.copyOf(steps);
    }
  }

  /** One step of a timeline: its name, how long it took (null while in progress), its detail. */
  public record StepLine(String name, String took, long millis, String detail) {}

  /** The most steps a timeline shows (the operator accepts no more). */
  static final int MAX_STEPS = 32;

  /**
   * One BootTest: its phase, the machines it holds now, its counts and, with {@code spec.promote},
   * the promotion's progress. {@code message} is its Running, Failed or Complete condition's.
   */
  public record TestRow(
      String id,
      String name,
      String namespace,
      String image,
      Badge phase,
      String message,
      String counts,
      String promotion,
      Badge promotionPhase,
      List<String> holds,
      List<EventLine> events) {
    public TestRow {
      holds = List.copyOf(holds);
      events = List.copyOf(events);
    }
  }

  /** One BootImage. */
  public record ImageRow(
      String id,
      String name,
      String namespace,
      Badge phase,
      String message,
      boolean stalled,
      String format,
      String size,
      String sizeExact,
      String digest,
      String digestShort,
      Download download,
      List<EventLine> events) {
    public ImageRow {
      events = List.copyOf(events);
    }
  }

  /**
   * The page for these objects; {@code events} gives an object's recent events, newest first. Rows
   * are ordered by namespace, then name (their ids sort the same way).
   */
  public static Page page(
      List<MachineBoot> machines,
      List<BootImage> images,
      Function<HasMetadata, List<RecordedEvent>> events,
      Instant now) {
    return page(machines, images, events, m -> null, now);
  }

  /**
   * The page, each machine's row with the last lines of its console ({@code console} gives them
   * raw, null for none: they are redacted here).
   */
  public static Page page(
      List<MachineBoot> machines,
      List<BootImage> images,
      Function<HasMetadata, List<RecordedEvent>> events,
      Function<MachineBoot, String> console,
      Instant now) {
    List<MachineRow> machineRows =
        machines.stream()
            .map(m -> machine(m, events.apply(m), console.apply(m), now))
            .sorted(Comparator.comparing(MachineRow::id))
            .toList();
    List<ImageRow> imageRows =
        images.stream()
            .map(i -> image(i, events.apply(i), now))
            .sorted(Comparator.comparing(ImageRow::id))
            .toList();
    return new Page(summary(machines, images), machineRows, imageRows);
  }

  /** The page for these objects, BootTests included. */
  public static Page page(
      List<MachineBoot> machines,
      List<BootImage> images,
      List<BootTest> tests,
      Function<HasMetadata, List<RecordedEvent>> events,
      Instant now) {
    return page(machines, images, tests, events, m -> null, now);
  }

  /**
   * The page for these objects, BootTests and the last lines of each machine's console included.
   */
  public static Page page(
      List<MachineBoot> machines,
      List<BootImage> images,
      List<BootTest> tests,
      Function<HasMetadata, List<RecordedEvent>> events,
      Function<MachineBoot, String> console,
      Instant now) {
    Page page = page(machines, images, events, console, now);
    List<TestRow> testRows =
        tests.stream()
            .map(t -> test(t, events.apply(t), now))
            .sorted(Comparator.comparing(TestRow::id))
            .toList();
    return new Page(page.summary(), page.machines(), page.images(), testRows);
  }

  /** The row of one BootTest. */
  public static TestRow test(BootTest bt, List<RecordedEvent> events, Instant now) {
    BootTestStatus status = bt.getStatus();
    BootTestStatus.TestPhase phase =
        status == null || status.phase() == null
            ? BootTestStatus.TestPhase.Pending
            : status.phase();
    List<Condition> conditions = status == null ? List.of() : status.conditions();
    String message =
        Conditions.find(conditions, "Running")
            .filter(c -> "True".equals(c.getStatus()))
            .or(
                () ->
                    Conditions.find(conditions, "Failed").filter(c -> "True".equals(c.getStatus())))
            .or(() -> Conditions.find(conditions, "Complete"))
            .map(Condition::getMessage)
            .orElse(null);
    List<MachineTestResult> all = new java.util.ArrayList<>();
    PromotionStatus promotion = status == null ? null : status.promotion();
    if (status != null) {
      all.addAll(status.machines());
    }
    if (promotion != null) {
      all.addAll(promotion.machines());
    }
    List<String> holds =
        all.stream()
            .filter(
                m ->
                    m.phase() == MachineTestResult.MachineTestPhase.Switching
                        || m.phase() == MachineTestResult.MachineTestPhase.Checking)
            .map(m -> text(m.name()))
            .toList();
    int tested = status == null ? 0 : status.machines().size();
    String counts =
        status == null
            ? null
            : (status.passed() == null ? 0 : status.passed())
                + " passed, "
                + (status.failed() == null ? 0 : status.failed())
                + " failed of "
                + (tested + (promotion == null ? 0 : promotion.machines().size()))
                + " machines";
    return new TestRow(
        rowId("t", bt),
        bt.getMetadata().getName(),
        bt.getMetadata().getNamespace(),
        bt.getSpec() == null ? null : text(bt.getSpec().imageRef()),
        Badge.of(phase),
        text(message),
        counts,
        promotion == null ? null : text(promotion.progress()),
        promotion == null || promotion.phase() == null ? null : Badge.of(promotion.phase()),
        holds,
        eventLines(events, now));
  }

  /** Counts by phase, in the order of the phase enums, leaving out empty phases. */
  public static Summary summary(List<MachineBoot> machines, List<BootImage> images) {
    Map<MachinePhase, Integer> byMachinePhase = new EnumMap<>(MachinePhase.class);
    machines.forEach(m -> byMachinePhase.merge(phaseOf(m), 1, Integer::sum));
    Map<BootImagePhase, Integer> byImagePhase = new EnumMap<>(BootImagePhase.class);
    images.forEach(i -> byImagePhase.merge(phaseOf(i), 1, Integer::sum));
    return new Summary(
        machines.size(),
        byMachinePhase.entrySet().stream()
            .map(e -> new Count(Badge.of(e.getKey()), e.getValue()))
            .toList(),
        images.size(),
        byImagePhase.entrySet().stream()
            .map(e -> new Count(Badge.of(e.getKey()), e.getValue()))
            .toList());
  }

  /** The row of one MachineBoot. */
  public static MachineRow machine(MachineBoot mb, List<RecordedEvent> events, Instant now) {
    return machine(mb, events, null, now);
  }

  /**
   * The row of one MachineBoot with the last lines of its console ({@code console}, raw; null for
   * none): credentials redacted, control characters other than line ends dropped, each line cut to
   * {@link #MAX_CONSOLE_LINE} characters.
   */
  public static MachineRow machine(
      MachineBoot mb, List<RecordedEvent> events, String console, Instant now) {
    MachineBootSpec spec = mb.getSpec();
    MachineBootStatus status = mb.getStatus();
    MachinePhase phase = phaseOf(mb);
    Condition condition = attention(status == null ? List.of() : status.conditions());
    String declared =
        spec == null
            ? null
            : spec.imageRef() != null
                ? spec.imageRef()
                : spec.state() != null ? spec.state().name() : null;
    return new MachineRow(
        rowId("m", mb),
        mb.getMetadata().getName(),
        mb.getMetadata().getNamespace(),
        spec == null ? null : text(spec.macAddress()),
        Badge.of(phase),
        condition == null ? null : text(condition.getMessage()),
        condition != null && condition.getType().equals("Stalled"),
        text(declared),
        status == null ? null : text(status.currentImage()),
        status == null || status.agent() == null ? null : text(status.agent().ip()),
        phase == MachinePhase.Downloading && status != null ? download(status.progress()) : null,
        status == null ? null : lastReturn(status.lastReturn(), now),
        eventLines(events, now),
        status != null
            && Conditions.find(status.conditions(), "Ready")
                .map(c -> Reason.AgentLost.name().equals(c.getReason()))
                .orElse(false),
        status == null
            ? null
            : LivenessRules.parse(status.lastSeen()).map(at -> when(at, now)).orElse(null),
        status == null
            ? null
            : LivenessRules.parse(status.lastSeen()).map(Instant::toString).orElse(null),
        // The hold itself, not status.heldBy: it shows before the machine's status is written.
        TestHold.of(mb).map(hold -> text(hold.test())).orElse(null),
        consoleLines(console),
        timelines(status, now));
  }

  /** The machine's last boot and last switch, each when it has steps; the boot first. */
  static List<TimelineView> timelines(MachineBootStatus status, Instant now) {
    if (status == null) {
      return List.of();
    }
    List<TimelineView> views = new java.util.ArrayList<>(2);
    TimelineView boot = timeline("last boot", status.lastBoot(), now);
    if (boot != null) {
      views.add(boot);
    }
    // A machine's first boot is its last switch too: shown once.
    if (status.lastSwitch() != null && !status.lastSwitch().equals(status.lastBoot())) {
      TimelineView change = timeline("last switch", status.lastSwitch(), now);
      if (change != null) {
        views.add(change);
      }
    }
    return views;
  }

  /** One timeline as the page shows it; null when it has no step. */
  static TimelineView timeline(String kind, Timeline t, Instant now) {
    if (t == null || t.steps().isEmpty()) {
      return null;
    }
    List<StepLine> steps =
        t.steps().stream()
            .limit(MAX_STEPS)
            .map(
                step -> {
                  long millis = millis(step.seconds());
                  return new StepLine(
                      text(step.name()),
                      step.seconds() == null ? null : duration(millis),
                      millis,
                      text(step.detail()));
                })
            .toList();
    long total =
        t.seconds() != null
            ? millis(t.seconds())
            : steps.stream().mapToLong(StepLine::millis).sum();
    String when = null;
    String whenExact = null;
    if (t.started() != null) {
      try {
        Instant at = OffsetDateTime.parse(t.started()).toInstant();
        when = when(at, now);
        whenExact = at.toString();
      } catch (DateTimeParseException e) {
        when = text(t.started());
      }
    }
    String result = t.result() == null ? "in progress" : text(t.result());
    String css =
        t.result() == null ? "running" : Timeline.SUCCEEDED.equals(t.result()) ? "ok" : "failed";
    return new TimelineView(
        kind,
        text(t.image()),
        duration(total),
        total,
        when,
        whenExact,
        result,
        css,
        text(t.message()),
        steps);
  }

  /** Seconds as whole milliseconds; 0 for none, negative or not a number. */
  private static long millis(Double seconds) {
    if (seconds == null || seconds.isNaN() || seconds <= 0) {
      return 0;
    }
    return seconds >= Long.MAX_VALUE / 1000.0 ? Long.MAX_VALUE / 1000 : Math.round(seconds * 1000);
  }

  /** A line of a console's tail longer than this is cut, with an ellipsis. */
  static final int MAX_CONSOLE_LINE = 160;

  /** The tail of a console as the page shows it; null when there is none. */
  static String consoleLines(String console) {
    if (console == null || console.isBlank()) {
      return null;
    }
    StringBuilder out = new StringBuilder();
    for (String line : console.split("\n", -1)) {
      // Terminal escapes (colours, cursor moves) and other control characters are not text.
      String clean = line.replaceAll("\u001b\\[[0-?]*[ -/]*[@-~]", "").replaceAll("\\p{Cntrl}", "");
      clean = redact(clean);
      if (clean.length() > MAX_CONSOLE_LINE) {
        clean = clean.substring(0, MAX_CONSOLE_LINE) + "…";
      }
      out.append(out.length() > 0 ? "\n" : "").append(clean);
    }
    return out.toString();
  }

  /** The row of one BootImage. */
  public static ImageRow image(BootImage image, List<RecordedEvent> events, Instant now) {
    BootImageStatus status = image.getStatus();
    BootImagePhase phase = phaseOf(image);
    Condition condition = attention(status == null ? List.of() : status.conditions());
    String digest =
        status != null && status.sha256() != null
            ? status.sha256()
            : image.getSpec() == null ? null : image.getSpec().sha256();
    digest = text(digest);
    Long size = status == null ? null : status.size();
    String format =
        status != null && status.format() != null
            ? status.format().value()
            : image.getSpec() != null && image.getSpec().format() != null
                ? image.getSpec().format().value()
                : null;
    return new ImageRow(
        rowId("i", image),
        image.getMetadata().getName(),
        image.getMetadata().getNamespace(),
        Badge.of(phase),
        condition == null ? null : text(condition.getMessage()),
        condition != null && condition.getType().equals("Stalled"),
        format,
        size == null ? null : bytes(size),
        size == null ? null : size + " bytes",
        digest,
        digest == null ? null : digest.length() > 12 ? digest.substring(0, 12) + "…" : digest,
        phase == BootImagePhase.Downloading && status != null ? download(status.progress()) : null,
        eventLines(events, now));
  }

  /**
   * The element id of an object's row: a prefix, then the hex of its namespace and of its name. Any
   * name makes a valid, unique id, and ids sort like (namespace, name) since {@code -} sorts before
   * every hex digit.
   */
  public static String rowId(String prefix, String namespace, String name) {
    HexFormat hex = HexFormat.of();
    return prefix
        + "-"
        + hex.formatHex(String.valueOf(namespace).getBytes(StandardCharsets.UTF_8))
        + "-"
        + hex.formatHex(String.valueOf(name).getBytes(StandardCharsets.UTF_8));
  }

  static String rowId(String prefix, HasMetadata resource) {
    return rowId(prefix, resource.getMetadata().getNamespace(), resource.getMetadata().getName());
  }

  /** A download bar; null without progress. Hostile numbers are clamped, never trusted. */
  static Download download(Progress p) {
    if (p == null) {
      return null;
    }
    long received = Math.max(0, p.bytes() == null ? 0 : p.bytes());
    String rate =
        p.bytesPerSecond() == null || p.bytesPerSecond() <= 0
            ? ""
            : " · " + bytes(p.bytesPerSecond()) + "/s";
    if (p.total() == null || p.total() <= 0) {
      return new Download(received, null, bytes(received) + rate);
    }
    long total = p.total();
    long value = Math.min(received, total);
    long percent = Math.round(100.0 * value / total);
    return new Download(
        value, total, percent + "% · " + bytes(value) + " of " + bytes(total) + rate);
  }

  static Return lastReturn(LastReturn r, Instant now) {
    if (r == null) {
      return null;
    }
    String when = null;
    String whenExact = null;
    if (r.time() != null) {
      try {
        Instant at = OffsetDateTime.parse(r.time()).toInstant();
        when = when(at, now);
        whenExact = at.toString();
      } catch (DateTimeParseException e) {
        // Written by an agent or a user: shown as it is rather than hidden.
        when = text(r.time());
      }
    }
    return new Return(
        text(r.trigger()),
        when,
        whenExact,
        r.durationMillis() == null
            ? null
            : duration(r.durationMillis()) + (Boolean.TRUE.equals(r.forced()) ? ", forced" : ""),
        text(r.reason()));
  }

  static List<EventLine> eventLines(List<RecordedEvent> events, Instant now) {
    return events.stream()
        .limit(EVENTS_SHOWN)
        .map(
            e ->
                new EventLine(
                    when(e.time(), now),
                    e.time().toString(),
                    "Warning".equals(e.type()) ? "warning" : "normal",
                    text(e.reason()),
                    text(e.message())))
        .toList();
  }

  /** The time of day (UTC) for today, else date and time. */
  static String when(Instant at, Instant now) {
    boolean today =
        at.atOffset(ZoneOffset.UTC)
            .toLocalDate()
            .equals(now.atOffset(ZoneOffset.UTC).toLocalDate());
    return (today ? TIME : DATE_TIME).format(at) + " UTC";
  }

  /** Bytes in IEC units: 512 B, 1.5 KiB, 400.0 MiB. */
  static String bytes(long n) {
    if (n < 1024) {
      return n + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = n;
    int unit = -1;
    while (v >= 1024 && unit < units.length - 1) {
      v /= 1024;
      unit++;
    }
    return String.format(Locale.ROOT, "%.1f %s", v, units[unit]);
  }

  /** A duration: 850 ms, 4.2 s, 3 min 04 s, 1 h 02 min. */
  static String duration(long millis) {
    if (millis < 0) {
      return null;
    }
    if (millis < 1000) {
      return millis + " ms";
    }
    if (millis < 60_000) {
      return String.format(Locale.ROOT, "%.1f s", millis / 1000.0);
    }
    long seconds = millis / 1000;
    if (seconds < 3600) {
      return String.format(Locale.ROOT, "%d min %02d s", seconds / 60, seconds % 60);
    }
    return String.format(Locale.ROOT, "%d h %02d min", seconds / 3600, seconds % 3600 / 60);
  }

  /** Free text as shown: credentials replaced, cut to {@link #MAX_TEXT} characters. */
  static String text(String s) {
    if (s == null || s.isEmpty()) {
      return null;
    }
    String redacted = redact(s);
    return redacted.length() <= MAX_TEXT ? redacted : redacted.substring(0, MAX_TEXT) + "…";
  }

  /** {@code s} with its credentials replaced, as everywhere on the admin port. */
  static String redact(String s) {
    String redacted = CREDENTIAL.matcher(s).replaceAll("$1[redacted]");
    return URL_USER_INFO.matcher(redacted).replaceAll("$1[redacted]@");
  }

  /** The condition that explains what is going on: Stalled, else Reconciling, if true. */
  private static Condition attention(List<Condition> conditions) {
    for (String type : List.of("Stalled", "Reconciling")) {
      var c = Conditions.find(conditions, type);
      if (c.isPresent() && "True".equals(c.get().getStatus())) {
        return c.get();
      }
    }
    return null;
  }

  private static MachinePhase phaseOf(MachineBoot mb) {
    return mb.getStatus() == null || mb.getStatus().phase() == null
        ? MachinePhase.Pending
        : mb.getStatus().phase();
  }

  private static BootImagePhase phaseOf(BootImage image) {
    return image.getStatus() == null || image.getStatus().phase() == null
        ? BootImagePhase.Pending
        : image.getStatus().phase();
  }
}
