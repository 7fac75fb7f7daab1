package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.console.ConsoleShell;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.OperatorCredential;
import io.chrootbooter.agent.fetch.SpaceCheck;
import io.chrootbooter.agent.modules.ModulesImage;
import io.chrootbooter.agent.operator.CaPin;
import io.chrootbooter.agent.operator.ConsoleAttach;
import io.chrootbooter.agent.operator.ConsoleUploader;
import io.chrootbooter.agent.operator.OperatorClient;
import io.chrootbooter.agent.operator.SessionFile;
import io.chrootbooter.agent.operator.StatusReporter;
import io.chrootbooter.agent.pivot.BootController;
import io.chrootbooter.agent.pivot.Cgroup;
import io.chrootbooter.agent.pivot.CommandChecks;
import io.chrootbooter.agent.pivot.LinuxSignals;
import io.chrootbooter.agent.pivot.PivotConfig;
import io.chrootbooter.agent.pivot.StateFiles;
import io.chrootbooter.agent.relay.ConsoleRecorder;
import io.chrootbooter.agent.unpack.ImageCache;
import io.chrootbooter.agent.unpack.Mounts;
import io.chrootbooter.protocol.Action;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.ImageFormat;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.PrintStream;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import javax.net.ssl.SSLContext;
import org.eclipse.microprofile.config.ConfigProvider;
import org.jboss.logging.Logger;

/**
 * A running agent with everything wired: the {@link Agent}, its {@link BootController}, the
 * triggers, the operator stream and status reporter (or the standalone {@code cb.image}), and the
 * console loop. {@link #close()} stops all of it and returns a running target.
 */
public final class Daemon implements AutoCloseable {
  /** How long the agent waits for the bootstrap's network before it goes on without it. */
  static final Duration NETWORK_WAIT = Duration.ofSeconds(30);

  private static final Logger LOG = Logger.getLogger(Daemon.class);

  /**
   * The agent's settings; strings are the kernel command line's values, null when absent.
   *
   * @param env the environment, for the DHCP lease ({@code CB_NET_*})
   */
  public record Options(
      String operator,
      String nonce,
      String mac,
      String ca,
      String image,
      String sha256,
      String format,
      String init,
      String serial,
      int serialBaud,
      String cache,
      String modules,
      Path modulesDigest,
      Path workDir,
      Path stateDir,
      Path cgroup,
      Path busybox,
      Path dev,
      Path targetConsole,
      Duration grace,
      OptionalLong pidsMax,
      OptionalLong memoryMax,
      Duration reportInterval,
      Map<String, String> env,
      int consoleLog,
      OptionalLong lazyRam) {}

  private final Agent agent;
  private final Triggers triggers;
  private final List<AutoCloseable> closers = new ArrayList<>();

  private Daemon(Agent agent, Triggers triggers) {
    this.agent = agent;
    this.triggers = triggers;
  }

  /** The agent, for tests and the console. */
  public Agent agent() {
    return agent;
  }

  /**
   * Starts the agent.
   *
   * @param console where console commands come from; null for no console shell
   * @param out the console's output
   */
  public static Daemon start(Options o, InputStream console, PrintStream out) throws IOException {
    Optional<SSLContext> tls = Optional.empty();
    if (present(o.ca())) {
      tls = Optional.of(CaPin.parse(o.ca()).sslContext());
    }
    // The operator client's set-up (java.net.http, the TLS context and its trust store) is the
    // slowest part of the start: it runs on a thread of its own while the rest is set up.
    FutureTask<OperatorClient> clientSetUp = null;
    if (present(o.operator())) {
      URI operator = URI.create(o.operator());
      String mac = normalizeMac(o.mac());
      Optional<SSLContext> clientTls = tls;
      SessionFile sessionFile = new SessionFile(o.stateDir().resolve("agent-session"));
      String bootId =
          Optional.ofNullable(read("/proc/sys/kernel/random/boot_id")).orElse("unknown");
      clientSetUp =
          new FutureTask<>(
              () -> new OperatorClient(operator, mac, o.nonce(), bootId, sessionFile, clientTls));
      Thread setUp = new Thread(clientSetUp, "cb-operator-client");
      setUp.setDaemon(true);
      setUp.start();
    }
    Files.createDirectories(o.workDir());
    Path cacheDir = cacheDir(o);
    ImageCache images = ImageCache.withHeadroom(cacheDir, () -> cacheBudget(cacheDir));
    Path cgroup = Files.createDirectories(o.cgroup());
    // Targets of an agent that died (init respawns it): this agent cannot manage them, so they
    // end here, with the mounts and loop devices their namespaces held.
    List<Path> orphans = Cgroup.killChildren(cgroup, Duration.ofSeconds(10));
    if (!orphans.isEmpty()) {
      LOG.warnf("ended the targets a previous agent left: %s", orphans);
    }
    PivotConfig pivot =
        new PivotConfig(
            o.busybox(),
            cgroup,
            o.workDir().resolve("staging"),
            new StateFiles(o.stateDir()),
            o.pidsMax(),
            o.memoryMax());
    BootController controller = new BootController(pivot, new LinuxSignals(), Clock.systemUTC());
    Map<String, String> env = awaitNetwork(o.env());
    Agent agent =
        new Agent(
            controller,
            // Image downloads (HttpURLConnection) trust the same pin as the operator client.
            new ImageLoader(
                    o.workDir().resolve("images"),
                    images,
                    modulesImage(o, cacheDir),
                    tls.map(SSLContext::getSocketFactory))
                // A Lazy image's blocks: on the cache disk when there is one, else in RAM, bounded.
                .lazy(
                    new ImageLoader.LazySettings(
                        present(o.cache()) ? cacheDir : o.workDir().resolve("images"),
                        o.lazyRam(),
                        Optional.of(cacheDir.resolve("read-profiles")),
                        Optional.of(o.dev().resolve("kmsg")),
                        present(o.cache()))),
            new Agent.Settings(
                o.targetConsole(),
                o.grace(),
                NetworkRestore.fromLease(o.busybox(), env),
                () -> agentInfo(env)),
            out);
    agent.commandChecks(new CommandChecks(o.busybox(), agent::statusChanged));
    previousRun(Path.of("/run/bootstrap/agent-exit")).ifPresent(agent::previousRun);
    Triggers triggers =
        new Triggers(
            controller,
            o.busybox(),
            o.dev(),
            present(o.serial())
                ? Optional.of(
                    new Triggers.Serial(
                        o.dev().resolve(o.serial()), "RETURN_TO_BOOTSTRAP", o.serialBaud()))
                : Optional.empty());
    // The flight recorder: every enter and return of the controller, and this agent's start.
    controller.steps(agent.recorder());
    agent
        .recorder()
        .agentUp(
            ProcessHandle.current().info().startInstant().orElseGet(Instant::now),
            read("/proc/sys/kernel/random/boot_id"));
    Optional<ConsoleRecorder> recorder = consoleRecorder(o, triggers);
    recorder.ifPresent(controller::consoles);
    Daemon daemon = new Daemon(agent, triggers);
    // Closed in this order: the stream, the triggers, the agent (returns a running target), then
    // the reporter, which sends the final status first.
    daemon.closers.add(triggers);
    daemon.closers.add(agent);
    triggers.start();

    if (clientSetUp != null) {
      OperatorClient client = await(clientSetUp);
      // Images the operator serves go only to enrolled machines: downloads from its origin (and
      // from no other) carry the session.
      OperatorCredential.use(client.origin(), client::authorization);
      // The full report every heartbeat, also when nothing changed: the operator's sign of life.
      StatusReporter reporter =
          new StatusReporter(
              client::report, agent::status, o.reportInterval(), StatusReporter.heartbeatOf(null));
      agent.onChange(reporter::poke);
      daemon.closers.add(0, client);
      daemon.closers.add(reporter);
      if (recorder.isPresent()) {
        ConsoleRecorder r = recorder.get();
        ConsoleUploader uploader = new ConsoleUploader(client::console, r::current);
        r.onStart(uploader::poke);
        r.onWarning((log, line) -> uploader.poke());
        daemon.closers.add(uploader);
        ConsoleAttach live =
            new ConsoleAttach(client.http(), client::authorization, client::consoleUri, r::attach);
        client.onConsole(live::open);
      }
      agent.recorder().enrolling(Instant.now());
      Thread stream =
          new Thread(
              () ->
                  client.follow(
                      state -> {
                        reporter.heartbeat(StatusReporter.heartbeatOf(state.heartbeat()));
                        triggers.configure(state, o.serialBaud());
                        agent.desired(state);
                      },
                      reporter::poke),
              "cb-desired-stream");
      stream.setDaemon(true);
      stream.start();
      LOG.infof("agent up; operator %s", client.machineUrl());
    } else if (present(o.image())) {
      LOG.infof("agent up; standalone: loading %s", o.image());
      try {
        agent.desired(standalone(o));
      } catch (IllegalArgumentException e) {
        // A format no agent knows: nothing to load; the console stays for a human to load one.
        LOG.errorf("cb.format: %s; nothing is loaded", e.getMessage());
      }
    } else {
      LOG.info("agent up; no cb.operator and no cb.image: waiting at the console");
    }

    if (console != null) {
      // The bootstrap's console shell is recorded and attachable like a target's console.
      PrintStream shellOut = recorder.map(r -> r.tee(out)).orElse(out);
      InputStream shellIn = recorder.map(r -> r.merge(console, shellOut)).orElse(console);
      recorder.ifPresent(ConsoleRecorder::bootstrapStarted);
      Thread thread =
          new Thread(
              new ConsoleLoop(
                  new ConsoleShell(new AgentConsole(agent)), controller, shellIn, shellOut),
              "cb-console");
      thread.setDaemon(true);
      thread.start();
    }
    out.println("chrootbooter: agent ready");
    out.flush();
    return daemon;
  }

  /**
   * The console relay and recorder ({@code io.chrootbooter.agent.relay}), unless {@code
   * cb.console-log=0}: the consoles of the kernel command line, {@code /dev/kmsg}, a ring of {@code
   * consoleLog} bytes per boot.
   */
  private static Optional<ConsoleRecorder> consoleRecorder(Options o, Triggers triggers) {
    if (o.consoleLog() <= 0) {
      LOG.info("cb.console-log=0: the targets' consoles are neither relayed nor recorded");
      return Optional.empty();
    }
    String cmdline = Optional.ofNullable(read("/proc/cmdline")).orElse("");
    return Optional.of(
        new ConsoleRecorder(
            new ConsoleRecorder.Settings(
                cmdline,
                o.dev(),
                Path.of("/sys/class/tty"),
                Optional.of(o.dev().resolve("kmsg")),
                o.consoleLog(),
                // The agent's PID too: an agent init restarts numbers its boots from 1 again.
                Optional.ofNullable(read("/proc/sys/kernel/random/boot_id")).orElse("unknown")
                    + "-"
                    + ProcessHandle.current().pid()),
            triggers::serialPort,
            Clock.systemUTC()));
  }

  /** The result of a set-up task; its exception as it was thrown. */
  private static <T> T await(FutureTask<T> task) throws IOException {
    try {
      return task.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while the operator client was set up", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      if (e.getCause() instanceof Error err) {
        throw err;
      }
      throw new IOException(e.getCause());
    }
  }

  /**
   * The desired state of a machine booted with {@code cb.image=} and no operator.
   *
   * @throws IllegalArgumentException when {@code cb.format=} names no format
   */
  static DesiredState standalone(Options o) {
    return DesiredState.builder()
        .action(Action.Run)
        .generation(1)
        .reason("cb.image")
        .image(
            DesiredState.Image.builder()
                .url(o.image())
                .sha256(present(o.sha256()) ? o.sha256() : null)
                .format(
                    present(o.format())
                        ? ImageFormat.parse(o.format())
                        : ImageFormat.fromUrl(o.image()).orElse(ImageFormat.SQUASHFS))
                .init(present(o.init()) ? o.init() : null)
                .build())
        .overlay("tmpfs")
        .build();
  }

  /**
   * The bootstrap kernel's modules image: its digest from the initramfs, its bytes from {@code
   * cb.modules=}, else from the operator's {@code /bootstrap/modules}; kept beside the cached
   * images (on a cache disk it outlives the boot, and is hashed again before each use).
   */
  private static Optional<ModulesImage> modulesImage(Options o, Path cacheDir) throws IOException {
    Optional<String> digest = ModulesImage.digestIn(o.modulesDigest());
    if (digest.isEmpty()) {
      return Optional.empty();
    }
    String url;
    if (present(o.modules())) {
      url = o.modules();
    } else if (present(o.operator())) {
      url = o.operator().replaceAll("/+$", "") + "/bootstrap/modules";
    } else {
      LOG.info("no cb.modules= and no operator: targets get no kernel modules of the bootstrap");
      return Optional.empty();
    }
    String sha = digest.get();
    return Optional.of(
        new ModulesImage(
            sha,
            ModulesImage.runningRelease(),
            options -> ImageSources.open(url, options),
            cacheDir.resolve("modules-" + sha + ".sqfs"),
            o.workDir().resolve("modules")));
  }

  private static Path cacheDir(Options o) throws IOException {
    if (!present(o.cache())) {
      return o.workDir().resolve("cache");
    }
    if (o.cache().startsWith("/dev/")) {
      // A cache disk: mounted once and kept across returns (and across boots, when it holds a
      // file system the kernel detects).
      Path mountPoint = Files.createDirectories(o.workDir().resolve("cache-disk"));
      if (Mounts.mountsBelow(mountPoint).isEmpty()) {
        Mounts.mountDetect("rw", o.cache(), mountPoint);
      }
      return mountPoint.resolve("images");
    }
    return Path.of(o.cache());
  }

  /** Beyond what it holds, the cache may take half of what is free where it lives. */
  private static long cacheBudget(Path dir) {
    try {
      return SpaceCheck.available(dir) / 2;
    } catch (IOException e) {
      return 0;
    }
  }

  private static boolean present(String value) {
    return value != null && !value.isBlank();
  }

  static String normalizeMac(String mac) {
    if (mac == null || mac.isBlank()) {
      throw new IllegalArgumentException(
          "cb.operator is set but cb.mac is not (the operator's iPXE script passes it)");
    }
    return mac.trim().toLowerCase(Locale.ROOT).replace('-', ':');
  }

  /**
   * In the bootstrap the agent starts while {@code rc.sysinit} still brings the network up; the
   * file {@code CB_NETWORK_READY} names appears once it has (lease or not). Waits for it (at most
   * {@link #NETWORK_WAIT}), then returns {@code env} with the lease's {@code CB_NET_*} values from
   * {@code net.env}. Without {@code CB_NETWORK_READY} (an agent outside the bootstrap), {@code env}
   * as it is.
   */
  static Map<String, String> awaitNetwork(Map<String, String> env) throws IOException {
    String ready = env.get("CB_NETWORK_READY");
    if (ready == null || ready.isBlank()) {
      return env;
    }
    Path file = Path.of(ready);
    long start = System.nanoTime();
    long deadline = start + NETWORK_WAIT.toNanos();
    while (!Files.exists(file)) {
      if (System.nanoTime() - deadline > 0) {
        LOG.warnf(
            "%s did not appear within %d s; going on without waiting for the network",
            file, NETWORK_WAIT.toSeconds());
        break;
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while waiting for " + file);
      }
    }
    LOG.debugf("network ready after %d ms", (System.nanoTime() - start) / 1_000_000);
    Map<String, String> merged = new HashMap<>(env);
    if (Files.exists(NetworkRestore.LEASE_FILE)) {
      merged.putAll(NetworkRestore.readEnv(NetworkRestore.LEASE_FILE));
    }
    return Map.copyOf(merged);
  }

  /**
   * What the bootstrap's launcher wrote when the agent's previous run ended abnormally ({@code
   * /run/bootstrap/agent-exit}, e.g. "ran out of heap memory (-Xmx48m) and was restarted"); read
   * once and removed.
   */
  static Optional<String> previousRun(Path file) {
    try {
      if (!Files.isRegularFile(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
        return Optional.empty();
      }
      String what = Files.readString(file).strip();
      Files.delete(file);
      return what.isEmpty() ? Optional.empty() : Optional.of(what);
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  private static AgentInfo agentInfo(Map<String, String> env) {
    String version =
        ConfigProvider.getConfig()
            .getOptionalValue("quarkus.application.version", String.class)
            .orElse("unknown");
    return new AgentInfo(
        version,
        read("/proc/sys/kernel/random/boot_id"),
        ip(env),
        read("/proc/sys/kernel/osrelease"),
        jit(jvmFlags(env), env.get("CB_JIT_REASON")));
  }

  /**
   * {@code agent.jit}: the mode this JVM compiles in, from the flags it was started with, then in
   * brackets the reason the bootstrap's agent script gave for it ({@code CB_JIT_REASON}, from its
   * jit-mode script), when it started the JVM: {@code "c1 (hypervisor TCGTCGTCGTCG: QEMU TCG)"},
   * {@code "tiered (cb.jit=tiered)"}, {@code "tiered"}. The flags are read rather than asked of the
   * JVM (HotSpotDiagnosticMXBean): loading the management classes took 30-60 ms on the build host
   * with C1 (Java 17), before every boot's first report, and a JVM under TCG runs about 20 times
   * slower.
   *
   * @param flags the JVM's options in the order they apply (the last of a kind wins)
   */
  static String jit(List<String> flags, String reason) {
    String mode = "tiered";
    for (String f : flags) {
      if (f.equals("-Xint")) {
        mode = "interpreter";
      } else if (f.equals("-Xmixed")) {
        mode = "tiered";
      } else if (f.equals("-XX:-TieredCompilation")) {
        mode = "c2";
      } else if (f.equals("-XX:+TieredCompilation")) {
        mode = "tiered";
      } else if (f.startsWith("-XX:TieredStopAtLevel=")) {
        // Levels 1-3 compile with C1 only (with more or less profiling), 0 interprets only.
        String level = f.substring(f.indexOf('=') + 1);
        mode = level.equals("0") ? "interpreter" : level.matches("[1-3]") ? "c1" : "tiered";
      }
    }
    return reason == null || reason.isBlank() ? mode : mode + " (" + reason.strip() + ")";
  }

  /** The JVM options of this process, see {@link #jvmFlags(String, List)}. */
  private static List<String> jvmFlags(Map<String, String> env) {
    List<String> cmdline = List.of();
    try {
      cmdline =
          List.of(
              new String(Files.readAllBytes(Path.of("/proc/self/cmdline")), StandardCharsets.UTF_8)
                  .split("\0"));
    } catch (IOException e) {
      // not Linux: the JVM's default is assumed
    }
    return jvmFlags(env.get("JAVA_TOOL_OPTIONS"), cmdline);
  }

  /** The launcher's options that take the next argument as their value. */
  private static final Set<String> WITH_VALUE =
      Set.of(
          "-cp",
          "-classpath",
          "--class-path",
          "-p",
          "--module-path",
          "--upgrade-module-path",
          "--add-modules",
          "--limit-modules",
          "--add-reads",
          "--add-exports",
          "--add-opens",
          "--patch-module");

  /**
   * A JVM's options in the order they apply: {@code JAVA_TOOL_OPTIONS}, then those of its command
   * line ({@code cmdline}, the launcher first) up to the jar, module or main class.
   */
  static List<String> jvmFlags(String toolOptions, List<String> cmdline) {
    List<String> flags = new ArrayList<>();
    if (toolOptions != null && !toolOptions.isBlank()) {
      flags.addAll(List.of(toolOptions.strip().split("\\s+")));
    }
    for (int i = 1; i < cmdline.size(); i++) {
      String a = cmdline.get(i);
      if (a.equals("-jar") || a.equals("-m") || a.equals("--module") || !a.startsWith("-")) {
        break;
      }
      if (WITH_VALUE.contains(a)) {
        i++;
      } else {
        flags.add(a);
      }
    }
    return flags;
  }

  private static String read(String file) {
    try {
      return Files.readString(Path.of(file)).strip();
    } catch (IOException e) {
      return null;
    }
  }

  /** The leased address, else the first IPv4 address of an interface that is up. */
  private static String ip(Map<String, String> env) {
    String leased = env.get("CB_NET_IP");
    if (leased != null && leased.matches("[0-9.]{7,15}")) {
      return leased;
    }
    try {
      for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
        if (nic.isLoopback() || !nic.isUp()) {
          continue;
        }
        for (InetAddress a : Collections.list(nic.getInetAddresses())) {
          if (a instanceof Inet4Address) {
            return a.getHostAddress();
          }
        }
      }
    } catch (SocketException e) {
      return null;
    }
    return null;
  }

  /** Stops the stream and the reporter, the triggers, then returns a running target. */
  @Override
  public void close() {
    for (AutoCloseable c : closers) {
      try {
        c.close();
      } catch (Exception e) {
        LOG.errorf(e, "stopping %s", c.getClass().getSimpleName());
      }
    }
  }
}
