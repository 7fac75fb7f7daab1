package io.chrootbooter.agent.trigger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.unpack.LinuxSyscalls;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The hotkey path end to end on FIFOs standing in for {@code /dev/input/event*} (this host has no
 * input devices and no uinput): bytes in, one trigger out, devices that appear later included.
 */
class KeyboardWatcherTest {
  @TempDir Path input;

  private static void mkfifo(Path path) throws IOException {
    new LinuxSyscalls().mknod(path, 0010600, 0, 0);
  }

  private static void write(Path device, EvdevEvent... events) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (EvdevEvent e : events) {
      bytes.write(e.encode());
    }
    try (OutputStream out = Files.newOutputStream(device)) {
      out.write(bytes.toByteArray());
    }
  }

  @Test
  void firesForEachKeyboardIncludingOnesPluggedInLaterButNeverAcrossKeyboards() throws Exception {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")) || Files.isWritable(input),
        "needs mknod(2) of a FIFO");
    Path event0 = input.resolve("event0");
    mkfifo(event0);
    Files.createFile(input.resolve("mice"));
    AtomicInteger fired = new AtomicInteger();
    try (KeyboardWatcher watcher = KeyboardWatcher.start(input, fired::incrementAndGet)) {
      assertThat(watcher.devices()).containsExactly(event0);

      Path event1 = input.resolve("event1");
      mkfifo(event1);
      await().atMost(Duration.ofSeconds(10)).until(() -> watcher.devices().contains(event1));

      // Ctrl and Alt on one keyboard, F12 on the other: not the hotkey.
      write(
          event0,
          EvdevEvent.press(EvdevEvent.KEY_LEFTCTRL),
          EvdevEvent.press(EvdevEvent.KEY_LEFTALT));
      write(event1, EvdevEvent.press(EvdevEvent.KEY_F12), EvdevEvent.release(EvdevEvent.KEY_F12));
      // The whole chord on the new keyboard: the hotkey, once.
      write(
          event1,
          EvdevEvent.press(EvdevEvent.KEY_RIGHTCTRL),
          EvdevEvent.press(EvdevEvent.KEY_RIGHTALT),
          EvdevEvent.press(EvdevEvent.KEY_F12));
      await().atMost(Duration.ofSeconds(10)).until(() -> fired.get() >= 1);
      // F12 again on event0, whose Ctrl+Alt are still held: the second hotkey.
      write(event0, EvdevEvent.press(EvdevEvent.KEY_F12));
      await().atMost(Duration.ofSeconds(10)).until(() -> fired.get() >= 2);
      assertThat(watcher.devices()).containsExactlyInAnyOrder(event0, event1);
    }
    assertThat(fired).hasValue(2);
  }
}
