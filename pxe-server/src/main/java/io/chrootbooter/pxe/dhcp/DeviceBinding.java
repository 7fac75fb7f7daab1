package io.chrootbooter.pxe.dhcp;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.nio.channels.DatagramChannel;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * {@code SO_BINDTODEVICE} (socket(7)) for the port-67 socket. A proxy must bind 0.0.0.0:67 to
 * receive broadcast DHCPDISCOVERs, and only those of the boot interface; the JDK has no such socket
 * option, so this calls setsockopt(2) through JNA on the channel's file descriptor. Needs
 * CAP_NET_RAW, and {@code --add-exports java.base/sun.nio.ch=ALL-UNNAMED} for the descriptor (the
 * jar's manifest carries it).
 */
final class DeviceBinding {
  private static final int SOL_SOCKET = 1;
  private static final int SO_BINDTODEVICE = 25;
  private static final Map<Integer, String> ERRNO =
      Map.of(1, "EPERM", 9, "EBADF", 14, "EFAULT", 19, "ENODEV", 22, "EINVAL", 92, "ENOPROTOOPT");

  private DeviceBinding() {}

  /** setsockopt(2) by JNA direct mapping; errno arrives as a {@link LastErrorException}. */
  private static final class LibC {
    static {
      Native.register("c");
    }

    static native int setsockopt(int fd, int level, int optname, byte[] optval, int optlen)
        throws LastErrorException;
  }

  /** Restricts {@code channel} (not yet bound) to packets of {@code device}. */
  static void bindToDevice(DatagramChannel channel, String device) throws IOException {
    int fd = fileDescriptor(channel);
    byte[] name = (device + "\0").getBytes(StandardCharsets.US_ASCII);
    try {
      LibC.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length);
    } catch (LastErrorException e) {
      int errno = e.getErrorCode();
      throw new IOException(
          "setsockopt("
              + fd
              + ", SOL_SOCKET, SO_BINDTODEVICE, \""
              + device
              + "\"): "
              + ERRNO.getOrDefault(errno, "errno " + errno));
    }
  }

  private static int fileDescriptor(DatagramChannel channel) throws IOException {
    try {
      Class<?> selChImpl = Class.forName("sun.nio.ch.SelChImpl");
      return (int) selChImpl.getMethod("getFDVal").invoke(channel);
    } catch (ClassNotFoundException
        | NoSuchMethodException
        | IllegalAccessException
        | InvocationTargetException
        | RuntimeException e) {
      throw new IOException(
          "cannot read the socket's file descriptor for SO_BINDTODEVICE (run java with"
              + " --add-exports java.base/sun.nio.ch=ALL-UNNAMED): "
              + e,
          e);
    }
  }
}
