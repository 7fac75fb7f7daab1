/**
 * A read-only TFTP server for the iPXE binaries: a pure packet codec ({@link
 * io.chrootbooter.pxe.tftp.TftpPacket}), pure option negotiation ({@link
 * io.chrootbooter.pxe.tftp.TftpNegotiation}), path confinement ({@link
 * io.chrootbooter.pxe.tftp.TftpRoot}) and a thin socket loop ({@link
 * io.chrootbooter.pxe.tftp.TftpServer}).
 *
 * <p>Why our own codec: TFTP (RFC 1350 with the option extensions of RFC 2347/2348/2349) is six
 * packet types of a few bytes each. The Java implementation on Maven Central (commons-net's {@code
 * TFTPServer}) lives in its test sources, writes files, and does not confine paths the way a
 * network-facing server must (no {@code ..}, no absolute names, no symlinks leaving the root). A
 * small codec we fuzz is less code to trust than a wrapper around one we cannot.
 */
package io.chrootbooter.pxe.tftp;
