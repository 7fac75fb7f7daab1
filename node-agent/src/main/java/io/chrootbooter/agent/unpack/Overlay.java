package io.chrootbooter.agent.unpack;

import java.nio.file.Path;

/**
 * Where a squashfs root's writes go: the BootImage {@code overlay} field.
 *
 * <ul>
 *   <li>{@code tmpfs} (default): an overlay with a tmpfs upper, lost on return;
 *   <li>{@code none}: the squashfs itself, read-only;
 *   <li>{@code /dev/...}: an overlay whose upper is that block device, kept across boots.
 * </ul>
 */
public sealed interface Overlay {

  /** Writes go to RAM. */
  record Tmpfs() implements Overlay {}

  /** No writes: a read-only root. */
  record None() implements Overlay {}

  /** Writes go to a filesystem on {@code device}. */
  record BlockDevice(Path device) implements Overlay {
    public BlockDevice {
      if (!device.startsWith("/dev/")) {
        throw new IllegalArgumentException(
            "overlay \"" + device + "\" is not a block device path below /dev/");
      }
    }
  }

  /** Parses {@code tmpfs}, {@code none} or a {@code /dev/...} path. */
  static Overlay parse(String value) {
    return switch (value) {
      case "tmpfs" -> new Tmpfs();
      case "none" -> new None();
      default -> {
        if (!value.startsWith("/dev/")) {
          throw new IllegalArgumentException(
              "overlay \"" + value + "\" is not one of tmpfs, none, /dev/<block device>");
        }
        yield new BlockDevice(Path.of(value));
      }
    };
  }
}
