package io.chrootbooter.agent.unpack;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import java.nio.file.Path;
import java.time.Instant;

/** {@link Syscalls} through the C library, via JNA. */
public final class LinuxSyscalls implements Syscalls {

  /**
   * The glibc/musl entry points, bound by JNA direct mapping (several times faster per call than an
   * interface proxy: an image has tens of thousands of entries, each several calls).
   */
  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    static native int mknod(String path, int mode, long dev) throws LastErrorException;

    static native int lchown(String path, int uid, int gid) throws LastErrorException;

    static native int chmod(String path, int mode) throws LastErrorException;

    static native int lsetxattr(String path, String name, byte[] value, long size, int flags)
        throws LastErrorException;

    static native int utimensat(int dirfd, String path, long[] times, int flags)
        throws LastErrorException;

    static native int open(String path, int flags) throws LastErrorException;

    static native int ftruncate(int fd, long length) throws LastErrorException;

    static native int close(int fd) throws LastErrorException;

    /** No LastErrorException: the usual answer (ENOENT) must not cost an exception. */
    static native int faccessat(int dirfd, String path, int mode, int flags);
  }

  /** fcntl.h: relative paths are resolved against the working directory. */
  private static final int AT_FDCWD = -100;

  /** unistd.h: test for existence. */
  private static final int F_OK = 0;

  /** fcntl.h: open for writing. */
  private static final int O_WRONLY = 01;

  /** fcntl.h: no final symlink; asm/fcntl.h of arm64 moves it (with O_DIRECTORY). */
  private static final int O_NOFOLLOW =
      "aarch64".equals(System.getProperty("os.arch")) ? 0100000 : 0400000;

  /** fcntl.h: close on exec. */
  private static final int O_CLOEXEC = 02000000;

  /** fcntl.h: act on a symlink itself. */
  private static final int AT_SYMLINK_NOFOLLOW = 0x100;

  @Override
  public void mknod(Path path, int mode, int major, int minor) throws SyscallException {
    long dev = makedev(major, minor);
    try {
      LibC.mknod(path.toString(), mode, dev);
    } catch (LastErrorException e) {
      throw new SyscallException(
          "mknod",
          quote(path) + ", 0" + Integer.toOctalString(mode) + ", 0x" + Long.toHexString(dev),
          e.getErrorCode());
    }
  }

  @Override
  public void lchown(Path path, long uid, long gid) throws SyscallException {
    try {
      LibC.lchown(path.toString(), (int) uid, (int) gid);
    } catch (LastErrorException e) {
      throw new SyscallException("lchown", quote(path) + ", " + uid + ", " + gid, e.getErrorCode());
    }
  }

  @Override
  public void chmod(Path path, int mode) throws SyscallException {
    try {
      LibC.chmod(path.toString(), mode);
    } catch (LastErrorException e) {
      throw new SyscallException(
          "chmod", quote(path) + ", 0" + Integer.toOctalString(mode), e.getErrorCode());
    }
  }

  @Override
  public void lsetxattr(Path path, String name, byte[] value) throws SyscallException {
    try {
      LibC.lsetxattr(path.toString(), name, value, value.length, 0);
    } catch (LastErrorException e) {
      throw new SyscallException(
          "lsetxattr",
          quote(path) + ", \"" + name + "\", <" + value.length + " bytes>",
          e.getErrorCode());
    }
  }

  @Override
  public void lutimes(Path path, Instant atime, Instant mtime) throws SyscallException {
    // struct timespec[2] is {tv_sec, tv_nsec} x 2, all 64-bit on x86_64 and aarch64.
    long[] times = {
      atime.getEpochSecond(), atime.getNano(), mtime.getEpochSecond(), mtime.getNano()
    };
    try {
      LibC.utimensat(AT_FDCWD, path.toString(), times, AT_SYMLINK_NOFOLLOW);
    } catch (LastErrorException e) {
      throw new SyscallException(
          "utimensat",
          "AT_FDCWD, " + quote(path) + ", {" + atime + ", " + mtime + "}, AT_SYMLINK_NOFOLLOW",
          e.getErrorCode());
    }
  }

  @Override
  public void truncate(Path path, long length) throws SyscallException {
    int fd;
    try {
      fd = LibC.open(path.toString(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    } catch (LastErrorException e) {
      throw new SyscallException(
          "open", quote(path) + ", O_WRONLY|O_NOFOLLOW|O_CLOEXEC", e.getErrorCode());
    }
    try {
      LibC.ftruncate(fd, length);
    } catch (LastErrorException e) {
      throw new SyscallException("ftruncate", quote(path) + ", " + length, e.getErrorCode());
    } finally {
      try {
        LibC.close(fd);
      } catch (LastErrorException e) {
        // The file was only truncated; nothing was written that close could lose.
      }
    }
  }

  @Override
  public boolean absent(Path path) {
    return LibC.faccessat(AT_FDCWD, path.toString(), F_OK, AT_SYMLINK_NOFOLLOW) != 0
        && Native.getLastError() == Errno.ENOENT;
  }

  /** glibc's gnu_dev_makedev(3) encoding of a dev_t. */
  static long makedev(long major, long minor) {
    return ((major & 0xfffL) << 8)
        | ((major & ~0xfffL) << 32)
        | (minor & 0xffL)
        | ((minor & ~0xffL) << 12);
  }

  private static String quote(Path path) {
    return "\"" + path + "\"";
  }
}
