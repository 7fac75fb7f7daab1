package io.chrootbooter.pxe.dhcp;

import java.util.Optional;

/** Values of option 53, DHCP Message Type (RFC 2132 §9.6). */
public enum DhcpMessageType {
  DISCOVER(1),
  OFFER(2),
  REQUEST(3),
  DECLINE(4),
  ACK(5),
  NAK(6),
  RELEASE(7),
  INFORM(8);

  private final int code;

  DhcpMessageType(int code) {
    this.code = code;
  }

  /** The one-byte value carried in option 53. */
  public int code() {
    return code;
  }

  /** The type for an option 53 value, or empty for values RFC 2132 does not define. */
  public static Optional<DhcpMessageType> of(int code) {
    for (DhcpMessageType type : values()) {
      if (type.code == code) {
        return Optional.of(type);
      }
    }
    return Optional.empty();
  }
}
