package io.chrootbooter.pxe.dhcp;

import io.chrootbooter.pxe.dhcp.Decision.Ignored;
import io.chrootbooter.pxe.dhcp.ProxyDhcpRequest.Service;
import io.chrootbooter.pxe.dhcp.PxeVendorOptions.BootItem;
import io.chrootbooter.pxe.dhcp.PxeVendorOptions.BootMenuItem;
import io.chrootbooter.pxe.dhcp.PxeVendorOptions.MenuPrompt;
import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Decides, without I/O, whether and how the proxy answers a request (PXE specification 2.1
 * "proxyDHCP"; RFC 4578; tinkerbell/smee handler/proxy).
 *
 * <ul>
 *   <li>Only PXE clients (option 60 starting with "PXEClient") get an answer, and never an address:
 *       {@code yiaddr} is 0.0.0.0, the site's DHCP server leases addresses.
 *   <li>Port 67: DHCPDISCOVER → DHCPOFFER. Port 4011: DHCPREQUEST → DHCPACK. Anything else there
 *       belongs to the site's DHCP server.
 *   <li>A client that is already iPXE (option 77 "iPXE" or option 175 present) gets {@code
 *       <operator>/boot/<mac>.ipxe} as its boot file, an HTTP URL iPXE fetches directly — which
 *       breaks the chainload loop. A plain PXE ROM gets the iPXE binary for its architecture
 *       (option 93) from our TFTP server ({@code siaddr}).
 *   <li>A machine the operator does not know gets nothing, or {@link #defaultScript} if set.
 * </ul>
 *
 * @param serverAddress our address: option 54 and {@code siaddr} (the TFTP server)
 * @param operator base URL of the operator, e.g. {@code http://10.0.0.1:8080}
 * @param defaultScript iPXE script URL for machines the operator does not know; empty = no answer
 * @param biosBootFile TFTP name of the iPXE binary for x86 BIOS (option 93 type 0)
 * @param efiBootFile TFTP name of the iPXE binary for x86-64 UEFI (option 93 types 7 and 9)
 */
public record ProxyDhcpPolicy(
    Inet4Address serverAddress,
    URI operator,
    Optional<URI> defaultScript,
    String biosBootFile,
    String efiBootFile) {

  /** Boot menu item type: 0x8000..0xfffe are vendor types; 0 would mean "local boot" to a ROM. */
  public static final int BOOT_ITEM_TYPE = 0x8000;

  /**
   * The prefix of option 60 every PXE client sends (PXE 2.1: "PXEClient:Arch:xxxxx:UNDI:yyyzzz").
   */
  public static final String PXE_CLIENT = "PXEClient";

  /** iPXE's option 175.176 "no ProxyDHCP" (include/ipxe/dhcp.h DHCP_EB_NO_PXEDHCP). */
  public static final int IPXE_NO_PXEDHCP = 176;

  private static final int DHCP_CLIENT_PORT = 68;
  private static final int DHCP_SERVER_PORT = 67;

  public ProxyDhcpPolicy {
    Objects.requireNonNull(serverAddress, "serverAddress");
    Objects.requireNonNull(operator, "operator");
    Objects.requireNonNull(defaultScript, "defaultScript");
    if (!"http".equals(operator.getScheme()) || operator.getHost() == null) {
      throw new IllegalArgumentException(
          "operator URL \""
              + operator
              + "\" is not http://HOST[:PORT]: the iPXE here has no HTTPS");
    }
    String base = operator.toString();
    while (base.endsWith("/")) {
      base = base.substring(0, base.length() - 1);
    }
    operator = URI.create(base);
  }

  /** The URL of the iPXE script for {@code mac} (lower-case colon form). */
  public URI scriptUrl(String mac) {
    return URI.create(operator + "/boot/" + mac + ".ipxe");
  }

  /**
   * Why {@code request} is not for us at all, before the operator is asked about its MAC; empty
   * when it is a PXE request this proxy would answer for a known machine.
   */
  public Optional<String> rejection(ProxyDhcpRequest request) {
    DhcpPacket p = request.packet();
    if (p.op() != DhcpPacket.BOOTREQUEST) {
      return Optional.of("op " + p.op() + " is not 1 (BOOTREQUEST)");
    }
    Optional<DhcpMessageType> type = p.options().messageType();
    if (type.isEmpty()) {
      return Optional.of("no valid option 53: a BOOTP request, not DHCP");
    }
    Optional<String> vendorClass = p.options().string(DhcpOptions.VENDOR_CLASS);
    if (vendorClass.isEmpty() || !vendorClass.get().startsWith(PXE_CLIENT)) {
      return Optional.of(
          "option 60 is "
              + vendorClass.map(v -> '"' + v + '"').orElse("absent")
              + "; only \"PXEClient…\" is answered");
    }
    if (p.clientMac().isEmpty()) {
      return Optional.of(
          "htype " + p.htype() + " hlen " + p.hlen() + " is not Ethernet (htype 1, hlen 6)");
    }
    if (request.service() == Service.PROXY_DHCP && type.get() != DhcpMessageType.DISCOVER) {
      return Optional.of(
          "DHCP" + type.get() + " on port 67 is for the site's DHCP server; only DHCPDISCOVER");
    }
    if (request.service() == Service.PXE_BOOT && type.get() != DhcpMessageType.REQUEST) {
      return Optional.of("DHCP" + type.get() + " on port 4011; only DHCPREQUEST");
    }
    Optional<byte[]> serverId = p.options().get(DhcpOptions.SERVER_IDENTIFIER);
    if (request.service() == Service.PXE_BOOT
        && serverId.isPresent()
        && !Arrays.equals(serverId.get(), serverAddress.getAddress())) {
      return Optional.of(
          "option 54 names "
              + (serverId.get().length == 4
                  ? DhcpPacket.address(serverId.get()).getHostAddress()
                  : HexFormat.of().formatHex(serverId.get()))
              + ", not us ("
              + serverAddress.getHostAddress()
              + ")");
    }
    if (!isIpxe(p) && bootFileFor(p).isEmpty()) {
      return Optional.of(
          "client architecture "
              + p.options().clientArchitecture().orElse(-1)
              + " has no iPXE binary here; served are 0 (x86 BIOS), 7 and 9 (x86-64 UEFI)");
    }
    if (p.options().has(DhcpOptions.VENDOR_SPECIFIC)) {
      try {
        PxeVendorOptions.decode(p.options().get(DhcpOptions.VENDOR_SPECIFIC).orElseThrow());
      } catch (MalformedDhcpPacketException e) {
        return Optional.of(e.getMessage());
      }
    }
    return Optional.empty();
  }

  /**
   * The answer to {@code request}, or why there is none.
   *
   * @param knownMachine whether the operator has a MachineBoot for the request's MAC
   */
  public Decision decide(ProxyDhcpRequest request, boolean knownMachine) {
    Optional<String> rejected = rejection(request);
    if (rejected.isPresent()) {
      return new Ignored(rejected.get());
    }
    DhcpPacket p = request.packet();
    String mac = p.clientMac().orElseThrow();
    if (!knownMachine && defaultScript.isEmpty()) {
      return new Ignored(mac + " is unknown to the operator and no --default-script is set");
    }
    boolean ipxe = isIpxe(p);
    String bootFile;
    if (ipxe) {
      bootFile = knownMachine ? scriptUrl(mac).toString() : defaultScript.orElseThrow().toString();
    } else {
      bootFile = bootFileFor(p).orElseThrow();
    }

    Optional<BootItem> askedItem = Optional.empty();
    Optional<byte[]> vendor = p.options().get(DhcpOptions.VENDOR_SPECIFIC);
    if (vendor.isPresent()) {
      try {
        askedItem = PxeVendorOptions.decode(vendor.get()).bootItem();
      } catch (MalformedDhcpPacketException e) {
        return new Ignored(e.getMessage());
      }
    }
    PxeVendorOptions pxe =
        new PxeVendorOptions(
            OptionalInt.of(PxeVendorOptions.BOOT_FILE_NAME_WITHOUT_DISCOVERY),
            List.of(new BootMenuItem(BOOT_ITEM_TYPE, "Chroot Booter")),
            Optional.of(new MenuPrompt(0, "Chroot Booter")),
            askedItem);

    DhcpOptions options =
        DhcpOptions.empty()
            .with(
                DhcpOptions.MESSAGE_TYPE,
                new byte[] {
                  (byte)
                      (request.service() == Service.PROXY_DHCP
                              ? DhcpMessageType.OFFER
                              : DhcpMessageType.ACK)
                          .code()
                })
            .with(DhcpOptions.SERVER_IDENTIFIER, serverAddress.getAddress())
            .with(DhcpOptions.VENDOR_CLASS, PXE_CLIENT)
            .with(DhcpOptions.VENDOR_SPECIFIC, pxe.encode());
    Optional<byte[]> uuid = p.options().get(DhcpOptions.CLIENT_UUID);
    if (uuid.isPresent()) {
      // PXE ROMs look for their machine identifier in the reply; dnsmasq and smee echo it.
      options = options.with(DhcpOptions.CLIENT_UUID, uuid.get());
    }
    if (ipxe) {
      // What dnsmasq sends iPXE (docs/architecture.md §7). iPXE honours 175.176 only in an offer
      // that leases an
      // address (dhcp_discovery_rx), so here it is harmless; it tells a later DHCP run of the
      // same iPXE not to wait for ProxyDHCP.
      options =
          options.with(
              DhcpOptions.IPXE_ENCAPSULATED,
              DhcpOptions.encodeEncapsulated(Map.of(IPXE_NO_PXEDHCP, new byte[] {1})));
    }
    String fileField = bootFile;
    if (bootFile.getBytes(StandardCharsets.ISO_8859_1).length > 127) {
      options = options.with(DhcpOptions.BOOTFILE_NAME, bootFile);
      fileField = "";
    }
    DhcpPacket reply =
        new DhcpPacket(
            DhcpPacket.BOOTREPLY,
            p.htype(),
            p.hlen(),
            0,
            p.xid(),
            0,
            p.flags(),
            request.service() == Service.PXE_BOOT ? p.ciaddr() : null,
            null,
            serverAddress,
            p.giaddr(),
            p.chaddr(),
            "",
            fileField,
            options);
    return new Reply(reply, destination(request));
  }

  /** {@link #decide}, as the answer alone. */
  public Optional<Reply> reply(ProxyDhcpRequest request, boolean knownMachine) {
    return decide(request, knownMachine) instanceof Reply r ? Optional.of(r) : Optional.empty();
  }

  /** True for iPXE: user class "iPXE" (option 77) or iPXE's own option 175. */
  public static boolean isIpxe(DhcpPacket p) {
    return p.options().has(DhcpOptions.IPXE_ENCAPSULATED)
        || p.options().userClasses().contains("iPXE");
  }

  /**
   * The iPXE binary for the client's architecture (RFC 4578 §2.1; IANA "Processor Architecture
   * Types"): 0 x86 BIOS, 7 x86-64 UEFI (byte code), 9 x86-64 UEFI. A PXE ROM without option 93 is a
   * BIOS ROM (PXE 2.1 predates the option).
   */
  Optional<String> bootFileFor(DhcpPacket p) {
    OptionalInt arch = p.options().clientArchitecture();
    int type = arch.orElse(0);
    return switch (type) {
      case 0 -> Optional.of(biosBootFile);
      case 7, 9 -> Optional.of(efiBootFile);
      default -> Optional.empty();
    };
  }

  /**
   * RFC 2131 §4.1 for a proxy: through a relay, to {@code giaddr}:67; to a client that already has
   * an address (port 4011 requests), back to where it came from; else broadcast to port 68, since
   * the proxy offers no address to unicast to.
   */
  static InetSocketAddress destination(ProxyDhcpRequest request) {
    DhcpPacket p = request.packet();
    if (!p.giaddr().isAnyLocalAddress()) {
      return new InetSocketAddress(p.giaddr(), DHCP_SERVER_PORT);
    }
    if (!request.source().getAddress().isAnyLocalAddress()) {
      return request.source();
    }
    return new InetSocketAddress(
        DhcpPacket.address(new byte[] {(byte) 255, (byte) 255, (byte) 255, (byte) 255}),
        DHCP_CLIENT_PORT);
  }
}
