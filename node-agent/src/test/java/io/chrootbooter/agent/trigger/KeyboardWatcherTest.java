package io.chrootbooter.agent.trigger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.sys.LinuxSyscalls;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
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
    try (KeyboardWatcher watcher =
        KeyboardWatcher.start(input, fired::incrementAndGet, KeyboardWatcherTest::isFifo, 32)) {
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

  private static boolean isFifo(Path path) {
    try {
      return (((Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS))
              & 0170000)
          == 0010000;
    } catch (IOException e) {
      return false;
    }
  }

  /** Only character devices of the input subsystem count, never through a symlink. */
  @Test
  void onlyInputCharacterDevicesAreKeyboards() throws Exception {
    Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "needs mknod(2)");
    Path event = input.resolve("event7");
    new LinuxSyscalls().mknod(event, 0020600, 13, 71);
    Path otherChar = input.resolve("event8");
    new LinuxSyscalls().mknod(otherChar, 0020600, 1, 3); // /dev/null's numbers
    Path file = Files.createFile(input.resolve("event9"));
    Path link = Files.createSymbolicLink(input.resolve("event10"), event);
    assertThat(KeyboardWatcher.isInputDevice(event)).isTrue();
    assertThat(KeyboardWatcher.isInputDevice(otherChar)).isFalse();
    assertThat(KeyboardWatcher.isInputDevice(file)).isFalse();
    assertThat(KeyboardWatcher.isInputDevice(link)).isFalse();
    // dev_t of major 13 minor 64 in glibc's encoding; a block device with the same numbers.
    assertThat(KeyboardWatcher.isInputDevice(0020600, (13L << 8) | 64)).isTrue();
    assertThat(KeyboardWatcher.isInputDevice(0060600, (13L << 8) | 64)).isFalse();
  }

  /**
   * A target shares the bootstrap's devtmpfs: a regular file of Ctrl+Alt+F12 events named like a
   * device fires nothing, and thousands of them hold no descriptors.
   */
  @Test
  void aFileOfHotkeyEventsIsNoKeyboard() throws Exception {
    Path forged = input.resolve("event0");
    write(
        forged,
        EvdevEvent.press(EvdevEvent.KEY_LEFTCTRL),
        EvdevEvent.press(EvdevEvent.KEY_LEFTALT),
        EvdevEvent.press(EvdevEvent.KEY_F12));
    AtomicInteger fired = new AtomicInteger();
    try (KeyboardWatcher watcher = KeyboardWatcher.start(input, fired::incrementAndGet)) {
      for (int i = 1; i <= 200; i++) {
        Files.createFile(input.resolve("event" + (1000 + i)));
      }
      Thread.sleep(500);
      assertThat(watcher.devices()).isEmpty();
    }
    assertThat(fired).hasValue(0);
  }

  @Test
  void devicesAreBoundedAndOneThatEndsIsClosed() throws Exception {
    for (int i = 0; i < 6; i++) {
      Files.createFile(input.resolve("event" + i)); // ends at once: end of file
    }
    try (KeyboardWatcher watcher = KeyboardWatcher.start(input, () -> {}, p -> true, 4)) {
      // At most 4 at once; each ends (end of file) and is dropped, so none stays held.
      await().atMost(Duration.ofSeconds(10)).until(() -> watcher.devices().isEmpty());
    }
    Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "needs mknod(2)");
    Path fifos = Files.createDirectory(input.resolve("fifos"));
    for (int i = 0; i < 6; i++) {
      mkfifo(fifos.resolve("event" + i));
    }
    try (KeyboardWatcher watcher =
        KeyboardWatcher.start(fifos, () -> {}, KeyboardWatcherTest::isFifo, 4)) {
      assertThat(watcher.devices()).hasSize(4);
    }
  }
}
