package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.operator.DesiredState;
import io.chrootbooter.agent.pivot.BootController;
import io.chrootbooter.agent.pivot.ReturnTrigger;
import io.chrootbooter.agent.trigger.DeviceWatcher;
import io.chrootbooter.agent.trigger.KeyboardWatcher;
import io.chrootbooter.agent.trigger.TriggerWatchers;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * The device triggers of a running agent: the hotkey on every evdev device (always read; acted on
 * when the spec enables it) and the serial magic string on the port the spec (or {@code cb.serial})
 * names. The serial port is opened only when a serial trigger is configured, so a target that uses
 * the port for its own console keeps it.
 */
final class Triggers implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Triggers.class);

  /** A serial trigger's settings. */
  record Serial(Path device, String magic, int baud) {}

  private final BootController controller;
  private final Path busybox;
  private final Path devDir;
  private final Optional<Serial> commandLine;
  private volatile boolean hotkeyEnabled = true;
  private KeyboardWatcher keyboards;
  private Serial serial;
  private DeviceWatcher serialWatcher;

  /**
   * @param devDir {@code /dev}; the input devices are under {@code devDir/input}
   * @param commandLine the serial trigger from {@code cb.serial=}, used until a spec says otherwise
   */
  Triggers(BootController controller, Path busybox, Path devDir, Optional<Serial> commandLine) {
    this.controller = controller;
    this.busybox = busybox;
    this.devDir = devDir;
    this.commandLine = commandLine;
  }

  /** Starts the hotkey watcher and the command line's serial trigger. */
  synchronized void start() {
    Path input = devDir.resolve("input");
    if (Files.isDirectory(input)) {
      try {
        keyboards = KeyboardWatcher.start(input, this::hotkey);
      } catch (IOException e) {
        LOG.warnf("hotkey: cannot watch %s: %s", input, e.getMessage());
      }
    } else {
      LOG.infof("hotkey: no %s (no evdev devices); Ctrl+Alt+F12 is not watched", input);
    }
    configureSerial(commandLine);
  }

  /** Applies the return triggers of a desired state. */
  synchronized void configure(DesiredState.ReturnTriggers triggers, int baud) {
    hotkeyEnabled = triggers.hotkey();
    DesiredState.Serial s = triggers.serial();
    Optional<Serial> wanted =
        s.enabled() && s.device() != null && s.device().matches("tty[A-Za-z0-9]{1,16}")
            ? Optional.of(new Serial(devDir.resolve(s.device()), s.magic(), baud))
            : commandLine;
    configureSerial(wanted);
  }

  private void hotkey() {
    if (!hotkeyEnabled) {
      LOG.info("Ctrl+Alt+F12 pressed; the hotkey trigger is disabled by the spec");
      return;
    }
    controller.trigger(ReturnTrigger.Hotkey, "Ctrl+Alt+F12");
  }

  private void configureSerial(Optional<Serial> wanted) {
    if (Objects.equals(wanted.orElse(null), serial)) {
      return;
    }
    closeSerial();
    if (wanted.isEmpty()) {
      return;
    }
    Serial s = wanted.get();
    if (!Files.exists(s.device())) {
      LOG.warnf("serial trigger: %s does not exist; not watched", s.device());
      return;
    }
    try {
      // Raw, no echo: the magic string is matched on bytes, and nothing is echoed to the sender.
      Process stty =
          new ProcessBuilder(
                  busybox.toString(),
                  "stty",
                  "-F",
                  s.device().toString(),
                  Integer.toString(s.baud()),
                  "raw",
                  "-echo")
              .redirectErrorStream(true)
              .start();
      String out = new String(stty.getInputStream().readAllBytes()).strip();
      if (stty.waitFor() != 0) {
        LOG.warnf("serial trigger: stty %s: %s", s.device(), out);
      }
      serialWatcher =
          TriggerWatchers.serial(
              s.device(),
              s.magic(),
              () -> controller.trigger(ReturnTrigger.Serial, "magic string on " + s.device()));
      serial = s;
      LOG.infof("serial trigger: watching %s for %s", s.device(), s.magic());
    } catch (IOException e) {
      LOG.warnf("serial trigger: cannot read %s: %s", s.device(), e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void closeSerial() {
    if (serialWatcher != null) {
      try {
        serialWatcher.close();
      } catch (IOException e) {
        LOG.warnf("serial trigger: closing %s: %s", serial.device(), e.getMessage());
      }
      serialWatcher = null;
      serial = null;
    }
  }

  /** The keyboards being read, for the console and tests. */
  synchronized List<Path> keyboards() {
    return keyboards == null ? List.of() : keyboards.devices();
  }

  @Override
  public synchronized void close() throws IOException {
    closeSerial();
    if (keyboards != null) {
      keyboards.close();
    }
  }
}
