package io.chrootbooter.agent.sys;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Sockets made in another network namespace. A socket belongs to the namespace it was made in for
 * its whole life, so only the making needs the namespace: a short-lived thread of its own joins it
 * (setns(2) with {@code CLONE_NEWNET} changes the calling thread only), makes the socket and ends;
 * the agent's other threads never leave theirs.
 */
final class NetnsSockets {

  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    static native int socket(int domain, int type, int protocol) throws LastErrorException;

    static native int setns(int fd, int nstype) throws LastErrorException;

    static native int open(String path, int flags) throws LastErrorException;

    static native int close(int fd) throws LastErrorException;
  }

  private static final int SOCK_CLOEXEC = 02000000;
  private static final int O_RDONLY = 0;
  private static final int O_CLOEXEC = 02000000;
  private static final int CLONE_NEWNET = 0x40000000;
  private static final int EINTR = 4;

  private NetnsSockets() {}

  /**
   * socket(2) with {@code SOCK_CLOEXEC} in the namespace of {@code netns} (a {@code
   * /proc/PID/ns/net} file), or in the agent's own when empty.
   *
   * @return the descriptor
   * @throws SyscallException naming open, setns or socket and the errno
   */
  static int socket(Optional<Path> netns, int domain, int type, int protocol)
      throws SyscallException {
    if (netns.isEmpty()) {
      return socket(domain, type, protocol);
    }
    String where = "\"" + netns.get() + "\"";
    AtomicReference<Object> result = new AtomicReference<>();
    Thread t =
        new Thread(
            () -> {
              try {
                int ns;
                try {
                  ns = LibC.open(netns.get().toString(), O_RDONLY | O_CLOEXEC);
                } catch (LastErrorException e) {
                  throw new SyscallException("open", where, e.getErrorCode());
                }
                try {
                  LibC.setns(ns, CLONE_NEWNET);
                } catch (LastErrorException e) {
                  throw new SyscallException("setns", where + ", CLONE_NEWNET", e.getErrorCode());
                } finally {
                  LibC.close(ns);
                }
                result.set(socket(domain, type, protocol));
              } catch (SyscallException | RuntimeException e) {
                result.set(e);
              }
            },
            "cb-netns");
    t.start();
    try {
      t.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SyscallException("setns", where + ": interrupted", EINTR);
    }
    Object r = result.get();
    if (r instanceof SyscallException e) {
      throw e;
    }
    if (r instanceof RuntimeException e) {
      throw e;
    }
    return (Integer) r;
  }

  private static int socket(int domain, int type, int protocol) throws SyscallException {
    try {
      return LibC.socket(domain, type | SOCK_CLOEXEC, protocol);
    } catch (LastErrorException e) {
      throw new SyscallException(
          "socket", domain + ", " + type + ", " + protocol, e.getErrorCode());
    }
  }
}
