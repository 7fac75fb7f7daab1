package io.chrootbooter.e2e.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs {@code kubectl boot} as a user does, in a process of its own: the built file {@code
 * cli/target/kubectl-boot} when it is asked for ({@link #file()}), else the plugin's main class on
 * the classpath the file is built from ({@code cli/target/classes} and {@code cli-classpath.txt}).
 * Owns every process it starts: {@link #close()} kills those still running.
 */
final class Plugin implements AutoCloseable {

  static final Path REPO = Path.of("..").toAbsolutePath().normalize();
  static final Path FILE = REPO.resolve("cli/target/kubectl-boot");
  private static final Path CLASSES = REPO.resolve("cli/target/classes");
  private static final Path CLASSPATH = REPO.resolve("cli/target/cli-classpath.txt");
  private static final Duration TIMEOUT = Duration.ofSeconds(60);

  /** What a finished run printed. */
  record Result(int exitCode, String stdout, String stderr) {
    @Override
    public String toString() {
      return "exit " + exitCode + "\n--- stdout\n" + stdout + "\n--- stderr\n" + stderr;
    }
  }

  /** A run still going: its stdin is open for keystrokes. */
  record Running(Process process, Path stdout, Path stderr) {
    OutputStream stdin() {
      return process.getOutputStream();
    }

    String output() throws IOException {
      return Files.readString(stdout);
    }

    Result await() throws IOException, InterruptedException {
      if (!process.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor();
        throw new AssertionError("kubectl boot ran longer than " + TIMEOUT + "\n" + output());
      }
      return new Result(process.exitValue(), output(), Files.readString(stderr));
    }
  }

  private final Path home;
  private final List<String> prefix;
  private final List<Process> started = new ArrayList<>();

  private Plugin(Path home, List<String> prefix) {
    this.home = home;
    this.prefix = prefix;
  }

  /** Why the main class cannot run, or null when it can: its classpath file is missing. */
  static String missing() {
    return Files.isReadable(CLASSPATH)
        ? null
        : CLASSPATH + " is missing; skipped. Build the cli module: mvn -pl cli -am package";
  }

  /** The main class, on the file's classpath. */
  static Plugin mainClass(Path home) throws IOException {
    if (missing() != null) {
      throw new IllegalStateException(missing());
    }
    String cp = CLASSES + java.io.File.pathSeparator + Files.readString(CLASSPATH).strip();
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    return new Plugin(home, List.of(java, "-cp", cp, "io.chrootbooter.cli.KubectlBoot"));
  }

  /** The built file itself. */
  static Plugin file(Path home) {
    return new Plugin(home, List.of(FILE.toString()));
  }

  Result run(String... args) throws IOException, InterruptedException {
    return start(Map.of(), args).await();
  }

  Result run(Map<String, String> env, String... args) throws IOException, InterruptedException {
    return start(env, args).await();
  }

  Running start(Map<String, String> env, String... args) throws IOException {
    List<String> command = new ArrayList<>(prefix);
    command.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(command);
    pb.environment().remove("KUBECONFIG");
    pb.environment().remove("KUBECTL_BOOT_OPERATOR");
    pb.environment().put("HOME", home.toString());
    pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
    pb.environment().putAll(env);
    Path out = Files.createTempFile(home, "plugin", ".out");
    Path err = Files.createTempFile(home, "plugin", ".err");
    pb.redirectOutput(out.toFile()).redirectError(err.toFile());
    Process p = pb.start();
    started.add(p);
    return new Running(p, out, err);
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
