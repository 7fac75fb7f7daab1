package io.chrootbooter.operator.machine;

import io.chrootbooter.protocol.Timeline;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The operator's part of a machine's boot timeline: when it served the machine's iPXE script, and
 * when and how fast it served the bootstrap's kernel and initramfs that script names. The script is
 * the machine's by its MAC; a kernel or initramfs request is attributed to a machine when it names
 * the MAC ({@code ?mac=}, as the script's URLs do) and comes from the address the machine's script
 * went to within {@link #MATCH_WITHIN}: a request from anywhere else is served as always and
 * recorded for no machine, so nobody can write steps into another machine's timeline.
 *
 * <p>Kept in memory, per replica: with several replicas, the boot of a machine whose script another
 * replica served shows the agent's steps only. At most {@link #MAX_MACHINES} machines and {@link
 * #PER_MACHINE} network boots of each are kept, the oldest dropped first.
 */
@ApplicationScoped
public class BootFetches {
  /** How long after its script a machine's kernel or initramfs request is attributed to it. */
  static final Duration MATCH_WITHIN = Duration.ofMinutes(10);

  /** How long before its agent started a network boot may have been for that boot. */
  static final Duration BOOT_WITHIN = Duration.ofMinutes(30);

  static final int MAX_MACHINES = 10_000;
  static final int PER_MACHINE = 4;

  /** One file served: from the request to the last byte written. */
  record Served(Instant start, Instant end, long bytes) {}

  /** One network boot of a machine: its script, then what it fetched from the same address. */
  static final class Fetch {
    final Instant script;
    final String address;
    Served kernel;
    Served initramfs;

    Fetch(Instant script, String address) {
      this.script = script;
      this.address = address;
    }
  }

  private final Map<String, Deque<Fetch>> fetches =
      new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Deque<Fetch>> eldest) {
          return size() > MAX_MACHINES;
        }
      };

  /**
   * The iPXE script of {@code mac} (lower-case colon form) went to {@code address} at {@code at}.
   */
  public synchronized void scriptServed(String mac, String address, Instant at) {
    Deque<Fetch> of = fetches.computeIfAbsent(mac, m -> new ArrayDeque<>());
    of.addFirst(new Fetch(at, address));
    while (of.size() > PER_MACHINE) {
      of.removeLast();
    }
  }

  /**
   * {@code file} ({@code vmlinuz} or {@code initramfs}) was served to {@code address}, naming
   * {@code mac}. Recorded only for a machine whose script went to that address within {@link
   * #MATCH_WITHIN} before.
   *
   * @return whether it was attributed to the machine
   */
  public synchronized boolean fileServed(
      String mac, String address, String file, Instant start, Instant end, long bytes) {
    Deque<Fetch> of = fetches.get(mac);
    if (of == null || of.isEmpty() || end.isBefore(start) || bytes < 0) {
      return false;
    }
    Fetch newest = of.peekFirst();
    if (!newest.address.equals(address)
        || start.isBefore(newest.script)
        || Duration.between(newest.script, start).compareTo(MATCH_WITHIN) > 0) {
      return false;
    }
    Served served = new Served(start, end, bytes);
    switch (file) {
      case "vmlinuz" -> newest.kernel = served;
      case "initramfs" -> newest.initramfs = served;
      default -> {
        return false;
      }
    }
    return true;
  }

  /**
   * The operator's steps of the network boot whose agent started at {@code agentUp}: the newest
   * script served before it (within {@link #BOOT_WITHIN}) and the kernel and initramfs that
   * followed, each lasting until the next began, the last until {@code agentUp}. Empty when this
   * replica served no such script.
   */
  public synchronized List<Timeline.Step> stepsBefore(String mac, Instant agentUp) {
    Deque<Fetch> of = fetches.get(mac);
    if (of == null) {
      return List.of();
    }
    Optional<Fetch> boot =
        of.stream()
            .filter(f -> !f.script.isAfter(agentUp))
            .filter(f -> Duration.between(f.script, agentUp).compareTo(BOOT_WITHIN) <= 0)
            .findFirst();
    if (boot.isEmpty()) {
      return List.of();
    }
    Fetch f = boot.get();
    record Mark(String name, Instant at, String detail) {}
    List<Mark> marks = new ArrayList<>();
    marks.add(new Mark(Timeline.SCRIPT_SERVED, f.script, null));
    if (f.kernel != null && !f.kernel.start().isBefore(f.script)) {
      marks.add(new Mark(Timeline.KERNEL_SERVED, f.kernel.start(), rate(f.kernel)));
    }
    if (f.initramfs != null && !f.initramfs.start().isBefore(marks.get(marks.size() - 1).at())) {
      marks.add(new Mark(Timeline.INITRAMFS_SERVED, f.initramfs.start(), rate(f.initramfs)));
    }
    List<Timeline.Step> steps = new ArrayList<>();
    for (int i = 0; i < marks.size(); i++) {
      Instant next = i + 1 < marks.size() ? marks.get(i + 1).at() : agentUp;
      Mark m = marks.get(i);
      steps.add(
          new Timeline.Step(
              m.name(), m.at().toString(), Timeline.seconds(m.at(), next), m.detail()));
    }
    return steps;
  }

  private static String rate(Served s) {
    return Timeline.sizeAtRate(s.bytes(), Duration.between(s.start(), s.end()));
  }
}
