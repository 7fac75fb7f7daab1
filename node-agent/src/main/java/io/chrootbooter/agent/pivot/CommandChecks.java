package io.chrootbooter.agent.pivot;

import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.TestCommand;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * The commands of a BootTest's {@code command} checks ({@link TestCommand}, sent in the desired
 * state) for the target booted with them: once that target reports healthy they run in order, one
 * at a time, on a thread of their own ({@link TargetCommand}: inside the target as root, in its
 * cgroup, with a timeout), and each result is kept for the status report. A target that returns
 * ends its commands: a command still running is killed with the target, the ones after it do not
 * run, and the results go with the target (the next boot starts afresh).
 */
public final class CommandChecks {
  private static final Logger LOG = Logger.getLogger(CommandChecks.class);

  /** The longest timeout a command may have. */
  static final Duration MAX_TIMEOUT = Duration.ofHours(1);

  private final Path busybox;
  private final Runnable changed;
  private Run run; // guarded by this

  /**
   * @param busybox the bootstrap's busybox, whose {@code nsenter} enters the target
   * @param changed called after every new result (poke the status reporter)
   */
  public CommandChecks(Path busybox, Runnable changed) {
    this.busybox = busybox;
    this.changed = changed;
  }

  /** The commands of one booted target, and their results so far. */
  private static final class Run {
    final TargetSession session;
    final List<TestCommand> commands;
    final List<TestCommand.Result> results = new ArrayList<>();
    Thread thread;

    Run(TargetSession session, List<TestCommand> commands) {
      this.session = session;
      this.commands = List.copyOf(commands);
    }
  }

  /** {@code session} was booted with {@code commands} (empty for none): they run once healthy. */
  public synchronized void booted(TargetSession session, List<TestCommand> commands) {
    run =
        session == null || commands == null || commands.isEmpty()
            ? null
            : new Run(session, commands);
  }

  /**
   * Starts the commands of {@code current} when it is the session they were sent for and it
   * reported healthy; does nothing otherwise (and once started). Call it after every change of the
   * target.
   */
  public synchronized void poke(Optional<TargetSession> current) {
    Run r = run;
    if (r == null || r.thread != null) {
      return;
    }
    if (current.isEmpty() || current.get() != r.session) {
      if (!r.session.target().alive()) {
        run = null; // that target is gone before it was healthy
      }
      return;
    }
    if (!r.session.healthy()) {
      return;
    }
    r.thread = new Thread(() -> runAll(r), "cb-test-commands");
    r.thread.setDaemon(true);
    r.thread.start();
  }

  /**
   * The results of {@code session}'s commands so far, in order, their output cut to {@link
   * TestCommand#MAX_REPORTED_OUTPUT} characters together; empty for another session.
   */
  public List<TestCommand.Result> results(TargetSession session) {
    List<TestCommand.Result> all;
    synchronized (this) {
      if (run == null || run.session != session) {
        return List.of();
      }
      all = List.copyOf(run.results);
    }
    return withinBudget(all, TestCommand.MAX_REPORTED_OUTPUT);
  }

  /** {@code results} with their output cut to {@code budget} characters together, in order. */
  static List<TestCommand.Result> withinBudget(List<TestCommand.Result> results, int budget) {
    List<TestCommand.Result> out = new ArrayList<>();
    int left = budget;
    for (TestCommand.Result r : results) {
      String stdout = cut(r.stdout(), left);
      left -= stdout == null ? 0 : stdout.length();
      String stderr = cut(r.stderr(), left);
      left -= stderr == null ? 0 : stderr.length();
      boolean cut =
          !java.util.Objects.equals(stdout, r.stdout())
              || !java.util.Objects.equals(stderr, r.stderr());
      out.add(
          cut
              ? new TestCommand.Result(
                  r.name(),
                  r.exitCode(),
                  r.timedOut(),
                  stdout,
                  stderr,
                  true,
                  r.durationMillis(),
                  r.error())
              : r);
    }
    return out;
  }

  private static String cut(String s, int room) {
    if (s == null || s.length() <= room) {
      return s;
    }
    return s.substring(0, Math.max(0, room));
  }

  private void runAll(Run r) {
    for (TestCommand command : r.commands) {
      if (!r.session.target().alive()) {
        return; // the target is gone: the rest do not run
      }
      TestCommand.Result result = runOne(r.session, command);
      synchronized (this) {
        if (run != r) {
          return;
        }
        r.results.add(result);
      }
      changed.run();
    }
  }

  /** Runs one command in {@code session}'s target; a refused or failed one is a result too. */
  TestCommand.Result runOne(TargetSession session, TestCommand command) {
    String name = command.name();
    Duration timeout;
    try {
      timeout =
          command.timeout() == null
              ? GoDuration.parse("timeout", TestCommand.DEFAULT_TIMEOUT)
              : GoDuration.parse("timeout", command.timeout());
      if (timeout.isZero() || timeout.compareTo(MAX_TIMEOUT) > 0) {
        throw new IllegalArgumentException(
            "timeout: " + command.timeout() + " is not between 1ms and 1h");
      }
      TargetCommand.check(command.run());
    } catch (IllegalArgumentException e) {
      LOG.warnf("command %s refused: %s", name, e.getMessage());
      return new TestCommand.Result(
          name, null, null, null, null, null, null, printable(e.getMessage()));
    }
    Path cgroup = session.target().commandCgroup();
    if (cgroup != null && !Files.isDirectory(cgroup)) {
      cgroup = null;
    }
    LOG.infof("running command %s in the target: %s", name, command.run());
    try {
      TargetCommand.Result r =
          TargetCommand.run(
              busybox,
              session.target().initPid(),
              cgroup,
              command.run(),
              timeout,
              TestCommand.MAX_OUTPUT_BYTES);
      LOG.infof(
          "command %s: %s in %d ms",
          name,
          r.timedOut() ? "killed at its timeout" : "exit " + r.exitCode(),
          r.took().toMillis());
      return new TestCommand.Result(
          name,
          r.timedOut() ? null : r.exitCode(),
          r.timedOut(),
          r.stdout(),
          r.stderr(),
          r.truncated(),
          r.took().toMillis(),
          null);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new TestCommand.Result(
          name, null, null, null, null, null, null, "interrupted: the agent is stopping");
    } catch (java.io.IOException | RuntimeException e) {
      LOG.warnf(e, "command %s could not run", name);
      return new TestCommand.Result(
          name, null, null, null, null, null, null, printable("could not run: " + e));
    }
  }

  /** {@code s} as a status report's text: printable ASCII, at most 500 characters. */
  static String printable(String s) {
    String p = String.valueOf(s).replaceAll("[^\\x20-\\x7e]", "?");
    return p.length() <= 500 ? p : p.substring(0, 499) + "~";
  }
}
