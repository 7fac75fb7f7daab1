package io.chrootbooter.agent.daemon;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;

/** What the decisions made for one console command answered: lines, or the command's error. */
final class Replies {
  final List<String> lines = new ArrayList<>();
  String error;

  /** A console command's part on the worker. */
  interface Step {
    void run(Replies replies) throws Exception;
  }

  /** Runs {@code step} on {@code worker} and waits: its lines, or its error as an exception. */
  static List<String> onWorker(ExecutorService worker, Step step) throws IOException {
    Replies replies = new Replies();
    try {
      worker
          .submit(
              () -> {
                step.run(replies);
                return null;
              })
          .get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      throw cause instanceof IOException io ? io : new IOException(cause.getMessage(), cause);
    }
    if (replies.error != null) {
      throw new IOException(replies.error);
    }
    return replies.lines;
  }
}
