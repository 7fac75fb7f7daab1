package io.chrootbooter.agent.unpack;

import java.nio.file.Path;
import java.time.Instant;

/**
 * The Linux calls the JDK has no API for, as used to lay down an image tree. Every failure is a
 * {@link SyscallException} naming the call, its arguments and the errno name.
 *
 * <p>All calls act on the path itself and never follow a final symbolic link.
 */
public interface Syscalls {

  /**
   * Creates a device node or FIFO: mknod(2). {@code mode} carries the file type bits ({@code
   * S_IFCHR}, {@code S_IFBLK}, {@code S_IFIFO}) and the permissions.
   */
  void mknod(Path path, int mode, int major, int minor) throws SyscallException;

  /** Sets numeric owner and group without following a symlink: lchown(2). */
  void lchown(Path path, long uid, long gid) throws SyscallException;

  /**
   * Sets all 12 permission bits (including setuid, setgid and sticky), which {@code
   * Files.setPosixFilePermissions} cannot: chmod(2). Never called on symlinks.
   */
  void chmod(Path path, int mode) throws SyscallException;

  /** Sets an extended attribute on the path itself: lsetxattr(2). */
  void lsetxattr(Path path, String name, byte[] value) throws SyscallException;

  /**
   * Sets access and modification time with nanoseconds on the path itself: utimensat(2) with {@code
   * AT_SYMLINK_NOFOLLOW}.
   */
  void lutimes(Path path, Instant atime, Instant mtime) throws SyscallException;

  /**
   * Sets the size of the regular file {@code path}, extending it with a hole: open(2) with {@code
   * O_WRONLY | O_NOFOLLOW}, then ftruncate(2). How a sparse file gets a trailing hole without
   * writing it.
   */
  void truncate(Path path, long length) throws SyscallException;

  /**
   * Whether {@code path} is certainly absent: faccessat(2) with {@code F_OK} and {@code
   * AT_SYMLINK_NOFOLLOW} failed with ENOENT (a dangling symlink is present). False on any other
   * answer, so a caller then asks {@code Files.readAttributes}. Exists because the JDK reports an
   * absent path only by throwing, which costs more than the rest of a small entry's extraction.
   */
  boolean absent(Path path);
}
