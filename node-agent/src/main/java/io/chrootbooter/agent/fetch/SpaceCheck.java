package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Refuses to start a download that cannot fit, before anything is written: the free space of the
 * target filesystem and, for RAM-backed ones (tmpfs, ramfs), {@code MemAvailable} from proc(5)
 * {@code /proc/meminfo} — a tmpfs may be sized above the RAM there is.
 */
public final class SpaceCheck {
  private static final List<String> RAM_FILESYSTEMS = List.of("tmpfs", "ramfs", "rootfs");

  private SpaceCheck() {}

  /** Throws when {@code bytes} do not fit below {@code dir}; the error names both numbers. */
  public static void requireRoom(long bytes, Path dir) throws IOException {
    requireRoom(bytes, dir, Path.of("/proc/meminfo"));
  }

  static void requireRoom(long bytes, Path dir, Path meminfo) throws IOException {
    if (bytes <= 0) {
      return;
    }
    FileStore store = Files.getFileStore(dir);
    long free = store.getUsableSpace();
    if (bytes > free) {
      throw new InsufficientSpaceException(
          "image needs "
              + human(bytes)
              + " but "
              + dir
              + " ("
              + store.type()
              + ") has "
              + human(free)
              + " free");
    }
    if (RAM_FILESYSTEMS.contains(store.type())) {
      long available = memAvailable(meminfo);
      if (bytes > available) {
        throw new InsufficientSpaceException(
            "image needs "
                + human(bytes)
                + " of RAM for "
                + dir
                + " ("
                + store.type()
                + ") but MemAvailable is "
                + human(available));
      }
    }
  }

  /**
   * Bytes that fit below {@code dir}: its free space, and for a RAM file system also no more than
   * {@code MemAvailable}.
   */
  public static long available(Path dir) throws IOException {
    FileStore store = Files.getFileStore(dir);
    long free = store.getUsableSpace();
    if (RAM_FILESYSTEMS.contains(store.type())) {
      free = Math.min(free, memAvailable(Path.of("/proc/meminfo")));
    }
    return free;
  }

  /** MemAvailable in bytes, from {@code /proc/meminfo} ("MemAvailable: 123456 kB"). */
  static long memAvailable(Path meminfo) throws IOException {
    for (String line : Files.readAllLines(meminfo)) {
      if (line.startsWith("MemAvailable:")) {
        String[] parts = line.substring("MemAvailable:".length()).trim().split("\\s+");
        return Long.parseLong(parts[0]) * 1024;
      }
    }
    throw new IOException(meminfo + " has no MemAvailable line (Linux >= 3.14 has one)");
  }

  static String human(long bytes) {
    return String.format("%d bytes (%.1f MiB)", bytes, bytes / 1048576.0);
  }

  /** Not enough room for an image. */
  public static final class InsufficientSpaceException extends IOException {
    private static final long serialVersionUID = 1L;

    InsufficientSpaceException(String message) {
      super(message);
    }
  }
}
