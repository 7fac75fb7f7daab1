/**
 * proxyDHCP: a pure DHCP codec ({@link io.chrootbooter.pxe.dhcp.DhcpPacket}), a pure decision
 * function ({@link io.chrootbooter.pxe.dhcp.ProxyDhcpPolicy}) and a thin socket loop ({@link
 * io.chrootbooter.pxe.dhcp.DhcpServer}).
 *
 * <p>Why our own codec: the Java DHCP libraries on Maven Central (dhcp4java, jDHCP) are
 * unmaintained since the 2000s, model a full address-assigning server rather than a proxy, and know
 * nothing of the PXE options we depend on (RFC 4578 options 93/94/97, the PXE 2.1 vendor
 * sub-options inside option 43, iPXE's encapsulated option 175). What a proxy needs is the fixed
 * 236-byte BOOTP header of RFC 2131 §2 plus the TLV options of RFC 2132 — about 300 lines that we
 * can fuzz, table-test over real packet bytes and read in one sitting, with errors that state sizes
 * and values.
 */
package io.chrootbooter.pxe.dhcp;
