package io.chrootbooter.agent.pivot;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.locks.LockSupport;
import org.jboss.logging.Logger;

/**
 * One target's cgroup v2 (cgroups(7), Documentation/admin-guide/cgroup-v2.rst). It holds every
 * process of the target, so {@code cgroup.kill} (Linux 5.14) ends all of them at once, whatever
 * they do with signals, forks or namespaces. Limits are written only where the parent delegates the
 * controller; on a host whose cgroup2 tree has none (a cgroup v1 hybrid host) a warning says the
 * target runs unlimited.
 */
public final class Cgroup implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Cgroup.class);

  /** Interval of the {@code cgroup.events} poll while waiting for the cgroup to empty. */
  private static final Duration POLL = Duration.ofMillis(2);

  private final Path dir;
  private final List<String> warnings;

  private Cgroup(Path dir, List<String> warnings) {
    this.dir = dir;
    this.warnings = List.copyOf(warnings);
  }

  /**
   * Creates {@code parent/name} and applies the limits the hierarchy supports.
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
    List<String> warnings = new ArrayList<>();
    Set<String> available =
        Set.of(Files.readString(parent.resolve("cgroup.controllers")).split("\\s+"));
    limit(parent, dir, available, "pids", "pids.max", pidsMax, warnings);
    limit(parent, dir, available, "memory", "memory.max", memoryMax, warnings);
    if (!Files.exists(dir.resolve("cgroup.kill"))) {
      warnings.add(
          dir + " has no cgroup.kill (kernel older than 5.14): a forced return kills each process");
    }
    for (String w : warnings) {
      LOG.warn(w);
    }
    return new Cgroup(dir, warnings);
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
              + value.getAsLong());
      return;
    }
    Files.writeString(parent.resolve("cgroup.subtree_control"), "+" + controller);
    Files.writeString(dir.resolve(file), Long.toString(value.getAsLong()));
  }

  /** The cgroup's directory. */
  public Path dir() {
    return dir;
  }

  /** What could not be applied, as logged. */
  public List<String> warnings() {
    return warnings;
  }

  /** The PIDs in the cgroup now. */
  public List<Long> pids() throws IOException {
    List<Long> result = new ArrayList<>();
    for (String line : Files.readAllLines(dir.resolve("cgroup.procs"))) {
      if (!line.isBlank()) {
        result.add(Long.parseLong(line.strip()));
      }
    }
    return List.copyOf(result);
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

  /** Removes the (empty) cgroup directory; rmdir(2) fails with EBUSY while processes remain. */
  @Override
  public void close() throws IOException {
    if (Files.exists(dir)) {
      Files.delete(dir);
    }
  }
}
