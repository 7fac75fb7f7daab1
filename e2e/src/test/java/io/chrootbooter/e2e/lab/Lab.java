package io.chrootbooter.e2e.lab;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * One lab started by the repository's own {@code ./lab up} script, in a state folder and a network
 * namespace of its own (so it never meets a lab a person is running), and taken down by {@link
 * #close()} with {@code ./lab down}: every process, namespace and file the script made. A JVM
 * shutdown hook runs the same {@code down} should the test JVM be stopped before the test's own
 * teardown runs.
 */
final class Lab implements AutoCloseable {
  private static final Duration UP_TIMEOUT = Duration.ofMinutes(10);
  private static final Duration COMMAND_TIMEOUT = Duration.ofMinutes(1);

  private final Path script;
  private final Path dir;
  private final Map<String, String> env;
  private final Thread shutdownHook;
  private LabEnv labEnv;
  private boolean closed;

  private Lab(Path script, Path dir, Map<String, String> env) {
    this.script = script;
    this.dir = dir;
    this.env = Map.copyOf(env);
    this.shutdownHook = new Thread(this::downQuietly, "lab-down");
  }

  /**
   * Runs {@code ./lab up ARGS} as a newcomer does, with the lab's state in {@code dir/state} and a
   * network namespace of its own: it installs what is missing, builds what is stale, computes the
   * embedded API server's classpath from the reactor's own files, and uses the embedded API (no
   * {@code KUBECONFIG} is passed on). The one other setting is where the Debian image is cached.
   */
  static Lab up(Path repository, Path dir, String... args)
      throws IOException, InterruptedException {
    Map<String, String> env = environment(repository, dir);
    Lab lab = new Lab(repository.resolve("lab"), dir, env);
    Runtime.getRuntime().addShutdownHook(lab.shutdownHook);
    List<String> command = new ArrayList<>(List.of("up"));
    command.addAll(List.of(args));
    try {
      lab.run(UP_TIMEOUT, "up", command);
      lab.labEnv = LabEnv.read(dir.resolve("state/lab.env"));
      return lab;
    } catch (IOException | RuntimeException | InterruptedException | AssertionError e) {
      lab.close();
      throw e;
    }
  }

  /** The network namespace of this JVM's labs. */
  static String name() {
    return "cbe2e" + ProcessHandle.current().pid() % 100_000;
  }

  /**
   * The settings every lab of the tests gets: its own state folder and network namespace, so it
   * never meets a lab a person is running, and the Debian image cache of node-agent's tests, whose
   * SystemdTargetTest builds the same image (same script, same digest) earlier in a reactor run.
   */
  private static Map<String, String> environment(Path repository, Path dir) {
    Map<String, String> env = new HashMap<>();
    env.put("LAB_STATE", dir.resolve("state").toString());
    env.put("LAB_NAME", name());
    env.put(
        "LAB_DEBIAN_CACHE",
        Optional.ofNullable(System.getenv("LAB_DEBIAN_CACHE"))
            .orElse(repository.resolve("node-agent/target/image-cache").toString()));
    return env;
  }

  /**
   * Starts {@code ./lab up ARGS} and returns at once, for a test that acts while it runs; its
   * output goes to {@code dir/lab-up.log}. The caller waits for it and runs {@link #downAfter}.
   */
  static Process start(Path repository, Path dir, String... args) throws IOException {
    List<String> command = new ArrayList<>(List.of(repository.resolve("lab").toString(), "up"));
    command.addAll(List.of(args));
    ProcessBuilder builder =
        new ProcessBuilder(command)
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("lab-up.log").toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    builder.environment().remove("KUBECONFIG");
    builder.environment().putAll(environment(repository, dir));
    return builder.start();
  }

  /** Runs {@code ./lab down} for a lab {@link #start} began, whatever state it is in. */
  static void downAfter(Path repository, Path dir) throws IOException, InterruptedException {
    new Lab(repository.resolve("lab"), dir, environment(repository, dir)).close();
  }

  LabEnv env() {
    return labEnv;
  }

  /** The repository whose {@code ./lab} this is. */
  Path repository() {
    return script.getParent();
  }

  /** The lab's state folder ({@code LAB_STATE}): logs, reports, machines. */
  Path stateDir() {
    return dir.resolve("state");
  }

  /** Types a line on the machine's console (ttyS0), as a person at a serial terminal would. */
  void type(String machine, String line) throws IOException, InterruptedException {
    run(COMMAND_TIMEOUT, "type", List.of("type", machine, line));
  }

  /** Presses keys on the machine's PS/2 keyboard through QEMU's monitor ({@code sendkey}). */
  void key(String machine, String keys) throws IOException, InterruptedException {
    run(COMMAND_TIMEOUT, "key", List.of("key", machine, keys));
  }

  /** Powers the machine on or off ({@code ./lab power MACHINE on|off}): off is a pulled plug. */
  void power(String machine, String state) throws IOException, InterruptedException {
    run(COMMAND_TIMEOUT, "power", List.of("power", machine, state));
  }

  /** Writes a line to the machine's second serial port (ttyS1). */
  void serial(String machine, String line) throws IOException, InterruptedException {
    run(COMMAND_TIMEOUT, "serial", List.of("serial", machine, line));
  }

  /** What a finished command printed (stdout and stderr apart) and its exit code. */
  record Result(int exitCode, String stdout, String stderr) {
    @Override
    public String toString() {
      return "exit " + exitCode + "\n--- stdout\n" + stdout + "\n--- stderr\n" + stderr;
    }
  }

  /**
   * Runs {@code ./lab test ARGS} (BootTests, the keys their returns checks wait for, the JUnit
   * summary) and returns what it printed, whatever its exit code.
   */
  Result test(Duration timeout, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(script.toString(), "test"));
    command.addAll(List.of(args));
    ProcessBuilder builder = new ProcessBuilder(command);
    builder.environment().remove("KUBECONFIG");
    builder.environment().putAll(env);
    return finish(builder, "lab-test", timeout);
  }

  /**
   * Runs the {@code kubectl boot} plugin {@code ./lab up} installed, as a user of the lab does
   * after {@code eval "$(./lab env)"}: the lab's kubeconfig (its user's token) and the operator's
   * admin port from {@code KUBECTL_BOOT_OPERATOR}.
   */
  Result kubectlBoot(Duration timeout, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(pluginCommand());
    command.addAll(List.of(args));
    return finish(pluginEnvironment(new ProcessBuilder(command)), "kubectl-boot", timeout);
  }

  private List<String> pluginCommand() {
    return List.of(
        Path.of(labEnv.get("PLUGIN_BIN"), "kubectl-boot").toString(),
        "--kubeconfig",
        labEnv.kubeconfig().toString());
  }

  private ProcessBuilder pluginEnvironment(ProcessBuilder builder) throws IOException {
    builder.environment().remove("KUBECONFIG");
    builder.environment().put("KUBECTL_BOOT_OPERATOR", labEnv.get("OPERATOR_ADMIN_URL"));
    builder.environment().put("JAVA_HOME", System.getProperty("java.home"));
    builder.environment().put("HOME", Files.createDirectories(dir.resolve("home")).toString());
    return builder;
  }

  private Result finish(ProcessBuilder builder, String name, Duration timeout)
      throws IOException, InterruptedException {
    Path out = Files.createTempFile(dir, name, ".out");
    Path err = Files.createTempFile(dir, name, ".err");
    builder
        .redirectOutput(out.toFile())
        .redirectError(err.toFile())
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    Process p = builder.start();
    if (!p.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
      p.descendants().forEach(ProcessHandle::destroy);
      p.destroy();
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly().waitFor();
      }
      throw new AssertionError(
          String.join(" ", builder.command())
              + " ran longer than "
              + timeout
              + ":\n"
              + read(out)
              + read(err));
    }
    return new Result(p.exitValue(), read(out), read(err));
  }

  /**
   * {@code kubectl boot console MACHINE} on a pseudo-terminal of its own ({@code script}), as a
   * person at a terminal runs it: what is typed goes to the plugin's terminal, and what it shows is
   * kept. {@link ConsoleSession#close()} ends it if it still runs.
   */
  ConsoleSession attach(String machine) throws IOException {
    String command =
        String.join(" ", pluginCommand().stream().map(Lab::quoted).toList())
            + " console "
            + quoted(machine);
    Path out = Files.createTempFile(dir, "console-" + machine, ".out");
    ProcessBuilder builder =
        pluginEnvironment(
            new ProcessBuilder(SCRIPT.toString(), "-q", "-f", "-e", "-c", command, "/dev/null"));
    builder.redirectErrorStream(true).redirectOutput(out.toFile());
    return new ConsoleSession(builder.start(), out);
  }

  /** The program that gives the plugin its terminal (util-linux, which the lab installs). */
  static final Path SCRIPT = Path.of("/usr/bin/script");

  private static String quoted(String s) {
    return "'" + s.replace("'", "'\\''") + "'";
  }

  /** A {@code kubectl boot console} running on a terminal. */
  static final class ConsoleSession implements AutoCloseable {
    private final Process process;
    private final Path output;

    private ConsoleSession(Process process, Path output) {
      this.process = process;
      this.output = output;
    }

    /** Types on the terminal: a line ends with a carriage return, as a keyboard's Enter does. */
    void type(String keys) throws IOException {
      process.getOutputStream().write(keys.getBytes(StandardCharsets.UTF_8));
      process.getOutputStream().flush();
    }

    /** What the terminal showed so far, escape sequences and carriage returns taken out. */
    String screen() {
      return clean(read(output));
    }

    boolean alive() {
      return process.isAlive();
    }

    /** The plugin's exit code once it ended (the terminal's program passes it on). */
    int awaitExit(Duration timeout) throws InterruptedException {
      if (!process.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
        throw new AssertionError(
            "kubectl boot console still runs after " + timeout + ":\n" + screen());
      }
      return process.exitValue();
    }

    @Override
    public void close() throws InterruptedException {
      if (process.isAlive()) {
        process.descendants().forEach(ProcessHandle::destroy);
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
          process.descendants().forEach(ProcessHandle::destroyForcibly);
          process.destroyForcibly().waitFor();
        }
      }
    }
  }

  /** Everything the machine printed on its console so far, escape sequences and all. */
  String console(String machine) {
    return read(labEnv.machineDir(machine).resolve("console.log"));
  }

  /** A log of the lab's processes: operator, pxe, apiserver, dnsmasq, images. */
  String log(String name) {
    return read(dir.resolve("state/logs/" + name + ".log"));
  }

  /** A console's text, readable: no terminal escapes, no carriage returns. */
  static String clean(String text) {
    return text.replaceAll("\u001b\\[[0-9;?]*[a-zA-Z]", "").replace("\r", "");
  }

  /** The end of a text, readable: no terminal escapes, no carriage returns. */
  static String tail(String text, int lines) {
    String[] all = clean(text).split("\n", -1);
    int from = Math.max(0, all.length - lines);
    return String.join("\n", Arrays.copyOfRange(all, from, all.length));
  }

  private static String read(Path file) {
    try {
      return Files.exists(file) ? Files.readString(file, StandardCharsets.ISO_8859_1) : "";
    } catch (IOException e) {
      return "(cannot read " + file + ": " + e.getMessage() + ")";
    }
  }

  private void run(Duration timeout, String name, List<String> args)
      throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(script.toString()));
    command.addAll(args);
    Path output = dir.resolve("lab-" + name + ".log");
    ProcessBuilder builder =
        new ProcessBuilder(command)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(output.toFile()))
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    builder.environment().remove("KUBECONFIG");
    builder.environment().putAll(env);
    Process p = builder.start();
    if (!p.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
      p.destroy();
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly().waitFor();
      }
      throw new AssertionError(
          "./lab " + String.join(" ", args) + " ran longer than " + timeout + ":\n" + read(output));
    }
    if (p.exitValue() != 0) {
      throw new AssertionError(
          "./lab " + String.join(" ", args) + " exited " + p.exitValue() + ":\n" + read(output));
    }
  }

  private void downQuietly() {
    try {
      down();
    } catch (IOException | InterruptedException | AssertionError e) {
      System.err.println("./lab down failed: " + e.getMessage());
    }
  }

  private synchronized void down() throws IOException, InterruptedException {
    if (!closed) {
      closed = true;
      run(COMMAND_TIMEOUT, "down", List.of("down"));
    }
  }

  @Override
  public void close() throws IOException, InterruptedException {
    try {
      down();
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(shutdownHook);
      } catch (IllegalStateException shuttingDown) {
        // The JVM is already exiting: the hook runs (or ran) down, which is idempotent.
      }
    }
  }
}
