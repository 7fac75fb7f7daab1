package io.chrootbooter.agent.trigger;

import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * Ctrl+Alt+F12 from every {@code event*} device in a directory ({@code /dev/input}), including
 * devices that appear later (a USB keyboard plugged in while the target runs): the directory is
 * watched with inotify (through {@link WatchService}), each device read by its own {@link
 * DeviceWatcher} with its own {@link HotkeyDetector}, so modifiers held on one keyboard never
 * combine with keys of another. A device that goes away ends its watcher with a warning.
 */
public final class KeyboardWatcher implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(KeyboardWatcher.class);

  private final Path dir;
  private final Runnable onHotkey;
  private final WatchService watchService;
  private final Map<Path, DeviceWatcher> devices = new LinkedHashMap<>();
  private final Thread thread;

  private KeyboardWatcher(Path dir, Runnable onHotkey, WatchService watchService) {
    this.dir = dir;
    this.onHotkey = onHotkey;
    this.watchService = watchService;
    this.thread = new Thread(this::loop, "cb-watch-" + dir);
    thread.setDaemon(true);
  }

  /** Starts watching {@code dir}; {@code onHotkey} runs on a device's watcher thread. */
  public static KeyboardWatcher start(Path dir, Runnable onHotkey) throws IOException {
    WatchService ws = dir.getFileSystem().newWatchService();
    KeyboardWatcher watcher = new KeyboardWatcher(dir, onHotkey, ws);
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
    try {
      devices.put(device, TriggerWatchers.hotkey(device, onHotkey));
      LOG.infof("hotkey: reading %s", device);
    } catch (IOException e) {
      LOG.warnf("hotkey: cannot read %s: %s", device, e.getMessage());
    }
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
