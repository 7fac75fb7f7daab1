package io.chrootbooter.pxe.tftp;

import io.chrootbooter.pxe.tftp.TftpPacket.Error;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The directory TFTP serves, and the only way a requested name becomes a file. A name is refused
 * with an ERROR (access violation, RFC 1350 code 2) when it is absolute, contains a {@code ..}
 * segment, a backslash or a control character, or resolves — through symlinks — to anything outside
 * the root. Debian's {@code /usr/lib/ipxe/ipxe.efi} is such a symlink (to {@code /boot/ipxe.efi}):
 * serve {@code snponly.efi} or copy the binaries into a root of their own.
 */
public final class TftpRoot {
  private final Path root;

  /**
   * @param root an existing directory; its real path (symlinks resolved) is the boundary
   */
  public TftpRoot(Path root) throws IOException {
    this.root = root.toRealPath();
    if (!Files.isDirectory(this.root)) {
      throw new IOException("TFTP root " + root + " is not a directory");
    }
  }

  public Path path() {
    return root;
  }

  /** What a name resolves to: a readable regular file under the root, or the ERROR to send. */
  public sealed interface Resolution permits Found, Refused {}

  /**
   * @param file the real path, free of symlinks
   * @param size its size in bytes
   */
  public record Found(Path file, long size) implements Resolution {}

  /**
   * @param error the ERROR packet to send
   */
  public record Refused(Error error) implements Resolution {}

  /** Resolves a requested file name (RRQ filename, RFC 1350 §5). */
  public Resolution resolve(String name) {
    if (name.isEmpty()) {
      return refused(Error.FILE_NOT_FOUND, "empty file name");
    }
    if (name.startsWith("/")) {
      return refused(Error.ACCESS_VIOLATION, "absolute path \"" + name + "\" refused");
    }
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      if (c < 0x20 || c == 0x7f || c == '\\') {
        return refused(
            Error.ACCESS_VIOLATION,
            String.format("file name has character 0x%02x; refused", (int) c));
      }
    }
    for (String segment : name.split("/", -1)) {
      if (segment.equals("..")) {
        return refused(Error.ACCESS_VIOLATION, "\"..\" in \"" + name + "\" refused");
      }
    }
    Path candidate;
    try {
      candidate = root.resolve(name).normalize();
    } catch (InvalidPathException e) {
      return refused(Error.ACCESS_VIOLATION, "file name \"" + name + "\" is not a path");
    }
    if (!candidate.startsWith(root)) {
      return refused(Error.ACCESS_VIOLATION, "\"" + name + "\" is outside the TFTP root");
    }
    Path real;
    try {
      real = candidate.toRealPath();
    } catch (NoSuchFileException e) {
      return refused(Error.FILE_NOT_FOUND, "\"" + name + "\" not found");
    } catch (IOException e) {
      return refused(Error.ACCESS_VIOLATION, "\"" + name + "\" cannot be resolved");
    }
    if (!real.startsWith(root)) {
      return refused(
          Error.ACCESS_VIOLATION, "\"" + name + "\" links outside the TFTP root; refused");
    }
    if (!Files.isRegularFile(real, LinkOption.NOFOLLOW_LINKS) || !Files.isReadable(real)) {
      return refused(Error.FILE_NOT_FOUND, "\"" + name + "\" is not a readable file");
    }
    try {
      return new Found(real, Files.size(real));
    } catch (IOException e) {
      return refused(Error.FILE_NOT_FOUND, "\"" + name + "\" cannot be read");
    }
  }

  private static Refused refused(int code, String message) {
    return new Refused(new Error(code, message));
  }
}
