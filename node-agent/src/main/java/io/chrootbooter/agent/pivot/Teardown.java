package io.chrootbooter.agent.pivot;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * An explicit teardown list: each acquired resource is pushed with the action that releases it;
 * {@link #close()} runs them in reverse order, every one of them even when an earlier one fails,
 * then throws the first failure with the others suppressed.
 */
public final class Teardown implements AutoCloseable {
  /** Releases one resource. */
  @FunctionalInterface
  public interface Step {
    void release() throws IOException;
  }

  private record Named(String name, Step step) {}

  private final Deque<Named> steps = new ArrayDeque<>();

  /** Registers the release of a resource just acquired. */
  public synchronized void push(String name, Step step) {
    steps.push(new Named(name, step));
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    while (true) {
      Named next;
      synchronized (this) {
        next = steps.poll();
      }
      if (next == null) {
        break;
      }
      try {
        next.step().release();
      } catch (IOException | RuntimeException e) {
        IOException wrapped =
            new IOException("teardown of " + next.name() + ": " + e.getMessage(), e);
        if (first == null) {
          first = wrapped;
        } else {
          first.addSuppressed(wrapped);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
