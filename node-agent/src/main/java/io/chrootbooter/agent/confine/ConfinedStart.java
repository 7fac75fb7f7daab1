package io.chrootbooter.agent.confine;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Starts a process with the confinement of a {@link io.chrootbooter.protocol.Confinement#Confined}
 * target: on a thread of its own, which drops {@link BoundingSet#DROPPED} from its bounding set,
 * loads the {@link SeccompFilter}, starts the process (the JDK forks it from the calling thread,
 * and a child inherits both) and ends. No other thread of the agent is touched.
 */
public final class ConfinedStart {
  private ConfinedStart() {}

  /** Starts {@code builder}'s process confined; nothing is started when confining fails. */
  public static Process start(ProcessBuilder builder) throws IOException {
    AtomicReference<Process> started = new AtomicReference<>();
    AtomicReference<Throwable> failed = new AtomicReference<>();
    Thread thread =
        new Thread(
            () -> {
              try {
                BoundingSet.dropFromThisThread();
                SeccompFilter.loadOntoThisThread();
                started.set(builder.start());
              } catch (Throwable e) {
                failed.set(e);
              }
            },
            "cb-confined-start");
    thread.setDaemon(true);
    thread.start();
    // Not interruptible: a process the thread starts is handed to the caller, never left behind.
    boolean interrupted = false;
    while (true) {
      try {
        thread.join();
        break;
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    Throwable e = failed.get();
    if (e instanceof IOException io) {
      throw io;
    }
    if (e != null) {
      throw new IOException("cannot confine the target: " + e, e);
    }
    return started.get();
  }
}
