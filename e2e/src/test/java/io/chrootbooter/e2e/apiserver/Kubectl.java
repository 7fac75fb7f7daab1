package io.chrootbooter.e2e.apiserver;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs a real kubectl binary against one kubeconfig, with its own HOME (so its discovery cache and
 * config stay in the test's directory), and owns every process it starts: {@link #close()} kills
 * the ones still running, so a failing test leaves none behind.
 */
final class Kubectl implements AutoCloseable {

  private static final Duration TIMEOUT = Duration.ofSeconds(60);

  private final Path binary;
  private final Path kubeconfig;
  private final Path home;
  private final List<Process> started = new ArrayList<>();

  /** What a finished kubectl run printed. */
  record Result(int exitCode, String stdout, String stderr) {
    @Override
    public String toString() {
      return "exit " + exitCode + "\n--- stdout\n" + stdout + "\n--- stderr\n" + stderr;
    }
  }

  /** A kubectl that keeps running ({@code get -w}); its output goes to a file. */
  record Background(Process process, Path stdout) {
    String output() throws IOException {
      return Files.readString(stdout);
    }
  }

  /**
   * The binary named by a system property or, failing that, an environment variable of the same
   * name ({@code -DCB_KUBECTL=...} or {@code CB_KUBECTL=...}), else the default.
   */
  static Path binary(String name, String defaultPath) {
    String configured = System.getProperty(name, System.getenv(name));
    return Path.of(configured == null || configured.isBlank() ? defaultPath : configured);
  }

  Kubectl(Path binary, Path kubeconfig, Path home) {
    this.binary = binary;
    this.kubeconfig = kubeconfig;
    this.home = home;
  }

  /** Runs to completion (at most a minute), with extra environment variables. */
  Result run(Map<String, String> env, String... args) throws IOException, InterruptedException {
    Path out = Files.createTempFile(home, "kubectl", ".out");
    Path err = Files.createTempFile(home, "kubectl", ".err");
    Process p = builder(env, args).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    started.add(p);
    if (!p.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
      p.destroyForcibly().waitFor();
      throw new AssertionError(
          "kubectl "
              + String.join(" ", args)
              + " ran longer than "
              + TIMEOUT
              + "\n"
              + Files.readString(out)
              + Files.readString(err));
    }
    return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
  }

  Result run(String... args) throws IOException, InterruptedException {
    return run(Map.of(), args);
  }

  /** Starts kubectl and returns at once; {@link #close()} stops it if the test does not. */
  Background start(String... args) throws IOException {
    Path out = Files.createTempFile(home, "kubectl-bg", ".out");
    Process p =
        builder(Map.of(), args).redirectOutput(out.toFile()).redirectErrorStream(true).start();
    started.add(p);
    return new Background(p, out);
  }

  private ProcessBuilder builder(Map<String, String> env, String... args) {
    List<String> command =
        new ArrayList<>(List.of(binary.toString(), "--kubeconfig", kubeconfig.toString()));
    command.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(command);
    pb.environment().remove("KUBECONFIG");
    pb.environment().put("HOME", home.toString());
    pb.environment().putAll(env);
    return pb;
  }

  @Override
  public void close() throws InterruptedException {
    for (Process p : started) {
      if (p.isAlive()) {
        p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    }
  }
}
