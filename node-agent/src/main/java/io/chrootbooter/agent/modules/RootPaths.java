package io.chrootbooter.agent.modules;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Paths inside a target root, resolved as the target will see them: a symlink is followed, an
 * absolute one from the root, and {@code ..} stops at the root (openat2(2)'s {@code
 * RESOLVE_IN_ROOT}). The result has no symlink left in it, so mount(8) cannot be led elsewhere by
 * one. Used before the target runs, when nothing else changes the root.
 */
final class RootPaths {
  /** The kernel's limit on symlinks followed in one lookup (path_resolution(7)). */
  static final int MAX_SYMLINKS = 40;

  private RootPaths() {}

  /** {@code relative} inside {@code root}; the part that does not exist is appended as it is. */
  static Path resolve(Path root, String relative) throws IOException {
    Deque<String> todo = new ArrayDeque<>();
    push(todo, relative);
    Path current = root;
    int links = 0;
    while (!todo.isEmpty()) {
      String c = todo.pop();
      if (c.isEmpty() || c.equals(".")) {
        continue;
      }
      if (c.equals("..")) {
        current = current.equals(root) ? root : current.getParent();
        continue;
      }
      Path next = current.resolve(c);
      if (Files.isSymbolicLink(next)) {
        if (++links > MAX_SYMLINKS) {
          throw new IOException("/" + relative + ": more than " + MAX_SYMLINKS + " symlinks");
        }
        String target = Files.readSymbolicLink(next).toString();
        push(todo, target);
        if (target.startsWith("/")) {
          current = root;
        }
        continue;
      }
      if (!Files.exists(next, LinkOption.NOFOLLOW_LINKS)) {
        Path rest = next;
        while (!todo.isEmpty()) {
          String r = todo.pop();
          if (r.equals("..")) {
            throw new IOException("/" + relative + ": \"..\" after a missing directory");
          }
          if (!r.isEmpty() && !r.equals(".")) {
            rest = rest.resolve(r);
          }
        }
        return rest;
      }
      if (!todo.isEmpty() && !Files.isDirectory(next, LinkOption.NOFOLLOW_LINKS)) {
        throw new IOException(
            "/" + relative + ": /" + root.relativize(next) + " is not a directory");
      }
      current = next;
    }
    return current;
  }

  /** {@link #resolve}, then creates what is missing as directories (mode 0755). */
  static Path createDirectories(Path root, String relative) throws IOException {
    Path dir = resolve(root, relative);
    if (Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      return dir;
    }
    if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException("/" + root.relativize(dir) + " is not a directory");
    }
    Path existing = dir;
    while (!Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
      existing = existing.getParent();
    }
    for (Path p : existing.relativize(dir)) {
      existing = existing.resolve(p);
      Files.createDirectory(existing);
    }
    return dir;
  }

  /** Whether {@code dir} is a directory (not a symlink to one) with at least one entry. */
  static boolean isNonEmptyDirectory(Path dir) throws IOException {
    if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      return false;
    }
    try (var entries = Files.list(dir)) {
      return entries.findAny().isPresent();
    }
  }

  private static void push(Deque<String> todo, String path) {
    String[] parts = path.split("/");
    for (int i = parts.length - 1; i >= 0; i--) {
      todo.push(parts[i]);
    }
  }
}
