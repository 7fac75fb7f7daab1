package io.chrootbooter.agent.pivot;

import io.chrootbooter.agent.confine.ConfinedStart;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.Timeline;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.jboss.logging.Logger;

/**
 * A running target: the helper process ({@code busybox unshare}, parent of the namespace's PID 1)
 * in the {@link Cgroup}'s supervisor child, and the target's init with everything it starts in the
 * cgroup itself, the root of the target's cgroup namespace. The cgroup is owned by the caller.
 */
public final class Target {
  private static final Logger LOG = Logger.getLogger(Target.class);

  /** How long the enter step may take to mount and pivot. */
  private static final Duration ENTER_TIMEOUT = Duration.ofSeconds(30);

  /** How long a killed cgroup may take to empty before the return is declared failed. */
  private static final Duration KILL_TIMEOUT = Duration.ofSeconds(10);

  /** A util-linux {@code unshare} for the cgroup namespace, looked up once per busybox path. */
  private static final Map<Path, Optional<Path>> CGROUP_UNSHARE = new ConcurrentHashMap<>();

  private final Process helper;
  private final long initPid;
  private final Cgroup cgroup;
  private final Signals signals;

  private Target(Process helper, long initPid, Cgroup cgroup, Signals signals) {
    this.helper = helper;
    this.initPid = initPid;
    this.cgroup = cgroup;
    this.signals = signals;
  }

  /**
   * Starts the enter step inside {@code cgroup} and waits until it reports {@code ready} (the init
   * is about to be exec'd). On failure everything started is killed and the step's error thrown.
   */
  static Target start(
      Path busybox,
      TargetSpec spec,
      Path fifo,
      Optional<Path> helperScript,
      Path cmdline,
      Cgroup cgroup,
      Signals signals,
      Map<String, Path> consoleBinds)
      throws IOException {
    return start(
        busybox,
        spec,
        fifo,
        helperScript,
        cmdline,
        cgroup,
        signals,
        consoleBinds,
        FlightSteps.NONE);
  }

  /**
   * As {@link #start(Path, TargetSpec, Path, Optional, Path, Cgroup, Signals, Map)}, telling {@code
   * steps} when {@code pivot_root} was done ({@code init-exec} begins) and when the init is exec'd
   * ({@code healthy} begins: the image boots until it reports healthy).
   */
  static Target start(
      Path busybox,
      TargetSpec spec,
      Path fifo,
      Optional<Path> helperScript,
      Path cmdline,
      Cgroup cgroup,
      Signals signals,
      Map<String, Path> consoleBinds,
      FlightSteps steps)
      throws IOException {
    Optional<Path> cgroupUnshare =
        CGROUP_UNSHARE.computeIfAbsent(busybox, EnterScript::findCgroupUnshare);
    if (cgroupUnshare.isEmpty()) {
      LOG.warnf(
          "no util-linux unshare in %s: the target gets no cgroup namespace and sees the whole"
              + " cgroup2 tree",
          EnterScript.CGROUP_UNSHARE_CANDIDATES);
    }
    List<String> command = new ArrayList<>();
    // The console is opened by the child, before setsid: the agent is a session leader without a
    // controlling terminal (the bootstrap starts it with setsid), so its own open(2) of a
    // terminal other than /dev/console (a console relay's pty slave) would make that terminal
    // the agent's controlling terminal; the child is no session leader.
    command.addAll(
        List.of(
            busybox.toString(),
            "sh",
            "-c",
            "exec 0<\"$1\" 2>>\"$1\" || { echo \"error: cannot open the console $1\"; exit 111; }"
                + "; shift; exec \"$@\"",
            "cb-console",
            spec.console().toString()));
    // A session of its own, without a controlling terminal: a getty in the target hangs up the
    // console (vhangup), which must not SIGHUP the helper (nor anything else of the agent's).
    // The agent's children are no process group leaders, so setsid(2) succeeds without a fork
    // and Process.pid() stays the helper's PID.
    // Join the supervisor cgroup before unshare forks, so no process of the target is ever
    // outside the target's cgroup; the namespace's PID 1 moves on into the cgroup itself. And
    // give up the agent's oom_score_adj (-1000 in the bootstrap, agent-cgroup): the kernel's OOM
    // killer must pick the target's processes, never be kept from them.
    command.addAll(
        List.of(
            busybox.toString(),
            "setsid",
            busybox.toString(),
            "sh",
            "-c",
            "echo $$ > \"$1/cgroup.procs\" || exit 111;"
                + " echo 0 > /proc/self/oom_score_adj || exit 111; shift; exec \"$@\"",
            "cb-cgroup",
            cgroup.supervisor().toString()));
    command.addAll(
        EnterScript.command(
            busybox,
            spec.root().toRealPath(),
            spec.init(),
            fifo,
            helperScript,
            cmdline,
            cgroup.dir(),
            cgroupUnshare,
            spec.confinement(),
            spec.devices(),
            consoleBinds));
    ProcessBuilder builder =
        new ProcessBuilder(command)
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
            .redirectError(ProcessBuilder.Redirect.DISCARD);
    Map<String, String> env = builder.environment();
    Map<String, String> initEnv = EnterScript.initEnvironment(System.getenv());
    env.clear();
    env.putAll(initEnv);
    // A Confined target's bounding set and seccomp filter are its for good, from the enter
    // step's first exec on: it runs without what it must never use.
    Process process =
        spec.confinement() == Confinement.Confined ? ConfinedStart.start(builder) : builder.start();
    boolean ok = false;
    try {
      String line = readReady(process, steps);
      if (EnterScript.READY.equals(line)) {
        steps.step(Timeline.HEALTHY, Instant.now(), null);
      }
      if (!EnterScript.READY.equals(line)) {
        throw new IOException(
            "entering "
                + spec.root()
                + " failed: "
                + (line == null
                    ? "the step exited without a word (see " + spec.console() + ")"
                    : line));
      }
      long init = findInit(cgroup);
      ok = true;
      LOG.infof(
          "target %s: init %s is PID 1 of its namespace, host PID %d, %s",
          spec.root(), spec.init(), init, spec.confinement());
      return new Target(process, init, cgroup, signals);
    } finally {
      if (!ok) {
        cgroup.kill(signals);
        cgroup.awaitEmpty(KILL_TIMEOUT, signals);
        process.destroyForcibly();
      }
    }
  }

  private static String readReady(Process process, FlightSteps steps) throws IOException {
    BufferedReader reader =
        new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    CompletableFuture<String> line =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                String read = reader.readLine();
                if (EnterScript.PIVOTED.equals(read)) {
                  steps.step(Timeline.INIT_EXEC, Instant.now(), null);
                  read = reader.readLine();
                }
                return read;
              } catch (IOException e) {
                return "error: reading the enter step's pipe: " + e.getMessage();
              }
            });
    try {
      return line.get(ENTER_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      return "error: no word from the enter step within " + ENTER_TIMEOUT.toSeconds() + " s";
    } catch (ExecutionException e) {
      throw new IOException(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("waiting for the enter step");
    }
  }

  /** The process in {@code cgroup}'s tree whose innermost PID is 1 (proc(5) {@code NSpid}). */
  private static long findInit(Cgroup cgroup) throws IOException {
    for (long pid : cgroup.pids()) {
      Path status = Path.of("/proc", Long.toString(pid), "status");
      List<String> lines;
      try {
        lines = Files.readAllLines(status);
      } catch (java.nio.file.NoSuchFileException e) {
        continue;
      }
      for (String l : lines) {
        if (l.startsWith("NSpid:")) {
          String[] ids = l.substring(6).strip().split("\\s+");
          if (ids.length >= 2 && ids[ids.length - 1].equals("1")) {
            return pid;
          }
        }
      }
    }
    throw new IOException(
        "no PID 1 of a new PID namespace in the cgroup.procs of " + cgroup.dir() + " and below");
  }

  /**
   * Where a command run in the target ({@link TargetCommand}) puts its processes: the target's
   * supervisor cgroup, within the target's limits and ended by its return; null without one.
   */
  public Path commandCgroup() {
    return cgroup == null ? null : cgroup.supervisor();
  }

  /** The target init's PID as the bootstrap sees it. */
  public long initPid() {
    return initPid;
  }

  /** Whether the namespace's init still runs. */
  public boolean alive() {
    return helper.isAlive();
  }

  /** Completes when the namespace's init is gone, for whatever reason. */
  public CompletableFuture<Process> onExit() {
    return helper.onExit();
  }

  /**
   * Ends the target: {@code signal} to its init, then, if the namespace still lives after {@code
   * grace}, SIGKILL of its init (which ends the whole PID namespace), then {@code cgroup.kill} of
   * anything left. Returns once no process of the target is left.
   *
   * @return whether the cgroup had to be killed
   */
  boolean stop(int signal, Duration grace) throws IOException {
    return stop(signal, grace, FlightSteps.NONE);
  }

  /**
   * As {@link #stop(int, Duration)}, telling {@code steps} when the graceful signal was sent
   * ({@code grace} begins) and when SIGKILL was ({@code forced} begins).
   */
  boolean stop(int signal, Duration grace, FlightSteps steps) throws IOException {
    boolean forced = false;
    try {
      if (helper.isAlive() && !grace.isZero()) {
        steps.step(
            Timeline.GRACE,
            Instant.now(),
            signalName(signal) + ", grace period " + grace.toMillis() + " ms");
        signals.kill(initPid, signal);
        helper.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS);
      }
      if (helper.isAlive()) {
        steps.step(Timeline.FORCED, Instant.now(), "SIGKILL after the grace period");
        // SIGKILL of the namespace's init makes the kernel kill every process of the PID
        // namespace and forbid new ones (pid_namespaces(7)); busybox unshare then reaps it and
        // exits. Killing the cgroup first would kill unshare too and orphan the init's zombie.
        forced = true;
        signals.kill(initPid, Signals.SIGKILL);
        helper.waitFor(KILL_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      }
      if (helper.isAlive() || cgroup.populated()) {
        // Backstop: whatever is left in the cgroup, including an unshare that did not exit.
        forced = true;
        cgroup.kill(signals);
      }
      if (!cgroup.awaitEmpty(
          KILL_TIMEOUT, Files.exists(cgroup.dir().resolve("cgroup.kill")) ? null : signals)) {
        throw new IOException(
            cgroup.dir()
                + " still holds "
                + cgroup.pids()
                + " "
                + KILL_TIMEOUT.toSeconds()
                + " s after SIGKILL");
      }
      if (!helper.waitFor(KILL_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new IOException("the unshare helper " + helper.pid() + " did not exit after SIGKILL");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("stopping the target");
    }
    return forced;
  }

  /** {@code SIGTERM}, {@code SIGRTMIN+4}, … as the BootImage API names signals. */
  static String signalName(int signal) {
    return switch (signal) {
      case Signals.SIGHUP -> "SIGHUP";
      case Signals.SIGINT -> "SIGINT";
      case 3 -> "SIGQUIT";
      case 10 -> "SIGUSR1";
      case Signals.SIGUSR2 -> "SIGUSR2";
      case Signals.SIGTERM -> "SIGTERM";
      case 30 -> "SIGPWR";
      default ->
          signal > Signals.SIGRTMIN && signal <= Signals.SIGRTMIN + 30
              ? "SIGRTMIN+" + (signal - Signals.SIGRTMIN)
              : signal == Signals.SIGRTMIN ? "SIGRTMIN" : "signal " + signal;
    };
  }

  /**
   * How the namespace's init ended, from the helper's status: busybox {@code unshare --fork} exits
   * with the init's status and re-raises the signal that killed it. A {@code reboot} inside the
   * namespace shows as SIGHUP, a {@code poweroff}/{@code halt} as SIGINT (pid_namespaces(7)).
   */
  String exitDescription() {
    if (helper.isAlive()) {
      return "running";
    }
    int status = helper.exitValue();
    if (status > 128) {
      int sig = status - 128;
      String name =
          switch (sig) {
            case Signals.SIGHUP -> " (SIGHUP: reboot inside the namespace)";
            case Signals.SIGINT -> " (SIGINT: power-off inside the namespace)";
            case Signals.SIGKILL -> " (SIGKILL)";
            case Signals.SIGTERM -> " (SIGTERM)";
            default -> "";
          };
      return "signal " + sig + name;
    }
    return "exit " + status;
  }
}
