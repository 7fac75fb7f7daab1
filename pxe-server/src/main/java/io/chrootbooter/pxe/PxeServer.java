package io.chrootbooter.pxe;

import io.chrootbooter.pxe.dhcp.DhcpServer;
import io.chrootbooter.pxe.dhcp.KnownMachines;
import io.chrootbooter.pxe.dhcp.ProxyDhcpPolicy;
import io.chrootbooter.pxe.tftp.TftpRoot;
import io.chrootbooter.pxe.tftp.TftpServer;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.time.Clock;
import java.util.Collections;
import java.util.Optional;

/** proxyDHCP (67, 4011) and TFTP (69) together, started from a {@link PxeServerConfig}. */
public final class PxeServer implements AutoCloseable {
  private static final Inet4Address ANY = anyAddress();

  private final DhcpServer dhcp;
  private final TftpServer tftp;
  private final Inet4Address serverAddress;

  private PxeServer(DhcpServer dhcp, TftpServer tftp, Inet4Address serverAddress) {
    this.dhcp = dhcp;
    this.tftp = tftp;
    this.serverAddress = serverAddress;
  }

  /** Starts with the operator's {@code /boot/} endpoint deciding which machines are known. */
  public static PxeServer start(PxeServerConfig config) throws IOException {
    return start(
        config,
        new OperatorMachines(config.operator(), config.machineCacheTtl(), Clock.systemUTC()));
  }

  public static PxeServer start(PxeServerConfig config, KnownMachines machines) throws IOException {
    Inet4Address address = serverAddress(config);
    ProxyDhcpPolicy policy =
        new ProxyDhcpPolicy(
            address,
            config.operator(),
            config.defaultScript(),
            config.biosBootFile(),
            config.efiBootFile());
    TftpRoot root = new TftpRoot(config.tftpRoot());
    InetSocketAddress proxy =
        config.interfaceName().isPresent()
            ? new InetSocketAddress(ANY, config.dhcpPort())
            : new InetSocketAddress(address, config.dhcpPort());
    TftpServer tftp =
        TftpServer.start(
            root,
            new InetSocketAddress(address, config.tftpPort()),
            TftpServer.Settings.DEFAULTS.withMaxTransfers(config.maxTransfers()));
    try {
      DhcpServer dhcp =
          DhcpServer.start(
              policy,
              machines,
              proxy,
              config.interfaceName(),
              new InetSocketAddress(address, config.pxePort()));
      return new PxeServer(dhcp, tftp, address);
    } catch (IOException | RuntimeException e) {
      tftp.close();
      throw e;
    }
  }

  /** {@code --bind}, else the interface's first IPv4 address. */
  private static Inet4Address serverAddress(PxeServerConfig config) throws IOException {
    if (config.bind().isPresent()) {
      if (config.bind().get() instanceof Inet4Address a) {
        return a;
      }
      throw new IOException("--bind " + config.bind().get() + " is not IPv4");
    }
    String name = config.interfaceName().orElseThrow();
    NetworkInterface nic = NetworkInterface.getByName(name);
    if (nic == null) {
      throw new IOException("interface " + name + " does not exist");
    }
    Optional<InetAddress> v4 =
        Collections.list(nic.getInetAddresses()).stream()
            .filter(a -> a instanceof Inet4Address)
            .findFirst();
    return (Inet4Address)
        v4.orElseThrow(() -> new IOException("interface " + name + " has no IPv4 address"));
  }

  private static Inet4Address anyAddress() {
    try {
      return (Inet4Address) InetAddress.getByAddress(new byte[4]);
    } catch (java.net.UnknownHostException e) {
      throw new IllegalStateException("4 bytes are always an IPv4 address", e);
    }
  }

  public Inet4Address serverAddress() {
    return serverAddress;
  }

  public InetSocketAddress dhcpAddress() throws IOException {
    return dhcp.proxyAddress();
  }

  public InetSocketAddress pxeAddress() throws IOException {
    return dhcp.pxeAddress();
  }

  public InetSocketAddress tftpAddress() {
    return tftp.address();
  }

  @Override
  public void close() throws IOException {
    try {
      dhcp.close();
    } finally {
      tftp.close();
    }
  }
}
