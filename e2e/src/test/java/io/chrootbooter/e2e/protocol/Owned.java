package io.chrootbooter.e2e.protocol;

import java.util.ArrayDeque;
import java.util.Deque;

/**
 * What a test started, closed in reverse order by {@link #close()}: every resource is closed even
 * when an earlier one fails, and the first failure is thrown with the others suppressed.
 */
final class Owned implements AutoCloseable {
  private final Deque<AutoCloseable> resources = new ArrayDeque<>();

  <T extends AutoCloseable> T own(T resource) {
    resources.push(resource);
    return resource;
  }

  @Override
  public void close() throws Exception {
    Exception first = null;
    while (!resources.isEmpty()) {
      try {
        resources.pop().close();
      } catch (Exception e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
