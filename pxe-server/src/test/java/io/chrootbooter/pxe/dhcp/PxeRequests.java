package io.chrootbooter.pxe.dhcp;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/** Request packets for tests: captured ones from resources, and constructed ones. */
final class PxeRequests {
  static final byte[] MAC = HexFormat.of().parseHex("525400123456");

  private PxeRequests() {}

  /**
   * The DHCPDISCOVER of Debian's iPXE 1.0.0+git-20190125 (the virtio-net option ROM of ipxe-qemu),
   * captured on UDP 67 in a network namespace: 400 bytes, MAC 52:54:00:12:34:56, options 53, 57, 93
   * (0 = BIOS), 94, 60 "PXEClient:Arch:00000:UNDI:002001", 77 "iPXE", 55, 175, 61, 97.
   */
  static byte[] capturedIpxeDiscover() {
    try (InputStream in = PxeRequests.class.getResourceAsStream("ipxe-2019-discover.hex")) {
      return HexFormat.of()
          .parseHex(new String(in.readAllBytes(), StandardCharsets.US_ASCII).trim());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A plain PXE ROM's request (no iPXE markers) for {@code arch} (option 93). */
  static DhcpPacket pxeRom(DhcpMessageType type, int arch) {
    return new DhcpPacket(
        DhcpPacket.BOOTREQUEST,
        1,
        6,
        0,
        0x1234abcd,
        4,
        DhcpPacket.FLAG_BROADCAST,
        null,
        null,
        null,
        null,
        MAC,
        "",
        "",
        DhcpOptions.empty()
            .with(DhcpOptions.MESSAGE_TYPE, new byte[] {(byte) type.code()})
            .with(DhcpOptions.VENDOR_CLASS, String.format("PXEClient:Arch:%05d:UNDI:002001", arch))
            .with(DhcpOptions.CLIENT_ARCHITECTURE, new byte[] {(byte) (arch >> 8), (byte) arch})
            .with(DhcpOptions.CLIENT_NDI, new byte[] {1, 2, 1})
            .with(DhcpOptions.CLIENT_UUID, new byte[17]));
  }

  /** An iPXE request: like {@link #pxeRom} plus user class "iPXE". */
  static DhcpPacket ipxe(DhcpMessageType type) {
    DhcpPacket p = pxeRom(type, 0);
    return withOptions(p, p.options().with(DhcpOptions.USER_CLASS, "iPXE"));
  }

  static DhcpPacket withOptions(DhcpPacket p, DhcpOptions options) {
    return new DhcpPacket(
        p.op(),
        p.htype(),
        p.hlen(),
        p.hops(),
        p.xid(),
        p.secs(),
        p.flags(),
        p.ciaddr(),
        p.yiaddr(),
        p.siaddr(),
        p.giaddr(),
        p.chaddr(),
        p.sname(),
        p.file(),
        options);
  }
}
