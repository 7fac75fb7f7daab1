package io.chrootbooter.agent.trigger;

import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.jboss.logging.Logger;

/**
 * Ctrl+Alt+F12 from every {@code event*} device in a directory ({@code /dev/input}), including
 * devices that appear later (a USB keyboard plugged in while the target runs): the directory is
 * watched with inotify (through {@link WatchService}), each device read by its own {@link
 * DeviceWatcher} with its own {@link HotkeyDetector}, so modifiers held on one keyboard never
 * combine with keys of another. A device that goes away ends its watcher with a warning and is
 * closed.
 *
 * <p>Only input devices are read: character devices of the input subsystem (major 13), not any file
 * named {@code event*}. A target shares the bootstrap's devtmpfs and could otherwise create a
 * regular file of Ctrl+Alt+F12 events there to fire the hotkey, or thousands of files to hold as
 * many descriptors. At most {@link #MAX_DEVICES} devices are read at once.
 */
public final class KeyboardWatcher implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(KeyboardWatcher.class);

  /** Input devices read at once: more keyboards than any machine has. */
  static final int MAX_DEVICES = 32;

  /** The input subsystem's character-device major number (Documentation/admin-guide/devices). */
  static final int INPUT_MAJOR = 13;

  private final Path dir;
  private final Runnable onHotkey;
  private final Predicate<Path> isInputDevice;
  private final int maxDevices;
  private final WatchService watchService;
  private final Map<Path, DeviceWatcher> devices = new LinkedHashMap<>();
  private final Thread thread;

  private KeyboardWatcher(
      Path dir,
      Runnable onHotkey,
      WatchService watchService,
      Predicate<Path> isInputDevice,
      int maxDevices) {
    this.dir = dir;
    this.onHotkey = onHotkey;
    this.isInputDevice = isInputDevice;
    this.maxDevices = maxDevices;
    this.watchService = watchService;
    this.thread = new Thread(this::loop, "cb-watch-" + dir);
    thread.setDaemon(true);
  }

  /** Starts watching {@code dir}; {@code onHotkey} runs on a device's watcher thread. */
  public static KeyboardWatcher start(Path dir, Runnable onHotkey) throws IOException {
    return start(dir, onHotkey, KeyboardWatcher::isInputDevice, MAX_DEVICES);
  }

  /** As {@link #start(Path, Runnable)}, with the test of a device and the bound given. */
  static KeyboardWatcher start(
      Path dir, Runnable onHotkey, Predicate<Path> isInputDevice, int maxDevices)
      throws IOException {
    WatchService ws = dir.getFileSystem().newWatchService();
    KeyboardWatcher watcher = new KeyboardWatcher(dir, onHotkey, ws, isInputDevice, maxDevices);
    // Register before listing: a device created in between is seen twice, never missed.
    dir.register(ws, StandardWatchEventKinds.ENTRY_CREATE);
    try (DirectoryStream<Path> existing = Files.newDirectoryStream(dir, "event*")) {
      for (Path device : existing) {
        watcher.add(device);
      }
    }
    watcher.thread.start();
    return watcher;
  }

  private synchronized void add(Path device) {
    if (devices.containsKey(device)) {
      return;
    }
    if (!isInputDevice.test(device)) {
      LOG.warnf("hotkey: %s is not an input device (character device, major 13); not read", device);
      return;
    }
    if (devices.size() >= maxDevices) {
      LOG.warnf("hotkey: %d input devices read already; %s not read", maxDevices, device);
      return;
    }
    try {
      devices.put(device, TriggerWatchers.hotkey(device, onHotkey, () -> ended(device)));
      LOG.infof("hotkey: reading %s", device);
    } catch (IOException e) {
      LOG.warnf("hotkey: cannot read %s: %s", device, e.getMessage());
    }
  }

  /** A device ended (unplugged, end of file): its descriptor goes. */
  private void ended(Path device) {
    DeviceWatcher watcher;
    synchronized (this) {
      watcher = devices.remove(device);
    }
    if (watcher != null) {
      try {
        watcher.close();
      } catch (IOException e) {
        LOG.debugf("hotkey: closing %s: %s", device, e.getMessage());
      }
    }
  }

  /** A character device of the input subsystem, the path itself (no symlink followed). */
  static boolean isInputDevice(Path device) {
    try {
      Map<String, Object> a =
          Files.readAttributes(device, "unix:mode,rdev", LinkOption.NOFOLLOW_LINKS);
      return isInputDevice((Integer) a.get("mode"), (Long) a.get("rdev"));
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** {@code st_mode} and {@code st_rdev} of a character device with major {@link #INPUT_MAJOR}. */
  static boolean isInputDevice(int mode, long rdev) {
    // glibc's gnu_dev_major: bits 8-19 and 32-43 of the 64-bit dev_t.
    long major = ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL);
    return (mode & 0170000) == 0020000 && major == INPUT_MAJOR;
  }

  private void loop() {
    try {
      while (true) {
        WatchKey key = watchService.take();
        for (WatchEvent<?> event : key.pollEvents()) {
          if (event.context() instanceof Path name && name.toString().startsWith("event")) {
            add(dir.resolve(name));
          }
        }
        key.reset();
      }
    } catch (ClosedWatchServiceException e) {
      LOG.debugf("hotkey: stopped watching %s", dir);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** The devices being read. */
  public synchronized List<Path> devices() {
    return List.copyOf(devices.keySet());
  }

  @Override
  public void close() throws IOException {
    watchService.close();
    List<DeviceWatcher> watchers;
    synchronized (this) {
      watchers = new ArrayList<>(devices.values());
      devices.clear();
    }
    IOException first = null;
    for (DeviceWatcher w : watchers) {
      try {
        w.close();
      } catch (IOException e) {
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
