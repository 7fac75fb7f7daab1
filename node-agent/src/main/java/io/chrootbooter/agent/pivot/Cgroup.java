package io.chrootbooter.agent.pivot;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * One target's cgroup v2 (cgroups(7), Documentation/admin-guide/cgroup-v2.rst). It holds every
 * process of the target, so {@code cgroup.kill} (Linux 5.14) ends all of them at once, whatever
 * they do with signals, forks or namespaces. Limits are written only where the parent delegates the
 * controller; on a host whose cgroup2 tree has none (a cgroup v1 hybrid host) a warning says the
 * target runs unlimited.
 *
 * <p>The directory holds the namespace's init and everything it starts, and is the root of the
 * target's cgroup namespace: systemd inside sees it as {@code /sys/fs/cgroup}, moves itself to
 * {@code init.scope} and builds its own tree below it. The controllers the parent has (cpu, io,
 * memory, pids where available) are enabled in the parent, so the target's systemd can enable them
 * for its own children; the directory's own {@code cgroup.subtree_control} is the target's to write
 * ("no internal processes": it stays empty while the init still sits in the directory). The child
 * {@value #SUPERVISOR} holds the enter step's {@code unshare}, which lives outside the target's PID
 * namespace: a child and not the root itself, so that systemd neither moves it into its {@code
 * init.scope} nor counts it as a process of the root.
 */
public final class Cgroup implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Cgroup.class);

  /** Interval of the {@code cgroup.events} poll while waiting for the cgroup to empty. */
  private static final Duration POLL = Duration.ofMillis(2);

  /** The child holding the enter step's {@code unshare}, outside the target's namespaces. */
  static final String SUPERVISOR = "cb-supervisor";

  /** Controllers systemd in a target uses, offered to it where the parent has them. */
  private static final List<String> DELEGATED = List.of("cpu", "io", "memory", "pids");

  private final Path dir;
  private final List<String> warnings;

  private Cgroup(Path dir, List<String> warnings) {
    this.dir = dir;
    this.warnings = List.copyOf(warnings);
  }

  /**
   * Creates {@code parent/name} with its {@value #SUPERVISOR} child, applies the limits the
   * hierarchy supports and offers the target the controllers systemd uses (cpu, io, memory, pids)
   * where the parent has them.
   *
   * @param parent a directory of a mounted cgroup2 hierarchy
   * @param pidsMax {@code pids.max}, empty for no limit
   * @param memoryMax {@code memory.max} in bytes, empty for no limit
   */
  public static Cgroup create(
      Path parent, String name, OptionalLong pidsMax, OptionalLong memoryMax) throws IOException {
    if (!Files.exists(parent.resolve("cgroup.procs"))
        || !Files.exists(parent.resolve("cgroup.subtree_control"))) {
      throw new IOException(parent + " is not a cgroup2 directory (no cgroup.subtree_control)");
    }
    Path dir = parent.resolve(name);
    Files.createDirectory(dir);
    boolean ok = false;
    try {
      List<String> warnings = new ArrayList<>();
      Set<String> available = controllers(parent);
      limit(parent, dir, available, "pids", "pids.max", pidsMax, warnings);
      limit(parent, dir, available, "memory", "memory.max", memoryMax, warnings);
      delegate(parent, dir, available);
      if (!Files.exists(dir.resolve("cgroup.kill"))) {
        warnings.add(
            dir
                + " has no cgroup.kill (kernel older than 5.14): a forced return kills each"
                + " process");
      }
      Files.createDirectory(dir.resolve(SUPERVISOR));
      for (String w : warnings) {
        LOG.warn(w);
      }
      ok = true;
      return new Cgroup(dir, warnings);
    } finally {
      if (!ok) {
        removeTree(dir);
      }
    }
  }

  private static Set<String> controllers(Path cgroup) throws IOException {
    Set<String> result = new TreeSet<>();
    for (String c : Files.readString(cgroup.resolve("cgroup.controllers")).split("\\s+")) {
      if (!c.isEmpty()) {
        result.add(c);
      }
    }
    return result;
  }

  /**
   * Best effort, as a machine's systemd has them: enables cpu, io, memory and pids in the parent,
   * so that they appear in the target's {@code cgroup.controllers}. A parent that holds processes
   * itself (not the root) refuses with EBUSY; the target then runs without that controller inside,
   * which systemd tolerates.
   */
  private static void delegate(Path parent, Path dir, Set<String> available) {
    for (String controller : DELEGATED) {
      if (!available.contains(controller)) {
        continue;
      }
      try {
        Files.writeString(parent.resolve("cgroup.subtree_control"), "+" + controller);
      } catch (IOException e) {
        LOG.debugf("cgroup %s: not delegating %s: %s", dir, controller, e.getMessage());
      }
    }
  }

  private static void limit(
      Path parent,
      Path dir,
      Set<String> available,
      String controller,
      String file,
      OptionalLong value,
      List<String> warnings)
      throws IOException {
    if (value.isEmpty()) {
      return;
    }
    if (!available.contains(controller)) {
      warnings.add(
          "cgroup2 "
              + parent
              + " offers no "
              + controller
              + " controller (cgroup.controllers: \""
              + String.join(" ", available).strip()
              + "\"): the target runs without "
              + file
              + "="
              + value.getAsLong()
              + " (the controller must be enabled in "
              + parent.getParent()
              + "/cgroup.subtree_control)");
      return;
    }
    Files.writeString(parent.resolve("cgroup.subtree_control"), "+" + controller);
    Files.writeString(dir.resolve(file), Long.toString(value.getAsLong()));
  }

  private static final Pattern MEMORY =
      Pattern.compile("(\\d{1,19})([KMGT]?)", Pattern.CASE_INSENSITIVE);

  /**
   * A {@code memory.max} as an administrator writes it: bytes, or a number with a binary suffix
   * {@code K}, {@code M}, {@code G} or {@code T} ({@code 256M} = 268435456), or {@code max} for no
   * limit (empty). At least 1 MiB: less does not hold a shell.
   *
   * @param option the option or kernel argument the value came from, for the error
   * @throws IllegalArgumentException naming the option, the value and the accepted form
   */
  public static OptionalLong parseMemoryMax(String option, String value) {
    String v = value.strip();
    if (v.equalsIgnoreCase("max")) {
      return OptionalLong.empty();
    }
    Matcher m = MEMORY.matcher(v);
    String rule = "bytes, or a number with K, M, G or T (binary), or max; at least 1M";
    if (!m.matches()) {
      throw new IllegalArgumentException(option + ": \"" + value + "\" is not " + rule);
    }
    int shift =
        switch (m.group(2).toUpperCase(Locale.ROOT)) {
          case "K" -> 10;
          case "M" -> 20;
          case "G" -> 30;
          case "T" -> 40;
          default -> 0;
        };
    long bytes;
    try {
      long n = Long.parseLong(m.group(1));
      bytes = Math.multiplyExact(n, 1L << shift);
    } catch (NumberFormatException | ArithmeticException e) {
      throw new IllegalArgumentException(
          option + ": \"" + value + "\" is too large (" + rule + ")", e);
    }
    if (bytes < (1L << 20)) {
      throw new IllegalArgumentException(option + ": \"" + value + "\" is below 1M (" + rule + ")");
    }
    return OptionalLong.of(bytes);
  }

  /**
   * A {@code pids.max}: a positive number of processes (threads count), or {@code max} for no limit
   * (empty).
   *
   * @param option the option or kernel argument the value came from, for the error
   * @throws IllegalArgumentException naming the option, the value and the accepted form
   */
  public static OptionalLong parsePidsMax(String option, String value) {
    String v = value.strip();
    if (v.equalsIgnoreCase("max")) {
      return OptionalLong.empty();
    }
    String rule = "a number of processes from 1 to 4194304 (the kernel's PID_MAX_LIMIT), or max";
    long n;
    try {
      n = Long.parseLong(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(option + ": \"" + value + "\" is not " + rule, e);
    }
    if (n < 1 || n > 4_194_304) {
      throw new IllegalArgumentException(option + ": \"" + value + "\" is not " + rule);
    }
    return OptionalLong.of(n);
  }

  /** The cgroup's directory. */
  public Path dir() {
    return dir;
  }

  /** Where the enter step's {@code unshare} runs, outside the target's namespaces. */
  public Path supervisor() {
    return dir.resolve(SUPERVISOR);
  }

  /** What could not be applied, as logged. */
  public List<String> warnings() {
    return warnings;
  }

  /** The PIDs in the cgroup and every cgroup below it (the target's systemd makes its own). */
  public List<Long> pids() throws IOException {
    List<Long> result = new ArrayList<>();
    for (Path cgroup : subtree(dir)) {
      List<String> lines;
      try {
        lines = Files.readAllLines(cgroup.resolve("cgroup.procs"));
      } catch (NoSuchFileException e) {
        continue; // removed meanwhile by the target
      }
      for (String line : lines) {
        if (!line.isBlank()) {
          result.add(Long.parseLong(line.strip()));
        }
      }
    }
    return List.copyOf(result);
  }

  /**
   * {@code dir} and every cgroup below it, parents first. Cgroups that vanish meanwhile (the
   * target's systemd removes its own) are skipped.
   */
  private static List<Path> subtree(Path dir) throws IOException {
    List<Path> result = new ArrayList<>();
    Deque<Path> todo = new ArrayDeque<>(List.of(dir));
    while (!todo.isEmpty()) {
      Path next = todo.poll();
      result.add(next);
      try (DirectoryStream<Path> children = Files.newDirectoryStream(next, Files::isDirectory)) {
        for (Path child : children) {
          todo.add(child);
        }
      } catch (NoSuchFileException e) {
        result.remove(next);
      }
    }
    return result;
  }

  /** Whether any process is in the cgroup ({@code populated} in {@code cgroup.events}). */
  public boolean populated() throws IOException {
    for (String line : Files.readAllLines(dir.resolve("cgroup.events"))) {
      if (line.startsWith("populated ")) {
        return !line.endsWith(" 0");
      }
    }
    return !pids().isEmpty();
  }

  /**
   * SIGKILLs every process in the cgroup, including those forked meanwhile: {@code cgroup.kill},
   * or, without it, a SIGKILL sweep repeated until the cgroup is empty.
   */
  public void kill(Signals signals) throws IOException {
    Path killFile = dir.resolve("cgroup.kill");
    if (Files.exists(killFile)) {
      Files.writeString(killFile, "1");
      return;
    }
    for (long pid : pids()) {
      signals.kill(pid, Signals.SIGKILL);
    }
  }

  /**
   * Waits until the cgroup is empty.
   *
   * @return whether it emptied within {@code timeout}
   */
  public boolean awaitEmpty(Duration timeout, Signals sweep) throws IOException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (populated()) {
      if (System.nanoTime() > deadline) {
        return false;
      }
      if (sweep != null) {
        kill(sweep);
      }
      LockSupport.parkNanos(POLL.toNanos());
      if (Thread.interrupted()) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("waiting for " + dir + " to empty");
      }
    }
    return true;
  }

  /**
   * Removes the (empty) cgroup and those the target made below it, children first; rmdir(2) fails
   * with EBUSY while processes remain.
   */
  @Override
  public void close() throws IOException {
    removeTree(dir);
  }

  /**
   * Ends every process in the cgroups below {@code parent} ({@code cgroup.kill}) and removes them;
   * {@code parent} stays. What a target left when its agent died (a crash, a killed test JVM): the
   * mount namespaces, loop devices and overlays those processes held go with them.
   *
   * @return the cgroups removed
   */
  public static List<Path> killChildren(Path parent, java.time.Duration timeout)
      throws IOException {
    List<Path> children;
    try (var list = Files.list(parent)) {
      children = list.filter(Files::isDirectory).toList();
    }
    for (Path child : children) {
      Files.writeString(child.resolve("cgroup.kill"), "1");
      long end = System.nanoTime() + timeout.toNanos();
      while (subtree(child).stream().anyMatch(Cgroup::hasProcesses)) {
        if (System.nanoTime() > end) {
          throw new IOException(
              child + " still has processes " + timeout.toMillis() + " ms after cgroup.kill");
        }
        try {
          Thread.sleep(10);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted while emptying " + child, e);
        }
      }
      removeTree(child);
    }
    return children;
  }

  private static boolean hasProcesses(Path cgroup) {
    try {
      return !Files.readString(cgroup.resolve("cgroup.procs")).isBlank();
    } catch (IOException gone) {
      return false;
    }
  }

  /**
   * Removes an empty cgroup tree, children first (a cgroup directory holds only interface files,
   * which rmdir(2) takes with it). Nothing to do when {@code dir} is gone.
   */
  public static void removeTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    List<Path> all = new ArrayList<>(subtree(dir));
    Collections.reverse(all);
    for (Path cgroup : all) {
      Files.deleteIfExists(cgroup);
    }
  }
}
