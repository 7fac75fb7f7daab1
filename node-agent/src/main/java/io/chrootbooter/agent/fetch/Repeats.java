package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.io.PrintStream;

/**
 * {@code --repeat N} of the pipeline commands ({@code fetch}, {@code unpack}, {@code mount}): the
 * same job N times in one JVM, each run's wall time on stderr as {@code run I of N: S.SSS s}, and
 * each run's output undone (untimed) before the next. The agent in a bootstrap is a long-running
 * daemon whose JVM is up, and compiled, long before a download starts; {@code bench/download.sh}
 * measures that steady state instead of JVM start-up.
 */
public final class Repeats {
  /** One run, or one undo. */
  @FunctionalInterface
  public interface Step {
    void run() throws IOException;
  }

  private Repeats() {}

  /**
   * Runs {@code job} {@code times} times, calling {@code undo} between two runs.
   *
   * @throws IllegalArgumentException when {@code times} is below 1
   */
  public static void run(int times, Step job, Step undo, PrintStream err) throws IOException {
    if (times < 1) {
      throw new IllegalArgumentException("--repeat " + times + " is not 1 or more");
    }
    for (int i = 1; i <= times; i++) {
      long start = System.nanoTime();
      job.run();
      double seconds = (System.nanoTime() - start) / 1e9;
      if (times > 1) {
        err.printf("run %d of %d: %.3f s%n", i, times, seconds);
        if (i < times) {
          undo.run();
        }
      }
    }
  }
}
