package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;

/**
 * The flight recorder's account of one boot, switch or return: every step with when it began and
 * how long it took. The agent sends its newest timelines in every {@link StatusReport}; the
 * operator adds the steps it saw itself (the iPXE script and the bootstrap's kernel and initramfs
 * it served) and shows them as MachineBoot {@code status.lastBoot} and {@code status.lastSwitch}.
 *
 * <p>The steps follow one another without a gap: a step lasts until the next one begins, so their
 * seconds add up to the timeline's {@code seconds}. Each step ends when what it names has happened:
 * {@code download} ends when the last byte is in, {@code healthy} when the image reported healthy.
 *
 * @param image the BootImage booted; absent for a return that leaves the machine in the bootstrap
 *     and for an image typed at the console
 * @param digest the image's SHA-256, hex
 * @param trigger the return trigger that ended the previous target ({@link ReturnTrigger}'s name);
 *     absent for a first boot
 * @param started when the first step began (RFC 3339)
 * @param seconds from the first step's beginning to the last one's end
 * @param result {@link #SUCCEEDED} or {@link #FAILED}; absent while in progress
 * @param message why it failed, or what else to know
 * @param steps in the order they happened
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Timeline(
    @JsonPropertyDescription(
            "The BootImage booted; absent for a return to the bootstrap and for an image typed at"
                + " the console.")
        String image,
    @JsonPropertyDescription("The image's SHA-256 (hex).") String digest,
    @JsonPropertyDescription(
            "The return trigger that ended the previous target (SpecChange, Hotkey, Serial,"
                + " Helper, Console, BootTimeout, TargetExit, VerityMismatch); absent for a first boot.")
        String trigger,
    @JsonPropertyDescription("When the first step began (RFC 3339).") String started,
    @JsonPropertyDescription(
            "Seconds from the first step's beginning to the last step's end: the sum of the"
                + " steps' seconds.")
        Double seconds,
    @JsonPropertyDescription("Succeeded or Failed; absent while the boot or switch is in progress.")
        String result,
    @JsonPropertyDescription("Why it failed, or what else to know.") String message,
    @JsonPropertyDescription(
            "The steps in the order they happened, each lasting until the next began. A boot:"
                + " script-served, kernel-served, initramfs-served (the operator's), agent-up,"
                + " enrolled, desired-state, download, verify, mount, pivot-root, init-exec,"
                + " healthy. A switch from a running image adds the return of that image where"
                + " it happened (after desired-state for a new generation): return-trigger,"
                + " grace, forced (only when the image had to be killed), teardown,"
                + " bootstrap-ready. A return to the bootstrap has those five alone. Each step"
                + " lasts: script-served, kernel-served, initramfs-served from the request to the"
                + " next (detail: size and rate); agent-up from the agent's start to its"
                + " enrolment; enrolled until the first desired state; desired-state until what"
                + " it starts; return-trigger until the graceful signal; grace until the image"
                + " ended or its grace period did; forced from SIGKILL to its last process gone;"
                + " teardown while its mounts and cgroup are released; bootstrap-ready while the"
                + " bootstrap's network and state are put back; download from the first request"
                + " to the last byte (detail: size and rate); verify the SHA-256 check (of a"
                + " cached image: hashing it again); mount; pivot-root the enter step up to"
                + " pivot_root; init-exec until the image's init is exec'd; healthy from then"
                + " to the image's health report.")
        List<Step> steps) {

  public static final String SUCCEEDED = "Succeeded";
  public static final String FAILED = "Failed";

  // The steps' names, in the order they happen.
  public static final String SCRIPT_SERVED = "script-served";
  public static final String KERNEL_SERVED = "kernel-served";
  public static final String INITRAMFS_SERVED = "initramfs-served";
  public static final String AGENT_UP = "agent-up";
  public static final String ENROLLED = "enrolled";
  public static final String DESIRED_STATE = "desired-state";
  public static final String DOWNLOAD = "download";
  public static final String VERIFY = "verify";
  public static final String MOUNT = "mount";
  public static final String RETURN_TRIGGER = "return-trigger";
  public static final String GRACE = "grace";
  public static final String FORCED = "forced";
  public static final String TEARDOWN = "teardown";
  public static final String BOOTSTRAP_READY = "bootstrap-ready";
  public static final String PIVOT_ROOT = "pivot-root";
  public static final String INIT_EXEC = "init-exec";
  public static final String HEALTHY = "healthy";

  /** Every step name, in the order the steps happen in a switch to a new generation. */
  public static final List<String> STEP_NAMES =
      List.of(
          SCRIPT_SERVED,
          KERNEL_SERVED,
          INITRAMFS_SERVED,
          AGENT_UP,
          ENROLLED,
          DESIRED_STATE,
          RETURN_TRIGGER,
          GRACE,
          FORCED,
          TEARDOWN,
          BOOTSTRAP_READY,
          DOWNLOAD,
          VERIFY,
          MOUNT,
          PIVOT_ROOT,
          INIT_EXEC,
          HEALTHY);

  public Timeline {
    steps = steps == null ? List.of() : List.copyOf(steps);
  }

  /**
   * One step.
   *
   * @param name one of {@link #STEP_NAMES}
   * @param at when it began (RFC 3339)
   * @param seconds how long it took: until the next step began
   * @param detail what else to know, e.g. {@code 1.00 GiB at 940 MB/s}
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Step(
      @JsonPropertyDescription(
              "script-served, kernel-served, initramfs-served, agent-up, enrolled,"
                  + " desired-state, return-trigger, grace, forced, teardown, bootstrap-ready,"
                  + " download, verify, mount, pivot-root, init-exec or healthy.")
          String name,
      @JsonPropertyDescription("When the step began (RFC 3339).") String at,
      @JsonPropertyDescription(
              "How long it took: until the next step began; absent for the step in progress.")
          Double seconds,
      @JsonPropertyDescription("What else to know, e.g. 1.00 GiB at 940 MB/s.") String detail) {}

  /** Seconds from {@code from} to {@code to}, to the millisecond; never negative. */
  public static double seconds(Instant from, Instant to) {
    long millis = Duration.between(from, to).toMillis();
    return Math.max(0, millis) / 1000.0;
  }

  /**
   * {@code bytes} moved in {@code took}, as a step's detail: {@code 1.00 GiB at 940 MB/s} (sizes in
   * binary units, rates in decimal ones, as {@code curl} and {@code dd} print them).
   */
  public static String sizeAtRate(long bytes, Duration took) {
    double secs = Math.max(took.toNanos(), 1) / 1e9;
    return size(bytes) + " at " + rate(bytes / secs);
  }

  private static String size(long bytes) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = bytes;
    int u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u == 0
        ? bytes + " B"
        : String.format(
            Locale.ROOT, v >= 100 ? "%.0f %s" : v >= 10 ? "%.1f %s" : "%.2f %s", v, units[u]);
  }

  private static String rate(double perSecond) {
    String[] units = {"B/s", "kB/s", "MB/s", "GB/s"};
    double v = perSecond;
    int u = 0;
    while (v >= 1000 && u < units.length - 1) {
      v /= 1000;
      u++;
    }
    return String.format(
        Locale.ROOT, v >= 100 ? "%.0f %s" : v >= 10 ? "%.1f %s" : "%.2f %s", v, units[u]);
  }

  /** Whether this is a machine's boot (the agent's start is one of its steps), not a switch. */
  public boolean boot() {
    return steps.stream().anyMatch(s -> AGENT_UP.equals(s.name()));
  }

  /** Whether it ended (with a result). */
  public boolean done() {
    return result != null;
  }
}
