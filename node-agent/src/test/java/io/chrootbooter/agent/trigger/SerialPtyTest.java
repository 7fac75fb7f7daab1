package io.chrootbooter.agent.trigger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The serial trigger on a real tty: a pty pair made by python3's {@code os.openpty()}, the agent
 * reading the slave side (a {@code /dev/pts/N} character device in the default cooked mode), the
 * test writing to the master as a remote serial console would.
 */
class SerialPtyTest {
  private static final String PTY =
      """
      import os, sys
      m, s = os.openpty()
      print(os.ttyname(s), flush=True)
      for line in sys.stdin:
          os.write(m, line.encode())
      """;

  @Test
  void magicLineOnAPtyFiresOncePerWholeLine() throws Exception {
    Assumptions.assumeTrue(
        Stream.of(System.getenv("PATH").split(":"))
            .anyMatch(dir -> Files.isExecutable(Path.of(dir, "python3"))),
        "python3 is not installed: it makes the pty pair");
    Process pty = new ProcessBuilder("python3", "-c", PTY).redirectErrorStream(true).start();
    try {
      Path slave =
          Path.of(
              new BufferedReader(
                      new InputStreamReader(pty.getInputStream(), StandardCharsets.UTF_8))
                  .readLine());
      assertThat(slave.toString()).startsWith("/dev/pts/");
      AtomicInteger fired = new AtomicInteger();
      OutputStream master = pty.getOutputStream();
      try (DeviceWatcher watcher =
          TriggerWatchers.serial(slave, "RETURN_TO_BOOTSTRAP", fired::incrementAndGet)) {
        master.write(
            ("login: RETURN_TO_BOOTSTRAP\nRETURN_TO_BOOTSTRAP\nRETURN_TO_\n"
                    + "RETURN_TO_BOOTSTRAP please\nRETURN_TO_BOOTSTRAP\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        master.flush();
        await().atMost(Duration.ofSeconds(10)).until(() -> fired.get() >= 2);
      }
      // The watcher has handled every line before the second magic one, and nothing follows it.
      assertThat(fired).hasValue(2);
    } finally {
      pty.destroy();
      pty.waitFor(10, TimeUnit.SECONDS);
    }
  }
}
