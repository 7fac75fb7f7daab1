package io.chrootbooter.pxe.dhcp;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.pxe.dhcp.ProxyDhcpRequest.Service;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ProxyDhcpPolicyTest {
  static final Inet4Address SERVER = v4("10.77.0.2");
  static final InetSocketAddress NO_ADDRESS = new InetSocketAddress(v4("0.0.0.0"), 68);
  static final InetSocketAddress CLIENT_4011 = new InetSocketAddress(v4("10.77.0.157"), 68);

  final ProxyDhcpPolicy policy =
      new ProxyDhcpPolicy(
          SERVER,
          URI.create("http://10.77.0.2:8080/"),
          Optional.empty(),
          "undionly.kpxe",
          "snponly.efi");

  static Stream<Arguments> architectures() {
    return Stream.of(
        Arguments.of(0, "undionly.kpxe"),
        Arguments.of(7, "snponly.efi"),
        Arguments.of(9, "snponly.efi"));
  }

  @ParameterizedTest(name = "option 93 = {0} gets {1}")
  @MethodSource("architectures")
  void plainPxeRomGetsTheIpxeBinaryForItsArchitecture(int arch, String file) throws Exception {
    Reply reply =
        policy
            .reply(discover(PxeRequests.pxeRom(DhcpMessageType.DISCOVER, arch)), true)
            .orElseThrow();

    DhcpPacket p = reply.packet();
    assertThat(p.op()).isEqualTo(DhcpPacket.BOOTREPLY);
    assertThat(p.file()).isEqualTo(file);
    assertThat(p.siaddr()).isEqualTo(SERVER);
    assertThat(p.yiaddr().getHostAddress()).isEqualTo("0.0.0.0");
    assertThat(p.xid()).isEqualTo(0x1234abcd);
    assertThat(p.clientMac()).hasValue("52:54:00:12:34:56");
    assertThat(p.options().messageType()).hasValue(DhcpMessageType.OFFER);
    assertThat(p.options().get(DhcpOptions.SERVER_IDENTIFIER)).hasValue(SERVER.getAddress());
    assertThat(p.options().string(DhcpOptions.VENDOR_CLASS)).hasValue("PXEClient");
    assertThat(p.options().has(DhcpOptions.CLIENT_UUID)).isTrue();
    assertThat(p.options().has(DhcpOptions.IPXE_ENCAPSULATED)).isFalse();
    PxeVendorOptions pxe =
        PxeVendorOptions.decode(p.options().get(DhcpOptions.VENDOR_SPECIFIC).orElseThrow());
    assertThat(pxe.discoveryControl()).hasValue(0b1011);
    assertThat(pxe.bootMenu()).hasSize(1);
    assertThat(pxe.bootMenu().get(0).type()).isEqualTo(0x8000);
    assertThat(reply.destination()).isEqualTo(new InetSocketAddress(v4("255.255.255.255"), 68));
  }

  @Test
  void capturedIpxeDiscoverGetsTheOperatorScriptUrlWithItsMac() throws Exception {
    DhcpPacket request = DhcpPacket.decode(ByteBuffer.wrap(PxeRequests.capturedIpxeDiscover()));

    DhcpPacket p = policy.reply(discover(request), true).orElseThrow().packet();

    assertThat(p.file()).isEqualTo("http://10.77.0.2:8080/boot/52:54:00:12:34:56.ipxe");
    assertThat(
            DhcpOptions.decodeEncapsulated(
                p.options().get(DhcpOptions.IPXE_ENCAPSULATED).orElseThrow(), "option 175"))
        .containsOnlyKeys(176)
        .hasEntrySatisfying(176, v -> assertThat(v).containsExactly(1));
    assertThat(p.options().has(DhcpOptions.VENDOR_SPECIFIC)).isTrue();
  }

  @Test
  void option175AloneMarksIpxe() {
    DhcpPacket rom = PxeRequests.pxeRom(DhcpMessageType.DISCOVER, 0);
    DhcpPacket ipxe =
        PxeRequests.withOptions(
            rom,
            rom.options()
                .with(DhcpOptions.IPXE_ENCAPSULATED, DhcpOptions.encodeEncapsulated(Map.of())));
    assertThat(policy.reply(discover(ipxe), true).orElseThrow().packet().file())
        .startsWith("http://10.77.0.2:8080/boot/");
  }

  @Test
  void pxeRequestOn4011GetsAnAckBackToItsSourceEchoingTheBootItem() throws Exception {
    DhcpPacket rom = PxeRequests.pxeRom(DhcpMessageType.REQUEST, 0);
    DhcpPacket request =
        PxeRequests.withOptions(
            rom,
            rom.options()
                .with(
                    DhcpOptions.VENDOR_SPECIFIC,
                    new PxeVendorOptions(
                            java.util.OptionalInt.empty(),
                            java.util.List.of(),
                            Optional.empty(),
                            Optional.of(new PxeVendorOptions.BootItem(0x8000, 0)))
                        .encode()));

    Reply reply =
        policy
            .reply(new ProxyDhcpRequest(request, Service.PXE_BOOT, CLIENT_4011), true)
            .orElseThrow();

    assertThat(reply.packet().options().messageType()).hasValue(DhcpMessageType.ACK);
    assertThat(reply.destination()).isEqualTo(CLIENT_4011);
    assertThat(
            PxeVendorOptions.decode(
                    reply.packet().options().get(DhcpOptions.VENDOR_SPECIFIC).orElseThrow())
                .bootItem())
        .hasValue(new PxeVendorOptions.BootItem(0x8000, 0));
  }

  @Test
  void relayedDiscoverGoesBackToTheRelay() {
    DhcpPacket rom = PxeRequests.pxeRom(DhcpMessageType.DISCOVER, 0);
    DhcpPacket relayed =
        new DhcpPacket(
            1,
            1,
            6,
            1,
            rom.xid(),
            0,
            0,
            null,
            null,
            null,
            v4("10.9.0.1"),
            rom.chaddr(),
            "",
            "",
            rom.options());
    Reply reply = policy.reply(discover(relayed), true).orElseThrow();
    assertThat(reply.destination()).isEqualTo(new InetSocketAddress(v4("10.9.0.1"), 67));
    assertThat(reply.packet().giaddr()).isEqualTo(v4("10.9.0.1"));
  }

  @Test
  void longScriptUrlsGoInOption67() {
    ProxyDhcpPolicy longUrl =
        new ProxyDhcpPolicy(
            SERVER,
            URI.create("http://operator.example:8080/" + "a".repeat(120)),
            Optional.empty(),
            "undionly.kpxe",
            "snponly.efi");
    DhcpPacket p =
        longUrl
            .reply(discover(PxeRequests.ipxe(DhcpMessageType.DISCOVER)), true)
            .orElseThrow()
            .packet();
    assertThat(p.file()).isEmpty();
    assertThat(p.bootFileName().orElseThrow()).endsWith("/boot/52:54:00:12:34:56.ipxe");
  }

  @Test
  void unknownMachinesGetNothingOrTheDefaultScript() {
    ProxyDhcpRequest ipxe = discover(PxeRequests.ipxe(DhcpMessageType.DISCOVER));
    ProxyDhcpRequest rom = discover(PxeRequests.pxeRom(DhcpMessageType.DISCOVER, 0));
    assertThat(policy.decide(ipxe, false))
        .isEqualTo(
            new Decision.Ignored(
                "52:54:00:12:34:56 is unknown to the operator and no --default-script is set"));
    assertThat(policy.reply(rom, false)).isEmpty();

    ProxyDhcpPolicy withDefault =
        new ProxyDhcpPolicy(
            SERVER,
            URI.create("http://10.77.0.2:8080"),
            Optional.of(URI.create("http://10.77.0.2:8080/default.ipxe")),
            "undionly.kpxe",
            "snponly.efi");
    assertThat(withDefault.reply(ipxe, false).orElseThrow().packet().file())
        .isEqualTo("http://10.77.0.2:8080/default.ipxe");
    assertThat(withDefault.reply(rom, false).orElseThrow().packet().file())
        .isEqualTo("undionly.kpxe");
  }

  static Stream<Arguments> ignored() {
    DhcpPacket rom = PxeRequests.pxeRom(DhcpMessageType.DISCOVER, 0);
    DhcpPacket reply =
        new DhcpPacket(
            2, 1, 6, 0, 1, 0, 0, null, null, null, null, rom.chaddr(), "", "", rom.options());
    DhcpPacket windows =
        PxeRequests.withOptions(rom, rom.options().with(DhcpOptions.VENDOR_CLASS, "MSFT 5.0"));
    DhcpPacket noVendor =
        PxeRequests.withOptions(rom, rom.options().without(DhcpOptions.VENDOR_CLASS));
    DhcpPacket bootp =
        PxeRequests.withOptions(rom, rom.options().without(DhcpOptions.MESSAGE_TYPE));
    DhcpPacket arm64 = PxeRequests.pxeRom(DhcpMessageType.DISCOVER, 11);
    DhcpPacket infiniband =
        new DhcpPacket(
            1, 32, 16, 0, 1, 0, 0, null, null, null, null, new byte[16], "", "", rom.options());
    DhcpPacket brokenVendor =
        PxeRequests.withOptions(
            rom, rom.options().with(DhcpOptions.VENDOR_SPECIFIC, new byte[] {71, 2, 0}));
    DhcpPacket otherServer =
        PxeRequests.withOptions(
            PxeRequests.pxeRom(DhcpMessageType.REQUEST, 0),
            PxeRequests.pxeRom(DhcpMessageType.REQUEST, 0)
                .options()
                .with(DhcpOptions.SERVER_IDENTIFIER, new byte[] {10, 77, 0, 1}));
    return Stream.of(
        Arguments.of(discover(reply), "op 2 is not 1 (BOOTREQUEST)"),
        Arguments.of(
            discover(windows), "option 60 is \"MSFT 5.0\"; only \"PXEClient…\" is answered"),
        Arguments.of(discover(noVendor), "option 60 is absent; only \"PXEClient…\" is answered"),
        Arguments.of(discover(bootp), "no valid option 53: a BOOTP request, not DHCP"),
        Arguments.of(discover(infiniband), "htype 32 hlen 16 is not Ethernet (htype 1, hlen 6)"),
        Arguments.of(
            discover(arm64),
            "client architecture 11 has no iPXE binary here; served are 0 (x86 BIOS), 7 and 9"
                + " (x86-64 UEFI)"),
        Arguments.of(
            discover(PxeRequests.pxeRom(DhcpMessageType.REQUEST, 0)),
            "DHCPREQUEST on port 67 is for the site's DHCP server; only DHCPDISCOVER"),
        Arguments.of(
            new ProxyDhcpRequest(rom, Service.PXE_BOOT, CLIENT_4011),
            "DHCPDISCOVER on port 4011; only DHCPREQUEST"),
        Arguments.of(
            new ProxyDhcpRequest(otherServer, Service.PXE_BOOT, CLIENT_4011),
            "option 54 names 10.77.0.1, not us (10.77.0.2)"),
        Arguments.of(
            discover(brokenVendor),
            "option 43 sub-option 71 at offset 0 claims 2 bytes but only 1 remain"));
  }

  @ParameterizedTest
  @MethodSource("ignored")
  void ignoresWhatIsNotForUsAndSaysWhy(ProxyDhcpRequest request, String reason) {
    assertThat(policy.decide(request, true)).isEqualTo(new Decision.Ignored(reason));
    assertThat(policy.rejection(request)).hasValue(reason);
  }

  static ProxyDhcpRequest discover(DhcpPacket p) {
    return new ProxyDhcpRequest(p, Service.PROXY_DHCP, NO_ADDRESS);
  }

  static Inet4Address v4(String s) {
    try {
      return (Inet4Address) InetAddress.getByName(s);
    } catch (java.net.UnknownHostException e) {
      throw new IllegalArgumentException(s, e);
    }
  }
}
