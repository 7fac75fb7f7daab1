package io.chrootbooter.pxe;

import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * Command-line configuration of the PXE server.
 *
 * @param operator base URL of the operator, {@code http://HOST:PORT}
 * @param interfaceName boot interface: port 67 binds 0.0.0.0 with SO_BINDTODEVICE to it, and its
 *     first IPv4 address is ours unless {@code bind} is given
 * @param bind address for ports 4011 and 69 (and 67 when no interface is given)
 * @param tftpRoot directory of the iPXE binaries
 * @param defaultScript iPXE script URL for machines the operator does not know
 * @param dhcpPort 67; another port only for tests
 * @param pxePort 4011; another port only for tests
 * @param tftpPort 69; another port only for tests
 * @param biosBootFile iPXE for BIOS PXE ROMs
 * @param efiBootFile iPXE for x86-64 UEFI PXE ROMs
 * @param maxTransfers concurrent TFTP transfers
 * @param machineCacheTtl how long the operator's known/unknown answer is reused
 * @param debug log ignored packets (one line each) and other detail
 */
public record PxeServerConfig(
    URI operator,
    Optional<String> interfaceName,
    Optional<InetAddress> bind,
    Path tftpRoot,
    Optional<URI> defaultScript,
    int dhcpPort,
    int pxePort,
    int tftpPort,
    String biosBootFile,
    String efiBootFile,
    int maxTransfers,
    Duration machineCacheTtl,
    boolean debug) {

  public static final String USAGE =
      """
      usage: java -jar chrootbooter-pxe-server.jar --operator http://HOST:PORT
                 (--interface IFACE | --bind ADDR) [--interface IFACE --bind ADDR]
                 [--tftp-root DIR] [--default-script URL] [--bios-file NAME] [--efi-file NAME]
                 [--max-transfers N] [--dhcp-port N] [--pxe-port N] [--tftp-port N] [--debug]
        --operator        operator base URL; iPXE is chained to URL/boot/MAC.ipxe
        --interface       boot interface; port 67 binds 0.0.0.0 with SO_BINDTODEVICE to it
        --bind            address for 4011 and 69 (default: the interface's first IPv4)
        --tftp-root       directory of iPXE binaries (default /usr/lib/ipxe)
        --default-script  iPXE script URL for machines the operator does not know
        --bios-file       iPXE for BIOS ROMs, option 93 = 0 (default undionly.kpxe)
        --efi-file        iPXE for x86-64 UEFI ROMs, option 93 = 7, 9 (default snponly.efi)
      """;

  public PxeServerConfig {
    Objects.requireNonNull(operator, "operator");
    if (interfaceName.isEmpty() && bind.isEmpty()) {
      throw new IllegalArgumentException("give --interface, --bind, or both\n" + USAGE);
    }
    for (int port : new int[] {dhcpPort, pxePort, tftpPort}) {
      if (port < 0 || port > 65535) {
        throw new IllegalArgumentException("port " + port + " is not 0..65535");
      }
    }
    if (maxTransfers < 1) {
      throw new IllegalArgumentException("--max-transfers " + maxTransfers + " is below 1");
    }
  }

  /** Parses the command line; an {@link IllegalArgumentException} says which argument and why. */
  public static PxeServerConfig parse(String... args) {
    URI operator = null;
    Optional<String> iface = Optional.empty();
    Optional<InetAddress> bind = Optional.empty();
    Path tftpRoot = Path.of("/usr/lib/ipxe");
    Optional<URI> defaultScript = Optional.empty();
    int dhcpPort = 67;
    int pxePort = 4011;
    int tftpPort = 69;
    String bios = "undionly.kpxe";
    String efi = "snponly.efi";
    int maxTransfers = 32;
    boolean debug = false;
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (arg.equals("--debug")) {
        debug = true;
        continue;
      }
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException(arg + " needs a value\n" + USAGE);
      }
      String value = args[++i];
      switch (arg) {
        case "--operator" -> operator = uri(arg, value);
        case "--interface" -> iface = Optional.of(value);
        case "--bind" -> bind = Optional.of(address(value));
        case "--tftp-root" -> tftpRoot = Path.of(value);
        case "--default-script" -> defaultScript = Optional.of(uri(arg, value));
        case "--dhcp-port" -> dhcpPort = number(arg, value);
        case "--pxe-port" -> pxePort = number(arg, value);
        case "--tftp-port" -> tftpPort = number(arg, value);
        case "--bios-file" -> bios = value;
        case "--efi-file" -> efi = value;
        case "--max-transfers" -> maxTransfers = number(arg, value);
        default -> throw new IllegalArgumentException("unknown argument " + arg + "\n" + USAGE);
      }
    }
    if (operator == null) {
      throw new IllegalArgumentException("--operator is required\n" + USAGE);
    }
    return new PxeServerConfig(
        operator,
        iface,
        bind,
        tftpRoot,
        defaultScript,
        dhcpPort,
        pxePort,
        tftpPort,
        bios,
        efi,
        maxTransfers,
        Duration.ofSeconds(5),
        debug);
  }

  private static URI uri(String arg, String value) {
    URI uri;
    try {
      uri = URI.create(value);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          arg + " \"" + value + "\" is not a URL: " + e.getMessage());
    }
    if (!"http".equals(uri.getScheme()) || uri.getHost() == null) {
      throw new IllegalArgumentException(
          arg + " \"" + value + "\" is not http://HOST[:PORT]…; iPXE here has no HTTPS");
    }
    return uri;
  }

  private static int number(String arg, String value) {
    try {
      return Integer.parseInt(value);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(arg + " \"" + value + "\" is not a number");
    }
  }

  private static InetAddress address(String value) {
    if (!value.matches("[0-9.]+")) {
      throw new IllegalArgumentException("--bind \"" + value + "\" is not an IPv4 address");
    }
    try {
      return InetAddress.getByName(value);
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("--bind \"" + value + "\" is not an IPv4 address");
    }
  }
}
