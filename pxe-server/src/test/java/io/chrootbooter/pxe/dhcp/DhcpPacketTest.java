package io.chrootbooter.pxe.dhcp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class DhcpPacketTest {

  @Test
  void decodesCapturedIpxeDiscover() throws Exception {
    DhcpPacket p = DhcpPacket.decode(ByteBuffer.wrap(PxeRequests.capturedIpxeDiscover()));

    assertThat(p.op()).isEqualTo(DhcpPacket.BOOTREQUEST);
    assertThat(p.xid()).isEqualTo(0xfd232917);
    assertThat(p.secs()).isEqualTo(4);
    assertThat(p.clientMac()).hasValue("52:54:00:12:34:56");
    assertThat(p.options().messageType()).hasValue(DhcpMessageType.DISCOVER);
    assertThat(p.options().string(DhcpOptions.VENDOR_CLASS))
        .hasValue("PXEClient:Arch:00000:UNDI:002001");
    assertThat(p.options().clientArchitecture()).hasValue(0);
    assertThat(p.options().userClasses()).containsExactly("iPXE");
    assertThat(p.options().has(DhcpOptions.IPXE_ENCAPSULATED)).isTrue();
    assertThat(p.options().get(DhcpOptions.CLIENT_NDI)).hasValue(new byte[] {1, 2, 1});
    assertThat(p.options().get(DhcpOptions.CLIENT_UUID).orElseThrow()).hasSize(17);
    assertThat(p.options().values().keySet())
        .containsExactly(53, 55, 57, 60, 61, 77, 93, 94, 97, 175);
    assertThat(ProxyDhcpPolicy.isIpxe(p)).isTrue();
  }

  @Test
  void capturedDiscoverSurvivesReencoding() throws Exception {
    DhcpPacket p = DhcpPacket.decode(ByteBuffer.wrap(PxeRequests.capturedIpxeDiscover()));
    DhcpPacket again = DhcpPacket.decode(ByteBuffer.wrap(p.encode()));
    assertThat(again).isEqualTo(p);
  }

  static Stream<Arguments> malformed() {
    byte[] good = PxeRequests.capturedIpxeDiscover();
    byte[] badOp = good.clone();
    badOp[0] = 7;
    byte[] badHlen = good.clone();
    badHlen[2] = 17;
    byte[] badCookie = good.clone();
    badCookie[236] = 0x12;
    byte[] overrun = Arrays.copyOf(good, 246);
    overrun[240] = 60;
    overrun[241] = 9;
    overrun[242] = 'P';
    byte[] noLength = Arrays.copyOf(good, 241);
    noLength[240] = 60;
    byte[] badOverload = Arrays.copyOf(good, 244);
    badOverload[240] = 52;
    badOverload[241] = 1;
    badOverload[242] = 9;
    badOverload[243] = (byte) 255;
    return Stream.of(
        Arguments.of(new byte[0], "DHCP packet is 0 bytes; minimum is 240"),
        Arguments.of(new byte[180], "DHCP packet is 180 bytes; minimum is 240"),
        Arguments.of(new byte[1473], "DHCP packet is 1473 bytes; maximum is 1472"),
        Arguments.of(badOp, "DHCP op is 7; expected 1 (BOOTREQUEST) or 2 (BOOTREPLY)"),
        Arguments.of(badHlen, "DHCP hlen is 17; maximum is 16"),
        Arguments.of(
            badCookie, "DHCP magic cookie at offset 236 is 0x12825363; expected 0x63825363"),
        Arguments.of(
            overrun,
            "DHCP option 60 at offset 240 claims 9 bytes but only 4 remain in the options"),
        Arguments.of(noLength, "DHCP option 60 at offset 240 in the options has no length byte"),
        Arguments.of(badOverload, "DHCP option 52 (overload) is 09; expected one byte 1, 2 or 3"));
  }

  @ParameterizedTest
  @MethodSource("malformed")
  void rejectsWithSizesAndValues(byte[] bytes, String message) {
    assertThatThrownBy(() -> DhcpPacket.decode(ByteBuffer.wrap(bytes)))
        .isInstanceOf(MalformedDhcpPacketException.class)
        .hasMessage(message);
  }

  @Test
  void concatenatesSplitOptionsAndSplitsLongOnes() throws Exception {
    byte[] longValue = new byte[300];
    Arrays.fill(longValue, (byte) 'x');
    DhcpPacket p =
        PxeRequests.withOptions(
            PxeRequests.pxeRom(DhcpMessageType.DISCOVER, 0),
            PxeRequests.pxeRom(DhcpMessageType.DISCOVER, 0)
                .options()
                .with(DhcpOptions.BOOTFILE_NAME, longValue));
    byte[] wire = p.encode();
    // RFC 3396: 300 bytes go out as a 255-byte and a 45-byte instance of option 67.
    int at = indexOf(wire, new byte[] {67, (byte) 255, 'x'});
    assertThat(at).isPositive();
    assertThat(wire[at + 2 + 255]).isEqualTo((byte) 67);
    assertThat(wire[at + 2 + 255 + 1]).isEqualTo((byte) 45);
    assertThat(DhcpPacket.decode(ByteBuffer.wrap(wire)).options().get(DhcpOptions.BOOTFILE_NAME))
        .hasValue(longValue);
  }

  @Test
  void encodesMessageTypeFirstThenAscending() {
    byte[] wire = PxeRequests.pxeRom(DhcpMessageType.REQUEST, 7).encode();
    assertThat(Arrays.copyOfRange(wire, 236, 243))
        .containsExactly(0x63, 0x82, 0x53, 0x63, 53, 1, DhcpMessageType.REQUEST.code());
    assertThat(wire[243]).isEqualTo((byte) DhcpOptions.VENDOR_CLASS);
  }

  @Test
  void padsShortMessagesTo300Bytes() {
    DhcpPacket minimal =
        PxeRequests.withOptions(
            PxeRequests.pxeRom(DhcpMessageType.DISCOVER, 0),
            DhcpOptions.empty().with(DhcpOptions.MESSAGE_TYPE, new byte[] {1}));
    byte[] wire = minimal.encode();
    assertThat(wire).hasSize(DhcpPacket.MIN_ENCODED_SIZE);
    assertThat(wire[243]).isEqualTo((byte) DhcpOptions.END);
  }

  @Test
  void resolvesOptionOverloadFromFileAndSnameFields() throws Exception {
    byte[] wire =
        new DhcpPacket(
                1,
                1,
                6,
                0,
                42,
                0,
                0,
                null,
                null,
                null,
                null,
                PxeRequests.MAC,
                "",
                "",
                DhcpOptions.empty()
                    .with(DhcpOptions.MESSAGE_TYPE, new byte[] {1})
                    .with(DhcpOptions.OVERLOAD, new byte[] {3}))
            .encode();
    // file field (offset 108): option 60 "PXEClient"; sname field (offset 44): option 93 = 7.
    byte[] vc = "PXEClient".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    wire[108] = 60;
    wire[109] = (byte) vc.length;
    System.arraycopy(vc, 0, wire, 110, vc.length);
    wire[110 + vc.length] = (byte) 255;
    wire[44] = 93;
    wire[45] = 2;
    wire[46] = 0;
    wire[47] = 7;
    wire[48] = (byte) 255;

    DhcpPacket p = DhcpPacket.decode(ByteBuffer.wrap(wire));

    assertThat(p.options().string(DhcpOptions.VENDOR_CLASS)).hasValue("PXEClient");
    assertThat(p.options().clientArchitecture()).hasValue(7);
    assertThat(p.options().has(DhcpOptions.OVERLOAD)).isFalse();
    assertThat(p.file()).isEmpty();
    assertThat(p.sname()).isEmpty();
  }

  @Test
  void userClassesReadRfc3004FramingAndBareStrings() {
    DhcpOptions framed =
        DhcpOptions.empty()
            .with(DhcpOptions.USER_CLASS, new byte[] {4, 'i', 'P', 'X', 'E', 1, 'x'});
    DhcpOptions bare = DhcpOptions.empty().with(DhcpOptions.USER_CLASS, "iPXE");
    assertThat(framed.userClasses()).containsExactly("iPXE", "x");
    assertThat(bare.userClasses()).containsExactly("iPXE");
    assertThat(DhcpOptions.empty().userClasses()).isEmpty();
  }

  @Test
  void vendorOptionsRoundTripInTheirByteLayout() throws Exception {
    PxeVendorOptions v =
        new PxeVendorOptions(
            java.util.OptionalInt.of(PxeVendorOptions.BOOT_FILE_NAME_WITHOUT_DISCOVERY),
            List.of(new PxeVendorOptions.BootMenuItem(0x8000, "CB")),
            java.util.Optional.of(new PxeVendorOptions.MenuPrompt(0, "P")),
            java.util.Optional.of(new PxeVendorOptions.BootItem(0x8000, 0)));
    byte[] wire = v.encode();
    assertThat(HexFormat.of().formatHex(wire))
        .isEqualTo("06010b" + "0905800002" + "4342" + "0a020050" + "470480000000" + "ff");
    assertThat(PxeVendorOptions.decode(wire)).isEqualTo(v);
  }

  @Test
  void encapsulatedOptionsRejectOverruns() {
    assertThatThrownBy(() -> DhcpOptions.decodeEncapsulated(new byte[] {6, 5, 1}, "option 43"))
        .isInstanceOf(MalformedDhcpPacketException.class)
        .hasMessage("option 43 sub-option 6 at offset 0 claims 5 bytes but only 1 remain");
    assertThat(Map.copyOf(DhcpOptions.empty().values())).isEmpty();
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i <= hay.length - needle.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }
}
