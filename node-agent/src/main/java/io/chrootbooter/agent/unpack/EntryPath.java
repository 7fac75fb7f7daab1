package io.chrootbooter.agent.unpack;

import java.util.ArrayList;
import java.util.List;

/**
 * The lexical rules for a tar entry name (or hard-link target): relative, no {@code ..}, no NUL, at
 * most {@value #MAX_LENGTH} bytes and {@value #MAX_DEPTH} components. A leading {@code ./} and
 * empty or {@code .} components are dropped, as tar writes them.
 *
 * <p>These checks are pure; {@link TarExtractor} adds the checks against the tree already extracted
 * (no component may be a symlink).
 *
 * @param components the normalized components, never empty for an entry other than the root
 */
public record EntryPath(List<String> components) {

  /** PATH_MAX from linux/limits.h. */
  public static final int MAX_LENGTH = 4096;

  /** Deeper than any real image; refuses path bombs that only waste inodes and stack. */
  public static final int MAX_DEPTH = 256;

  /** NAME_MAX from linux/limits.h. */
  public static final int MAX_COMPONENT = 255;

  public EntryPath {
    components = List.copyOf(components);
  }

  /**
   * Parses and checks {@code name}; {@code entry} is the archive entry named in errors (the entry
   * itself, or the entry whose link target this is).
   */
  public static EntryPath parse(String entry, String name) throws HostileArchiveException {
    if (name.isEmpty()) {
      throw new HostileArchiveException(entry, "empty name");
    }
    if (name.indexOf('\0') >= 0) {
      throw new HostileArchiveException(entry, "name contains a NUL byte");
    }
    if (name.length() > MAX_LENGTH) {
      throw new HostileArchiveException(
          entry, "name is " + name.length() + " characters; at most " + MAX_LENGTH + " accepted");
    }
    if (name.startsWith("/")) {
      throw new HostileArchiveException(entry, "absolute name; only relative names are accepted");
    }
    List<String> parts = new ArrayList<>();
    for (String part : name.split("/")) {
      if (part.isEmpty() || part.equals(".")) {
        continue;
      }
      if (part.equals("..")) {
        throw new HostileArchiveException(entry, "name has a \"..\" component");
      }
      if (part.length() > MAX_COMPONENT) {
        throw new HostileArchiveException(
            entry,
            "component is "
                + part.length()
                + " characters; at most "
                + MAX_COMPONENT
                + " accepted");
      }
      parts.add(part);
    }
    if (parts.size() > MAX_DEPTH) {
      throw new HostileArchiveException(
          entry, "name is " + parts.size() + " levels deep; at most " + MAX_DEPTH + " accepted");
    }
    return new EntryPath(parts);
  }

  /** True for {@code ./} or {@code .}, the root itself. */
  public boolean isRoot() {
    return components.isEmpty();
  }

  @Override
  public String toString() {
    return String.join("/", components);
  }
}
