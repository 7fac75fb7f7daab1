package io.chrootbooter.pxe.dhcp;

import java.net.InetSocketAddress;
import java.util.Objects;

/**
 * A proxy answer and where to send it.
 *
 * @param packet the DHCPOFFER or DHCPACK
 * @param destination 255.255.255.255:68 for a client without an address, the relay's giaddr:67, or
 *     the sender's own address and port
 */
public record Reply(DhcpPacket packet, InetSocketAddress destination) implements Decision {
  public Reply {
    Objects.requireNonNull(packet, "packet");
    Objects.requireNonNull(destination, "destination");
  }
}
