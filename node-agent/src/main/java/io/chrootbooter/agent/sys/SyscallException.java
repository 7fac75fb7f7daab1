package io.chrootbooter.agent.sys;

import java.io.IOException;

/**
 * A failed system call, rendered as {@code mknod("/x/dev/null", 020666, 0x103): EPERM}.
 *
 * @param call the call name, e.g. {@code mknod}
 * @param arguments the arguments as C would print them
 * @param errno the errno value from the C library
 */
public final class SyscallException extends IOException {
  private static final long serialVersionUID = 1L;

  private final String call;
  private final int errno;

  public SyscallException(String call, String arguments, int errno) {
    super(call + "(" + arguments + "): " + Errno.name(errno));
    this.call = call;
    this.errno = errno;
  }

  /** The name of the failed call. */
  public String call() {
    return call;
  }

  /** The errno value, see errno(3). */
  public int errno() {
    return errno;
  }
}
