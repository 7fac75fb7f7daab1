package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.pivot.BootController;
import io.chrootbooter.agent.pivot.ConsoleMode;
import io.chrootbooter.agent.sys.SyscallException;
import io.chrootbooter.agent.trigger.DeviceWatcher;
import io.chrootbooter.agent.trigger.KeyboardWatcher;
import io.chrootbooter.agent.trigger.TriggerWatchers;
import io.chrootbooter.protocol.Action;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * The device triggers of a running agent: the hotkey on every evdev device (always read; acted on
 * when the spec enables it) and the serial magic string on a serial port.
 *
 * <p>Who decides about the serial trigger: until a desired state has arrived from the operator
 * (standalone {@code cb.image=}, or the first boot before the stream delivers), the kernel command
 * line's {@code cb.serial=} is the trigger, or there is none. Once a desired state arrives, its
 * {@code returnTriggers.serial} decides, {@code enabled: false} included: the port is then closed
 * and no longer read, so a target that uses it for its console gets every byte typed on it. A spec
 * that enables the trigger without naming a port watches {@code cb.serial}'s port (else {@code
 * ttyS1}); the baud rate is always {@code cb.serial-baud}. A {@code Hold} carries no triggers and
 * changes none. The port is opened only while a serial trigger is configured, and its terminal
 * settings are put back when it is let go.
 */
final class Triggers implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Triggers.class);

  /**
   * The port of a spec that enables the serial trigger and names none, without {@code cb.serial}.
   */
  static final String DEFAULT_DEVICE = "ttyS1";

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
  private Optional<ConsoleMode> serialMode = Optional.empty();

  /**
   * @param devDir {@code /dev}; the input devices are under {@code devDir/input}
   * @param commandLine the serial trigger from {@code cb.serial=}: the trigger until a desired
   *     state arrives, and the port of a desired state that enables the trigger without naming one
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

  /**
   * Applies the return triggers of a desired state from the operator: from now on the spec, not
   * {@code cb.serial=}, decides about the serial trigger. A {@code Hold} changes nothing.
   *
   * @param baud the baud rate of {@code cb.serial-baud}
   */
  synchronized void configure(DesiredState state, int baud) {
    if (state.action() == Action.Hold) {
      return;
    }
    DesiredState.ReturnTriggers triggers = state.returnTriggers();
    hotkeyEnabled = triggers.hotkey();
    configureSerial(serialOf(triggers.serial(), baud));
  }

  /** The serial trigger a spec asks for; empty when it turns it off or names no valid port. */
  Optional<Serial> serialOf(DesiredState.Serial s, int baud) {
    if (!s.enabled()) {
      return Optional.empty();
    }
    if (s.device() == null) {
      Path device = commandLine.map(Serial::device).orElse(devDir.resolve(DEFAULT_DEVICE));
      return Optional.of(new Serial(device, s.magic(), baud));
    }
    if (!s.device().matches("tty[A-Za-z0-9]{1,16}")) {
      LOG.warnf(
          "serial trigger: returnTriggers.serial.device \"%s\" is not a device name such as ttyS1"
              + " (tty and 1 to 16 letters or digits); no serial trigger",
          s.device().replaceAll("[^\\x20-\\x7e]", "?"));
      return Optional.empty();
    }
    return Optional.of(new Serial(devDir.resolve(s.device()), s.magic(), baud));
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
      // Saved first: whoever gets the port after us (a target's getty) finds it as it was.
      serialMode = ConsoleMode.save(s.device());
    } catch (SyscallException e) {
      LOG.warnf(
          "serial trigger: %s; its settings are not restored when it is let go", e.getMessage());
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
      restoreSerialMode();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      restoreSerialMode();
    }
  }

  /** Stops reading the port and puts its terminal settings back. */
  private void closeSerial() {
    if (serialWatcher != null) {
      try {
        serialWatcher.close();
      } catch (IOException e) {
        LOG.warnf("serial trigger: closing %s: %s", serial.device(), e.getMessage());
      }
      LOG.infof("serial trigger: %s let go", serial.device());
      serialWatcher = null;
      serial = null;
    }
    restoreSerialMode();
  }

  private void restoreSerialMode() {
    serialMode.ifPresent(
        mode -> {
          try {
            mode.restore();
          } catch (SyscallException e) {
            LOG.warnf(
                "serial trigger: restoring the settings of %s: %s", mode.console(), e.getMessage());
          }
        });
    serialMode = Optional.empty();
  }

  /** The serial port the trigger reads now: the console relay leaves it alone. */
  synchronized java.util.Set<Path> serialPort() {
    return serial == null ? java.util.Set.of() : java.util.Set.of(serial.device());
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
