package io.chrootbooter.agent.trigger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.unpack.LinuxSyscalls;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The helper channel under a flood: a real FIFO, its watcher, and a handler that is held up. */
class HelperInboxTest {
  private static final int FLOOD = 100_000;

  @TempDir Path temp;

  @Test
  void aFloodWhileTheControllerIsBusyQueuesNothingAndReturnsOnce() throws Exception {
    Path fifo = temp.resolve("return.fifo");
    new LinuxSyscalls().mknod(fifo, 0010600, 0, 0);
    // The controller's timer thread: one thread, an unbounded queue, as in BootController.
    ThreadPoolExecutor timer =
        new ThreadPoolExecutor(1, 1, 0, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>());
    CountDownLatch graceOver = new CountDownLatch(1);
    List<HelperMessage> handled = new CopyOnWriteArrayList<>();
    HelperInbox inbox =
        new HelperInbox(
            timer,
            message -> {
              handled.add(message);
              try {
                // The first return holds the controller for its grace period.
                graceOver.await(30, TimeUnit.SECONDS);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
    AtomicInteger received = new AtomicInteger();
    AtomicInteger mostQueued = new AtomicInteger();
    try (DeviceWatcher watcher =
        TriggerWatchers.helper(
            fifo,
            message -> {
              inbox.offer(message);
              received.incrementAndGet();
              mostQueued.accumulateAndGet(timer.getQueue().size(), Math::max);
            })) {
      try (OutputStream out = Files.newOutputStream(fifo, StandardOpenOption.WRITE)) {
        out.write("return first\n".getBytes(StandardCharsets.US_ASCII));
        out.flush();
        await().atMost(Duration.ofSeconds(10)).until(() -> handled.size() == 1);
        StringBuilder flood = new StringBuilder();
        for (int i = 0; i < FLOOD; i++) {
          flood.append(i % 2 == 0 ? "return flood " + i : "healthy").append('\n');
        }
        out.write(flood.toString().getBytes(StandardCharsets.US_ASCII));
      }
      await().atMost(Duration.ofSeconds(60)).until(() -> received.get() == FLOOD + 1);

      assertThat(mostQueued.get())
          .as("tasks ever queued for the controller")
          .isLessThanOrEqualTo(1);
      assertThat(handled).containsExactly(new HelperMessage.Return("first"));
      graceOver.countDown();
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> timer.getActiveCount() == 0 && timer.getQueue().isEmpty());
      // The whole flood: one healthy report and one return request, with the first reason.
      assertThat(handled)
          .containsExactly(
              new HelperMessage.Return("first"),
              new HelperMessage.Healthy(),
              new HelperMessage.Return("flood 0"));
    } finally {
      graceOver.countDown();
      timer.shutdownNow();
      assertThat(timer.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }
  }
}
