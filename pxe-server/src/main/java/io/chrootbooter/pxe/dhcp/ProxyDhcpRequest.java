package io.chrootbooter.pxe.dhcp;

import java.net.InetSocketAddress;
import java.util.Objects;

/**
 * A decoded message and where it arrived.
 *
 * @param packet the decoded message
 * @param service which of the proxy's two ports received it
 * @param source the sender's address and port, as the socket reported it
 */
public record ProxyDhcpRequest(DhcpPacket packet, Service service, InetSocketAddress source) {
  public ProxyDhcpRequest {
    Objects.requireNonNull(packet, "packet");
    Objects.requireNonNull(service, "service");
    Objects.requireNonNull(source, "source");
  }

  /** The two proxyDHCP ports of the PXE specification 2.1 (67 beside DHCP, 4011 boot server). */
  public enum Service {
    /** UDP 67, beside the site's DHCP server: DHCPDISCOVER in, proxy DHCPOFFER out. */
    PROXY_DHCP,
    /** UDP 4011, the PXE boot server port: unicast DHCPREQUEST in, DHCPACK out. */
    PXE_BOOT
  }
}
