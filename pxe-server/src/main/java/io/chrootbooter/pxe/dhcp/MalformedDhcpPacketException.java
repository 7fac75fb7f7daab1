package io.chrootbooter.pxe.dhcp;

/**
 * The bytes are not a DHCP/BOOTP message this codec accepts. The only exception {@link
 * DhcpPacket#decode} throws; the message states the offending size, offset or value and what is
 * accepted, e.g. {@code DHCP packet is 180 bytes; minimum is 240}.
 */
public final class MalformedDhcpPacketException extends Exception {
  private static final long serialVersionUID = 1L;

  public MalformedDhcpPacketException(String message) {
    super(message);
  }
}
