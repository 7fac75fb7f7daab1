package io.chrootbooter.testkit;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * What a fixture must undo, newest first: on {@link #close()}, and from a shutdown hook when the
 * JVM ends (a killed build, a test that never reached its {@code @AfterAll}) before that. Every
 * step runs even when an earlier one failed; the first failure is thrown with the rest suppressed.
 */
final class Teardown implements AutoCloseable {
  /** One step of the teardown. */
  interface Step {
    void run() throws Exception;
  }

  private final Deque<Step> steps = new ArrayDeque<>();
  private final Thread hook;
  private boolean closed;

  Teardown(String what) {
    hook = new Thread(this::closeQuietly, "teardown of " + what);
    Runtime.getRuntime().addShutdownHook(hook);
  }

  /** Adds a step, undone before every step added earlier. */
  synchronized void push(Step step) {
    if (closed) {
      throw new IllegalStateException("torn down already");
    }
    steps.push(step);
  }

  /** Undoes the newest step now (a machine stopped while the network stays). */
  void popAndRun() throws Exception {
    Step step;
    synchronized (this) {
      step = steps.poll();
    }
    if (step != null) {
      step.run();
    }
  }

  @Override
  public void close() throws Exception {
    List<Exception> failures = new ArrayList<>();
    while (true) {
      Step step;
      synchronized (this) {
        closed = true;
        step = steps.poll();
      }
      if (step == null) {
        break;
      }
      try {
        step.run();
      } catch (Exception e) {
        failures.add(e);
      }
    }
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException | SecurityException e) {
      // the JVM is shutting down: this is the hook's own run
    }
    if (!failures.isEmpty()) {
      Exception first = failures.get(0);
      failures.subList(1, failures.size()).forEach(first::addSuppressed);
      throw first;
    }
  }

  private void closeQuietly() {
    try {
      close();
    } catch (Exception e) {
      System.err.println(hook.getName() + ": " + e);
    }
  }
}
