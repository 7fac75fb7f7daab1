package io.chrootbooter.agent.modules;

import io.chrootbooter.agent.unpack.RootCheck;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * Directories inside a target root, found as the target will see them ({@link
 * RootCheck#resolveInRoot}: symlinks followed inside the root, never out of it) and made where
 * missing. The result has no symlink left in it, so mount(8) cannot be led elsewhere by one. Used
 * before the target runs, when nothing else changes the root.
 */
final class RootPaths {
  private RootPaths() {}

  /**
   * The directory {@code relative} inside {@code root}, made (mode 0755) with what is missing of
   * it; an existing part that is not a directory is refused, naming it.
   */
  static Path directory(Path root, String relative) throws IOException {
    Path dir = RootCheck.resolveInRoot(root, relative);
    Path at = root;
    for (Path part : root.relativize(dir)) {
      at = at.resolve(part);
      if (Files.isDirectory(at, LinkOption.NOFOLLOW_LINKS)) {
        continue;
      }
      if (Files.exists(at, LinkOption.NOFOLLOW_LINKS)) {
        throw new IOException("/" + root.relativize(at) + " is not a directory");
      }
      Files.createDirectory(at);
    }
    return dir;
  }

  /** Whether {@code relative} inside {@code root} is a directory with at least one entry. */
  static boolean isNonEmptyDirectory(Path root, String relative) throws IOException {
    Path dir = RootCheck.resolveInRoot(root, relative);
    if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      return false;
    }
    try (var entries = Files.list(dir)) {
      return entries.findAny().isPresent();
    }
  }
}
