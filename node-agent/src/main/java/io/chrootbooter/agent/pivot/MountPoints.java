package io.chrootbooter.agent.pivot;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import io.chrootbooter.agent.unpack.Errno;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Prepares the paths of a new root that the enter step mounts on, before anything runs in it: each
 * is looked up inside the root without following a symbolic link (openat2(2) with {@code
 * RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS}, relative to a descriptor of the root), made when it is
 * missing ({@code mkdirat}, or an exclusive create for a file), and refused with a message naming
 * it when it is a symbolic link, or not a directory where a directory must be (a regular file, a
 * FIFO, a device node). Nothing outside the root is ever created or looked at.
 *
 * <p>The enter step then opens each of them again inside the target's mount namespace, checks that
 * the descriptor is the very path (no symbolic link followed in between) and mounts onto the
 * descriptor ({@code /proc/self/fd/N}), so what was checked is what is mounted on.
 */
public final class MountPoints {

  /** Directories of the root the enter step mounts on, relative to it. */
  public static final List<String> DIRECTORIES = List.of("proc", "sys", "dev", "run");

  /** The file the helper is bound onto, relative to the root. */
  public static final String HELPER = EnterScript.HELPER_IN_TARGET.substring(1);

  /** A root that must not be entered. */
  public static final class RefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    RefusedException(String message) {
      super(message);
    }
  }

  /** What {@link #prepare} found. */
  public record Prepared(boolean helper) {}

  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    static native int open(String path, int flags) throws LastErrorException;

    /** syscall(2) for openat2, which the C library has no wrapper for. */
    static native long syscall(long number, int dirfd, String path, byte[] how, long size)
        throws LastErrorException;

    static native int mkdirat(int dirfd, String path, int mode) throws LastErrorException;

    static native int statx(int dirfd, String path, int flags, int mask, byte[] buffer)
        throws LastErrorException;

    static native int close(int fd);
  }

  /** openat2's number, the same on every architecture (asm-generic/unistd.h). */
  private static final long SYS_OPENAT2 = 437;

  // fcntl.h flags whose values are the same on x86_64, aarch64 and riscv64.
  private static final int O_WRONLY = 01;
  private static final int O_CREAT = 0100;
  private static final int O_EXCL = 0200;
  private static final int O_CLOEXEC = 02000000;
  private static final int O_PATH = 010000000;

  // linux/openat2.h
  private static final long RESOLVE_NO_SYMLINKS = 0x04;
  private static final long RESOLVE_IN_ROOT = 0x10;

  private static final int AT_EMPTY_PATH = 0x1000;
  private static final int STATX_TYPE = 0x1;

  private static final int ELOOP = 40;
  private static final int ENOTDIR = 20;
  private static final int EROFS = 30;

  private static final int S_IFMT = 0170000;
  private static final int S_IFDIR = 0040000;
  private static final int S_IFREG = 0100000;

  private MountPoints() {}

  /**
   * Checks and makes the mount points of {@code root}.
   *
   * @param root the new root, as the agent made it (its own path holds no symbolic link)
   * @return whether the helper's file is there to bind onto (false when the root is read-only and
   *     has none)
   * @throws RefusedException naming the path when the root must not be entered
   */
  public static Prepared prepare(Path root) throws IOException {
    int rootFd;
    try {
      rootFd = LibC.open(root.toRealPath().toString(), O_PATH | O_CLOEXEC);
    } catch (LastErrorException e) {
      throw new IOException("open " + root + ": " + Errno.name(e.getErrorCode()), e);
    }
    try {
      for (String dir : DIRECTORIES) {
        directory(rootFd, root, dir);
      }
      return new Prepared(helperFile(rootFd, root));
    } finally {
      LibC.close(rootFd);
    }
  }

  private static void directory(int rootFd, Path root, String name) throws IOException {
    int fd = lookup(rootFd, root, name, 0, 0);
    if (fd < 0) {
      try {
        LibC.mkdirat(rootFd, name, 0755);
      } catch (LastErrorException e) {
        throw new RefusedException(
            "mount point /"
                + name
                + " is missing and cannot be made: "
                + (e.getErrorCode() == EROFS
                    ? "the root is read-only"
                    : Errno.name(e.getErrorCode())));
      }
      fd = lookup(rootFd, root, name, 0, 0);
      if (fd < 0) {
        throw new RefusedException("mount point /" + name + " vanished right after mkdir");
      }
    }
    try {
      int type = type(fd);
      if (type != S_IFDIR) {
        throw new RefusedException(
            "mount point /" + name + " is not a directory (" + describe(type) + "); refused");
      }
    } finally {
      LibC.close(fd);
    }
  }

  private static boolean helperFile(int rootFd, Path root) throws IOException {
    int fd = lookup(rootFd, root, HELPER, 0, 0);
    if (fd < 0) {
      try {
        fd = lookup(rootFd, root, HELPER, O_WRONLY | O_CREAT | O_EXCL, 0444);
      } catch (RefusedException e) {
        throw e;
      } catch (IOException e) {
        if (e.getCause() instanceof LastErrorException l && l.getErrorCode() == EROFS) {
          return false;
        }
        throw e;
      }
    }
    try {
      int type = type(fd);
      if (type != S_IFREG) {
        throw new RefusedException(
            "/" + HELPER + " is " + describe(type) + ", not a regular file; refused");
      }
      return true;
    } finally {
      LibC.close(fd);
    }
  }

  /**
   * openat2 of {@code name} below the root, never through a symbolic link; -1 when it is absent
   * (and not being created).
   */
  private static int lookup(int rootFd, Path root, String name, int flags, int mode)
      throws IOException {
    ByteBuffer how = ByteBuffer.allocate(24).order(ByteOrder.nativeOrder());
    how.putLong((flags == 0 ? O_PATH : flags) | O_CLOEXEC);
    how.putLong(mode);
    how.putLong(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
    try {
      return (int) LibC.syscall(SYS_OPENAT2, rootFd, name, how.array(), 24);
    } catch (LastErrorException e) {
      int errno = e.getErrorCode();
      if (errno == Errno.ENOENT && (flags & O_CREAT) == 0) {
        return -1;
      }
      if (errno == ELOOP) {
        throw new RefusedException(
            "/" + name + " is a symbolic link" + linkTarget(root, name) + "; refused");
      }
      if (errno == ENOTDIR) {
        throw new RefusedException("/" + name + ": a component is not a directory; refused");
      }
      throw new IOException("openat2 /" + name + " in " + root + ": " + Errno.name(errno), e);
    }
  }

  private static String linkTarget(Path root, String name) {
    try {
      return " (to " + Files.readSymbolicLink(root.resolve(name)) + ")";
    } catch (IOException | UnsupportedOperationException e) {
      return "";
    }
  }

  /** The file type bits of what {@code fd} refers to: statx(2) with {@code AT_EMPTY_PATH}. */
  private static int type(int fd) throws IOException {
    byte[] buffer = new byte[256];
    try {
      LibC.statx(fd, "", AT_EMPTY_PATH, STATX_TYPE, buffer);
    } catch (LastErrorException e) {
      throw new IOException("statx: " + Errno.name(e.getErrorCode()), e);
    }
    // struct statx: stx_mode is the __u16 at offset 28.
    int mode = ByteBuffer.wrap(buffer).order(ByteOrder.nativeOrder()).getShort(28) & 0xffff;
    return mode & S_IFMT;
  }

  private static String describe(int type) {
    return switch (type) {
      case S_IFDIR -> "a directory";
      case S_IFREG -> "a regular file";
      case 0010000 -> "a FIFO";
      case 0020000 -> "a character device";
      case 0060000 -> "a block device";
      case 0140000 -> "a socket";
      case 0120000 -> "a symbolic link";
      default -> "of file type 0" + Integer.toOctalString(type);
    };
  }
}
