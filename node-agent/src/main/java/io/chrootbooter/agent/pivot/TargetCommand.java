package io.chrootbooter.agent.pivot;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a command inside a running target, as root: in the mount, UTS, IPC and PID namespaces, root
 * directory and working directory of the target's init ({@code busybox nsenter -t <init> -m -u -i
 * -p -r -w}), with a clean environment, a timeout, and stdout and stderr kept up to a bound. What a
 * BootTest's {@code command} check runs.
 *
 * <p>The command runs in a session and process group of its own ({@code busybox setsid}, which
 * calls setsid(2) and execs in place). The timeout kills that process group and the command's
 * descendants, nothing else of the target: a background job the command left behind (reparented to
 * the target's init, still in the group) goes too, a daemon that made a session of its own does
 * not. The check ends when the command itself exits: a daemon it started (which keeps the output
 * pipes open) does not hold it open; the pipes are closed after a short drain, and the daemon keeps
 * running in the target.
 */
public final class TargetCommand {
  /** Longest argument, and most arguments, a command may have. */
  static final int MAX_ARG = 4096;

  static final int MAX_ARGS = 256;

  /** How long output may still arrive after the command exited. */
  static final Duration DRAIN = Duration.ofMillis(300);

  private static final List<String> ENVIRONMENT =
      List.of("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root");

  private TargetCommand() {}

  /**
   * What a command did.
   *
   * @param exitCode its exit status; 128 + n when signal n ended it; -1 when the timeout killed it
   * @param timedOut whether the timeout killed it
   * @param stdout what it wrote to stdout, at most the bound (UTF-8, malformed bytes replaced)
   * @param stderr the same for stderr
   * @param truncated whether either output was longer than the bound
   * @param took from start to exit
   */
  public record Result(
      int exitCode,
      boolean timedOut,
      String stdout,
      String stderr,
      boolean truncated,
      Duration took) {}

  /** Why a command cannot be run as given. */
  public static final class RefusedException extends IllegalArgumentException {
    RefusedException(String message) {
      super(message);
    }
  }

  /**
   * Runs {@code argv} in the target whose init has {@code initPid} (as this process sees it).
   *
   * @param maxBytes how much of stdout, and of stderr, is kept
   * @throws RefusedException when argv is empty, too long, or holds a NUL character
   */
  public static Result run(
      Path busybox, long initPid, List<String> argv, Duration timeout, int maxBytes)
      throws IOException, InterruptedException {
    return run(busybox, initPid, null, argv, timeout, maxBytes);
  }

  /**
   * Runs {@code argv} in the target whose init has {@code initPid}, its processes in the cgroup
   * {@code cgroup} (the target's, so that its limits apply and its return ends them); null to leave
   * them in the agent's.
   *
   * @throws RefusedException when argv is empty, too long, or holds a NUL character
   */
  public static Result run(
      Path busybox, long initPid, Path cgroup, List<String> argv, Duration timeout, int maxBytes)
      throws IOException, InterruptedException {
    check(argv);
    List<String> command = new ArrayList<>();
    if (cgroup != null) {
      // Joins before anything of the command runs; exec keeps the PID, the group's leader.
      command.addAll(
          List.of(
              busybox.toString(),
              "sh",
              "-c",
              "echo $$ > \"$1/cgroup.procs\" || exit 111; shift; exec \"$@\"",
              "cb-command",
              cgroup.toString()));
    }
    // Not a group leader (the JVM does not make its children ones): setsid execs in place, so
    // the process started here leads the command's session and process group.
    command.add(busybox.toString());
    command.add("setsid");
    command.add(busybox.toString());
    command.add("env");
    command.add("-i");
    command.addAll(ENVIRONMENT);
    command.add(busybox.toString());
    command.add("nsenter");
    command.add("-t");
    command.add(Long.toString(initPid));
    command.addAll(List.of("-m", "-u", "-i", "-p", "-r", "-w", "--"));
    command.addAll(argv);
    long start = System.nanoTime();
    Process process =
        new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.PIPE).start();
    process.getOutputStream().close();
    Capture out = new Capture(process.getInputStream(), maxBytes, "command-stdout");
    Capture err = new Capture(process.getErrorStream(), maxBytes, "command-stderr");
    boolean timedOut = !process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
    if (timedOut) {
      killGroup(process);
      process.waitFor();
    }
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    out.finish();
    err.finish();
    int status = timedOut ? -1 : process.exitValue();
    return new Result(
        status, timedOut, out.text(), err.text(), out.truncated() || err.truncated(), took);
  }

  /**
   * Kills the command's process group and its descendants, again until none is left (a process may
   * fork while it is killed), for at most two seconds.
   */
  static void killGroup(Process process) throws InterruptedException {
    long group = process.pid();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
    while (true) {
      List<ProcessHandle> victims = new ArrayList<>(process.descendants().toList());
      victims.addAll(inGroup(group));
      if (process.isAlive()) {
        victims.add(process.toHandle());
      }
      victims.removeIf(p -> !p.isAlive());
      if (victims.isEmpty() || System.nanoTime() > deadline) {
        return;
      }
      victims.forEach(ProcessHandle::destroyForcibly);
      Thread.sleep(10);
    }
  }

  /** The processes of process group {@code group}, from {@code /proc/<pid>/stat}. */
  static List<ProcessHandle> inGroup(long group) {
    List<ProcessHandle> out = new ArrayList<>();
    try (var dirs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
      for (Path dir : dirs) {
        String stat;
        try {
          stat = Files.readString(dir.resolve("stat"), StandardCharsets.US_ASCII);
        } catch (IOException e) {
          continue; // gone meanwhile
        }
        // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        int close = stat.lastIndexOf(')');
        String[] fields = close < 0 ? new String[0] : stat.substring(close + 2).split(" ");
        if (fields.length > 2 && fields[2].equals(Long.toString(group))) {
          ProcessHandle.of(Long.parseLong(dir.getFileName().toString())).ifPresent(out::add);
        }
      }
    } catch (IOException | NumberFormatException e) {
      // No /proc to read: the descendants are still killed.
    }
    return out;
  }

  static void check(List<String> argv) {
    if (argv == null || argv.isEmpty()) {
      throw new RefusedException("the command is empty");
    }
    if (argv.size() > MAX_ARGS) {
      throw new RefusedException(
          "the command has " + argv.size() + " arguments; at most " + MAX_ARGS);
    }
    for (int i = 0; i < argv.size(); i++) {
      String arg = argv.get(i);
      if (arg == null) {
        throw new RefusedException("argument " + i + " of the command is null");
      }
      if (arg.length() > MAX_ARG) {
        throw new RefusedException(
            "argument "
                + i
                + " of the command is "
                + arg.length()
                + " characters; at most "
                + MAX_ARG);
      }
      if (arg.indexOf('\0') >= 0) {
        throw new RefusedException("argument " + i + " of the command holds a NUL character");
      }
    }
    if (argv.get(0).isEmpty()) {
      throw new RefusedException("the command's program is empty");
    }
  }

  /** One output, read on a thread of its own: the first bytes kept, the rest read and dropped. */
  private static final class Capture {
    private final InputStream in;
    private final int max;
    private final ByteArrayOutputStream kept = new ByteArrayOutputStream();
    private final Thread reader;
    private volatile boolean truncated;

    Capture(InputStream in, int max, String name) {
      this.in = in;
      this.max = max;
      this.reader = new Thread(this::read, name);
      reader.setDaemon(true);
      reader.start();
    }

    private void read() {
      byte[] buf = new byte[8192];
      try {
        for (int n; (n = in.read(buf)) >= 0; ) {
          synchronized (kept) {
            int room = max - kept.size();
            if (n > room) {
              truncated = true;
            }
            kept.write(buf, 0, Math.max(0, Math.min(n, room)));
          }
        }
      } catch (IOException e) {
        // Closed by finish(): a daemon of the command still holds the pipe.
      }
    }

    /** Waits a little for the last output, then closes the pipe. */
    void finish() throws InterruptedException {
      reader.join(DRAIN.toMillis());
      try {
        in.close();
      } catch (IOException e) {
        // Nothing more to read either way.
      }
      reader.join(DRAIN.toMillis());
    }

    boolean truncated() {
      return truncated;
    }

    String text() {
      synchronized (kept) {
        return kept.toString(StandardCharsets.UTF_8);
      }
    }
  }
}
