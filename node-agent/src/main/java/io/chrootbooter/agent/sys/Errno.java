package io.chrootbooter.agent.sys;

import java.util.Map;

/**
 * Names of the Linux errno values (asm-generic/errno-base.h, errno.h) the agent's calls can return,
 * so errors read {@code EPERM}, never {@code errno 1}.
 */
public final class Errno {
  public static final int EPERM = 1;
  public static final int ENOENT = 2;
  public static final int EEXIST = 17;
  public static final int ENOTTY = 25;
  public static final int ENOTSUP = 95;

  private static final Map<Integer, String> NAMES =
      Map.ofEntries(
          Map.entry(1, "EPERM"),
          Map.entry(2, "ENOENT"),
          Map.entry(3, "ESRCH"),
          Map.entry(4, "EINTR"),
          Map.entry(5, "EIO"),
          Map.entry(6, "ENXIO"),
          Map.entry(7, "E2BIG"),
          Map.entry(9, "EBADF"),
          Map.entry(11, "EAGAIN"),
          Map.entry(12, "ENOMEM"),
          Map.entry(13, "EACCES"),
          Map.entry(14, "EFAULT"),
          Map.entry(15, "ENOTBLK"),
          Map.entry(16, "EBUSY"),
          Map.entry(17, "EEXIST"),
          Map.entry(18, "EXDEV"),
          Map.entry(19, "ENODEV"),
          Map.entry(20, "ENOTDIR"),
          Map.entry(21, "EISDIR"),
          Map.entry(22, "EINVAL"),
          Map.entry(24, "EMFILE"),
          Map.entry(25, "ENOTTY"),
          Map.entry(26, "ETXTBSY"),
          Map.entry(27, "EFBIG"),
          Map.entry(28, "ENOSPC"),
          Map.entry(30, "EROFS"),
          Map.entry(31, "EMLINK"),
          Map.entry(34, "ERANGE"),
          Map.entry(36, "ENAMETOOLONG"),
          Map.entry(38, "ENOSYS"),
          Map.entry(39, "ENOTEMPTY"),
          Map.entry(40, "ELOOP"),
          Map.entry(61, "ENODATA"),
          Map.entry(95, "EOPNOTSUPP"),
          Map.entry(122, "EDQUOT"));

  private Errno() {}

  /** {@code EPERM} for 1; {@code errno 200} for a value not in the table. */
  public static String name(int errno) {
    return NAMES.getOrDefault(errno, "errno " + errno);
  }
}
