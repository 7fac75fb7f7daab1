package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.util.Optional;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * The arguments the pipeline commands ({@code fetch}, {@code unpack}, {@code mount}) share, as a
 * picocli mixin: the image's source, its expected SHA-256 and {@code --repeat}.
 */
public final class ImageArguments {
  @Option(names = "--sha256", description = "expected SHA-256, 64 lowercase hex digits")
  String sha256;

  @Option(
      names = "--repeat",
      defaultValue = "1",
      description =
          "run N times in this JVM, each run's time on stderr, undoing each run's output before"
              + " the next (benchmarks: the daemon's JVM is long-running)")
  int repeat;

  @Parameters(index = "0", paramLabel = "SOURCE", description = "file path or http(s) URL")
  String source;

  /** The file path or http(s) URL of the image. */
  public String source() {
    return source;
  }

  /**
   * The expected SHA-256, if given.
   *
   * @throws IllegalArgumentException when it is not 64 lowercase hex digits
   */
  public Optional<String> sha256() {
    if (sha256 != null && !sha256.matches("[0-9a-f]{64}")) {
      throw new IllegalArgumentException(
          "--sha256 \"" + sha256 + "\" is not 64 lowercase hex digits");
    }
    return Optional.ofNullable(sha256);
  }

  /** Runs {@code job} {@code --repeat} times ({@link Repeats}), {@code undo} between two runs. */
  public void repeat(Repeats.Step job, Repeats.Step undo) throws IOException {
    Repeats.run(repeat, job, undo, System.err);
  }
}
