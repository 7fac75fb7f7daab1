package io.chrootbooter.pxe.tftp;

/**
 * The bytes are not a TFTP packet this codec accepts. The only exception {@link TftpPacket#decode}
 * throws; the message states the offending size, offset or value and what is accepted.
 */
public final class MalformedTftpPacketException extends Exception {
  private static final long serialVersionUID = 1L;

  public MalformedTftpPacketException(String message) {
    super(message);
  }
}
