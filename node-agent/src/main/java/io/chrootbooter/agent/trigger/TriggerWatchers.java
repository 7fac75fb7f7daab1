package io.chrootbooter.agent.trigger;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.function.Consumer;

/** Starts the device triggers: each a {@link DeviceWatcher} feeding a pure decoder. */
public final class TriggerWatchers {
  /** A helper line longer than this is dropped: the target is untrusted. */
  private static final int MAX_LINE = 512;

  private TriggerWatchers() {}

  /** Watches one evdev keyboard for Ctrl+Alt+F12. */
  public static DeviceWatcher hotkey(Path device, Runnable onHotkey) throws IOException {
    return hotkey(device, onHotkey, () -> {});
  }

  /** As {@link #hotkey(Path, Runnable)}; {@code onEnd} runs when the device ends. */
  public static DeviceWatcher hotkey(Path device, Runnable onHotkey, Runnable onEnd)
      throws IOException {
    HotkeyDetector detector = new HotkeyDetector();
    return DeviceWatcher.start(
        device,
        EvdevEvent.SIZE,
        chunk -> {
          while (chunk.remaining() >= EvdevEvent.SIZE) {
            if (detector.accept(EvdevEvent.decode(chunk))) {
              onHotkey.run();
            }
          }
        },
        onEnd);
  }

  /**
   * Watches a serial port (or FIFO) for a line that is exactly {@code magic}. Line settings (baud,
   * raw mode) are the caller's: {@code stty -F DEV BAUD raw -echo}.
   */
  public static DeviceWatcher serial(Path device, String magic, Runnable onMagic)
      throws IOException {
    MagicLineMatcher matcher = new MagicLineMatcher(magic);
    return DeviceWatcher.start(
        device,
        1,
        chunk -> {
          byte[] bytes = new byte[chunk.remaining()];
          chunk.get(bytes);
          if (matcher.accept(bytes, 0, bytes.length)) {
            onMagic.run();
          }
        });
  }

  /** Reads the helper FIFO line by line. */
  public static DeviceWatcher helper(Path fifo, Consumer<HelperMessage> onMessage)
      throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    boolean[] overflow = {false};
    return DeviceWatcher.start(
        fifo,
        1,
        (ByteBuffer chunk) -> {
          while (chunk.hasRemaining()) {
            byte b = chunk.get();
            if (b == '\n') {
              if (!overflow[0]) {
                HelperMessage.parse(line.toString(StandardCharsets.UTF_8)).ifPresent(onMessage);
              }
              line.reset();
              overflow[0] = false;
            } else if (line.size() < MAX_LINE) {
              line.write(b);
            } else {
              overflow[0] = true;
            }
          }
        });
  }
}
