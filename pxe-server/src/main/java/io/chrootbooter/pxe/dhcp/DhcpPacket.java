package io.chrootbooter.pxe.dhcp;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;

/**
 * A DHCP message (RFC 2131 §2, Figure 1), decoded and encoded without I/O:
 *
 * <pre>
 * offset size field
 *      0    1 op      1 = BOOTREQUEST, 2 = BOOTREPLY
 *      1    1 htype   1 = Ethernet (RFC 1700)
 *      2    1 hlen    6 for Ethernet; at most 16
 *      3    1 hops
 *      4    4 xid
 *      8    2 secs
 *     10    2 flags   bit 15 = BROADCAST (RFC 2131 §2, Figure 2)
 *     12    4 ciaddr
 *     16    4 yiaddr
 *     20    4 siaddr  next server: where the client fetches its boot file by TFTP
 *     24    4 giaddr
 *     28   16 chaddr
 *     44   64 sname   NUL-terminated
 *    108  128 file    NUL-terminated boot file name
 *    236    4 magic cookie 99.130.83.99 (RFC 2131 §3)
 *    240    - options (RFC 2132), ending with 255
 * </pre>
 *
 * <p>Option overload (option 52, RFC 2132 §9.3) is resolved on decode: options found in {@code
 * file}/{@code sname} are merged into {@link #options} (in the order RFC 2131 §4.1 gives: options,
 * file, sname), the overloaded fields become empty and option 52 itself is dropped. {@link #encode}
 * never overloads; a boot file name longer than 127 bytes goes in option 67 (see {@link
 * ProxyDhcpPolicy}).
 *
 * @param op 1 = BOOTREQUEST, 2 = BOOTREPLY
 * @param chaddr client hardware address, {@code hlen} significant bytes of 16
 */
public record DhcpPacket(
    int op,
    int htype,
    int hlen,
    int hops,
    int xid,
    int secs,
    int flags,
    Inet4Address ciaddr,
    Inet4Address yiaddr,
    Inet4Address siaddr,
    Inet4Address giaddr,
    byte[] chaddr,
    String sname,
    String file,
    DhcpOptions options) {

  /** Size of the fixed header plus magic cookie; RFC 2131 §2. */
  public static final int MIN_SIZE = 240;

  /**
   * Largest message accepted: a 1500-byte Ethernet MTU less the IPv4 (20) and UDP (8) headers. PXE
   * and iPXE clients never send more (they advertise a maximum message size of 1472 or less).
   */
  public static final int MAX_SIZE = 1472;

  /** RFC 1542 §2.1: BOOTP relays and old clients drop replies shorter than 300 bytes. */
  public static final int MIN_ENCODED_SIZE = 300;

  public static final int BOOTREQUEST = 1;
  public static final int BOOTREPLY = 2;
  public static final int HTYPE_ETHERNET = 1;

  /** The BROADCAST bit of {@link #flags} (RFC 2131 §2, Figure 2). */
  public static final int FLAG_BROADCAST = 0x8000;

  public static final int MAGIC_COOKIE = 0x63825363;

  private static final int SNAME_OFFSET = 44;
  private static final int SNAME_SIZE = 64;
  private static final int FILE_OFFSET = 108;
  private static final int FILE_SIZE = 128;
  private static final int COOKIE_OFFSET = 236;
  private static final Inet4Address ZERO = address(new byte[4]);

  public DhcpPacket {
    checkByte("op", op);
    checkByte("htype", htype);
    checkByte("hlen", hlen);
    checkByte("hops", hops);
    if (hlen > 16) {
      throw new IllegalArgumentException("DHCP hlen is " + hlen + "; maximum is 16");
    }
    if (secs < 0 || secs > 0xffff || flags < 0 || flags > 0xffff) {
      throw new IllegalArgumentException(
          "DHCP secs " + secs + " / flags " + flags + " are not 16-bit unsigned values");
    }
    ciaddr = Objects.requireNonNullElse(ciaddr, ZERO);
    yiaddr = Objects.requireNonNullElse(yiaddr, ZERO);
    siaddr = Objects.requireNonNullElse(siaddr, ZERO);
    giaddr = Objects.requireNonNullElse(giaddr, ZERO);
    if (chaddr.length > 16) {
      throw new IllegalArgumentException(
          "DHCP chaddr is " + chaddr.length + " bytes; maximum is 16");
    }
    chaddr = Arrays.copyOf(chaddr, 16);
    sname = Objects.requireNonNullElse(sname, "");
    file = Objects.requireNonNullElse(file, "");
    checkField("sname", sname, SNAME_SIZE);
    checkField("file", file, FILE_SIZE);
    Objects.requireNonNull(options, "options");
  }

  /**
   * Decodes one DHCP message: the whole of {@code buffer}'s remaining bytes (one UDP payload).
   *
   * @throws MalformedDhcpPacketException for anything but a well-formed message, with the size,
   *     offset or value at fault; never any other exception
   */
  public static DhcpPacket decode(ByteBuffer buffer) throws MalformedDhcpPacketException {
    int size = buffer.remaining();
    if (size < MIN_SIZE) {
      throw new MalformedDhcpPacketException(
          "DHCP packet is " + size + " bytes; minimum is " + MIN_SIZE);
    }
    if (size > MAX_SIZE) {
      throw new MalformedDhcpPacketException(
          "DHCP packet is " + size + " bytes; maximum is " + MAX_SIZE);
    }
    byte[] b = new byte[size];
    buffer.get(b);
    int op = b[0] & 0xff;
    if (op != BOOTREQUEST && op != BOOTREPLY) {
      throw new MalformedDhcpPacketException(
          "DHCP op is " + op + "; expected 1 (BOOTREQUEST) or 2 (BOOTREPLY)");
    }
    int hlen = b[2] & 0xff;
    if (hlen > 16) {
      throw new MalformedDhcpPacketException("DHCP hlen is " + hlen + "; maximum is 16");
    }
    int cookie = ByteBuffer.wrap(b, COOKIE_OFFSET, 4).getInt();
    if (cookie != MAGIC_COOKIE) {
      throw new MalformedDhcpPacketException(
          String.format(
              "DHCP magic cookie at offset %d is 0x%08x; expected 0x%08x",
              COOKIE_OFFSET, cookie, MAGIC_COOKIE));
    }
    TreeMap<Integer, byte[]> options = new TreeMap<>();
    decodeOptions(b, MIN_SIZE, size, "options", options);
    String sname = cString(b, SNAME_OFFSET, SNAME_SIZE);
    String file = cString(b, FILE_OFFSET, FILE_SIZE);
    byte[] overload = options.remove(DhcpOptions.OVERLOAD);
    if (overload != null) {
      if (overload.length != 1 || (overload[0] & 0xff) < 1 || (overload[0] & 0xff) > 3) {
        throw new MalformedDhcpPacketException(
            "DHCP option 52 (overload) is "
                + HexFormat.of().formatHex(overload)
                + "; expected one byte 1, 2 or 3");
      }
      int which = overload[0];
      if ((which & 1) != 0) {
        decodeOptions(b, FILE_OFFSET, FILE_OFFSET + FILE_SIZE, "file field", options);
        file = "";
      }
      if ((which & 2) != 0) {
        decodeOptions(b, SNAME_OFFSET, SNAME_OFFSET + SNAME_SIZE, "sname field", options);
        sname = "";
      }
      // Option 52 belongs in the options field only (RFC 2132 §9.3); one found in file/sname
      // is not applied again.
      options.remove(DhcpOptions.OVERLOAD);
    }
    ByteBuffer h = ByteBuffer.wrap(b);
    return new DhcpPacket(
        op,
        b[1] & 0xff,
        hlen,
        b[3] & 0xff,
        h.getInt(4),
        h.getShort(8) & 0xffff,
        h.getShort(10) & 0xffff,
        address(Arrays.copyOfRange(b, 12, 16)),
        address(Arrays.copyOfRange(b, 16, 20)),
        address(Arrays.copyOfRange(b, 20, 24)),
        address(Arrays.copyOfRange(b, 24, 28)),
        Arrays.copyOfRange(b, 28, 44),
        sname,
        file,
        new DhcpOptions(options));
  }

  /** Options region {@code [from, to)}: code, length, value; PAD skipped; END stops. */
  private static void decodeOptions(
      byte[] b, int from, int to, String region, Map<Integer, byte[]> into)
      throws MalformedDhcpPacketException {
    int i = from;
    while (i < to) {
      int code = b[i] & 0xff;
      if (code == DhcpOptions.END) {
        return;
      }
      if (code == DhcpOptions.PAD) {
        i++;
        continue;
      }
      if (i + 1 >= to) {
        throw new MalformedDhcpPacketException(
            "DHCP option "
                + code
                + " at offset "
                + i
                + " in the "
                + region
                + " has no length byte");
      }
      int len = b[i + 1] & 0xff;
      if (i + 2 + len > to) {
        throw new MalformedDhcpPacketException(
            "DHCP option "
                + code
                + " at offset "
                + i
                + " claims "
                + len
                + " bytes but only "
                + (to - i - 2)
                + " remain in the "
                + region);
      }
      into.merge(code, Arrays.copyOfRange(b, i + 2, i + 2 + len), DhcpOptions::concat);
      i += 2 + len;
    }
  }

  /**
   * Encodes this message: the fixed header, the magic cookie, the options in their fixed order,
   * END, then zero padding up to {@link #MIN_ENCODED_SIZE} bytes.
   */
  public byte[] encode() {
    byte[] opts = options.encode();
    ByteBuffer out = ByteBuffer.allocate(Math.max(MIN_ENCODED_SIZE, MIN_SIZE + opts.length));
    out.put((byte) op).put((byte) htype).put((byte) hlen).put((byte) hops);
    out.putInt(xid).putShort((short) secs).putShort((short) flags);
    out.put(ciaddr.getAddress()).put(yiaddr.getAddress());
    out.put(siaddr.getAddress()).put(giaddr.getAddress());
    out.put(chaddr);
    out.put(Arrays.copyOf(sname.getBytes(StandardCharsets.ISO_8859_1), SNAME_SIZE));
    out.put(Arrays.copyOf(file.getBytes(StandardCharsets.ISO_8859_1), FILE_SIZE));
    out.putInt(MAGIC_COOKIE);
    out.put(opts);
    return out.array();
  }

  @Override
  public byte[] chaddr() {
    return chaddr.clone();
  }

  /**
   * The client's MAC address in lower-case colon form ({@code 52:54:00:12:34:56}), if this is an
   * Ethernet message (htype 1, hlen 6).
   */
  public Optional<String> clientMac() {
    if (htype != HTYPE_ETHERNET || hlen != 6) {
      return Optional.empty();
    }
    return Optional.of(HexFormat.ofDelimiter(":").formatHex(chaddr, 0, 6));
  }

  /** The boot file name: the {@code file} field, else option 67. */
  public Optional<String> bootFileName() {
    if (!file.isEmpty()) {
      return Optional.of(file);
    }
    return options.string(DhcpOptions.BOOTFILE_NAME);
  }

  private static String cString(byte[] b, int offset, int size) {
    int end = offset;
    while (end < offset + size && b[end] != 0) {
      end++;
    }
    return new String(b, offset, end - offset, StandardCharsets.ISO_8859_1);
  }

  private static void checkByte(String field, int value) {
    if (value < 0 || value > 0xff) {
      throw new IllegalArgumentException("DHCP " + field + " is " + value + "; accepted 0..255");
    }
  }

  private static void checkField(String field, String value, int size) {
    byte[] bytes = value.getBytes(StandardCharsets.ISO_8859_1);
    if (bytes.length > size || value.indexOf('\0') >= 0) {
      throw new IllegalArgumentException(
          "DHCP " + field + " is " + bytes.length + " bytes or has a NUL; the field holds " + size);
    }
  }

  /** The IPv4 address for 4 bytes; {@code InetAddress} never resolves names for raw bytes. */
  static Inet4Address address(byte[] four) {
    try {
      return (Inet4Address) InetAddress.getByAddress(four);
    } catch (UnknownHostException e) {
      throw new IllegalStateException("4 bytes are always an IPv4 address", e);
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof DhcpPacket p
        && op == p.op
        && htype == p.htype
        && hlen == p.hlen
        && hops == p.hops
        && xid == p.xid
        && secs == p.secs
        && flags == p.flags
        && ciaddr.equals(p.ciaddr)
        && yiaddr.equals(p.yiaddr)
        && siaddr.equals(p.siaddr)
        && giaddr.equals(p.giaddr)
        && Arrays.equals(chaddr, p.chaddr)
        && sname.equals(p.sname)
        && file.equals(p.file)
        && options.equals(p.options);
  }

  @Override
  public int hashCode() {
    return Objects.hash(op, xid, Arrays.hashCode(chaddr), file, options);
  }

  @Override
  public String toString() {
    return String.format(
        "DhcpPacket[op=%d htype=%d hlen=%d hops=%d xid=0x%08x secs=%d flags=0x%04x ciaddr=%s"
            + " yiaddr=%s siaddr=%s giaddr=%s chaddr=%s sname=%s file=%s %s]",
        op,
        htype,
        hlen,
        hops,
        xid,
        secs,
        flags,
        ciaddr.getHostAddress(),
        yiaddr.getHostAddress(),
        siaddr.getHostAddress(),
        giaddr.getHostAddress(),
        HexFormat.of().formatHex(chaddr),
        sname,
        file,
        options);
  }
}
