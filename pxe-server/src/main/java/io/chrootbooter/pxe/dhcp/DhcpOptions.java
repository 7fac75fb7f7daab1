package io.chrootbooter.pxe.dhcp;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;

/**
 * The options of a DHCP message (RFC 2132), code to value, without the PAD (0) and END (255)
 * markers. Several instances of one code on the wire are one option here, their values concatenated
 * (RFC 3396); {@link #encode} splits values longer than 255 bytes the same way.
 *
 * <p>Options encode in a fixed order: 53 (message type) first, as clients conventionally expect,
 * then ascending code.
 *
 * @param values code (1..254) to value; copied, never exposed mutably
 */
public record DhcpOptions(Map<Integer, byte[]> values) {
  /** RFC 2132 §3.1 padding, skipped on decode. */
  public static final int PAD = 0;

  /** RFC 2132 §8.4 Vendor Specific Information, here the PXE sub-options. */
  public static final int VENDOR_SPECIFIC = 43;

  /** RFC 2132 §9.3 Option Overload: 1 = file, 2 = sname, 3 = both carry options. */
  public static final int OVERLOAD = 52;

  /** RFC 2132 §9.6 DHCP Message Type. */
  public static final int MESSAGE_TYPE = 53;

  /** RFC 2132 §9.7 Server Identifier. */
  public static final int SERVER_IDENTIFIER = 54;

  /** RFC 2132 §9.8 Parameter Request List. */
  public static final int PARAMETER_REQUEST_LIST = 55;

  /** RFC 2132 §9.13 Vendor class identifier; PXE clients send "PXEClient:Arch:…". */
  public static final int VENDOR_CLASS = 60;

  /** RFC 2132 §9.5 Bootfile name, used when the name does not fit the 128-byte file field. */
  public static final int BOOTFILE_NAME = 67;

  /** RFC 3004 User Class; iPXE sends the bare string "iPXE". */
  public static final int USER_CLASS = 77;

  /** RFC 4578 §2.1 Client System Architecture Type: 16-bit types. */
  public static final int CLIENT_ARCHITECTURE = 93;

  /** RFC 4578 §2.2 Client Network Interface Identifier: type, major, minor. */
  public static final int CLIENT_NDI = 94;

  /** RFC 4578 §2.3 Client Machine Identifier: type 0 then a 16-byte UUID. */
  public static final int CLIENT_UUID = 97;

  /** iPXE's encapsulated option space ("Etherboot", include/ipxe/dhcp.h DHCP_EB_ENCAP). */
  public static final int IPXE_ENCAPSULATED = 175;

  /** RFC 2132 §3.2 end of options. */
  public static final int END = 255;

  public DhcpOptions {
    TreeMap<Integer, byte[]> copy = new TreeMap<>();
    for (Map.Entry<Integer, byte[]> e : values.entrySet()) {
      int code = e.getKey();
      if (code <= PAD || code >= END) {
        throw new IllegalArgumentException(
            "DHCP option code " + code + " is not an option; accepted are 1..254");
      }
      copy.put(code, e.getValue().clone());
    }
    values = Collections.unmodifiableMap(copy);
  }

  /** No options. */
  public static DhcpOptions empty() {
    return new DhcpOptions(Map.of());
  }

  /** A copy with {@code code} set to {@code value}. */
  public DhcpOptions with(int code, byte[] value) {
    TreeMap<Integer, byte[]> copy = new TreeMap<>(values);
    copy.put(code, value);
    return new DhcpOptions(copy);
  }

  /** A copy with the string {@code value} (ISO-8859-1) for {@code code}. */
  public DhcpOptions with(int code, String value) {
    return with(code, value.getBytes(StandardCharsets.ISO_8859_1));
  }

  /** A copy without {@code code}. */
  public DhcpOptions without(int code) {
    TreeMap<Integer, byte[]> copy = new TreeMap<>(values);
    copy.remove(code);
    return new DhcpOptions(copy);
  }

  @Override
  public Map<Integer, byte[]> values() {
    TreeMap<Integer, byte[]> copy = new TreeMap<>();
    values.forEach((k, v) -> copy.put(k, v.clone()));
    return copy;
  }

  public boolean has(int code) {
    return values.containsKey(code);
  }

  /** The raw value of {@code code}. */
  public Optional<byte[]> get(int code) {
    return Optional.ofNullable(values.get(code)).map(byte[]::clone);
  }

  /** The value as ISO-8859-1 text, trailing NULs removed (some clients NUL-terminate). */
  public Optional<String> string(int code) {
    byte[] v = values.get(code);
    if (v == null) {
      return Optional.empty();
    }
    int end = v.length;
    while (end > 0 && v[end - 1] == 0) {
      end--;
    }
    return Optional.of(new String(v, 0, end, StandardCharsets.ISO_8859_1));
  }

  /** Option 53, if present and one of RFC 2132's values. */
  public Optional<DhcpMessageType> messageType() {
    byte[] v = values.get(MESSAGE_TYPE);
    if (v == null || v.length != 1) {
      return Optional.empty();
    }
    return DhcpMessageType.of(v[0] & 0xff);
  }

  /**
   * The first architecture type of option 93 (RFC 4578 §2.1: a list of 16-bit types, network
   * order), or empty if absent or not a whole number of 16-bit values.
   */
  public OptionalInt clientArchitecture() {
    byte[] v = values.get(CLIENT_ARCHITECTURE);
    if (v == null || v.length < 2 || v.length % 2 != 0) {
      return OptionalInt.empty();
    }
    return OptionalInt.of(((v[0] & 0xff) << 8) | (v[1] & 0xff));
  }

  /**
   * The user classes of option 77. RFC 3004 frames each class with a length byte; iPXE and many PXE
   * ROMs send one bare string instead. A value that does not parse exactly as RFC 3004 instances is
   * taken as one bare class.
   */
  public List<String> userClasses() {
    byte[] v = values.get(USER_CLASS);
    if (v == null) {
      return List.of();
    }
    List<String> framed = new ArrayList<>();
    int i = 0;
    while (i < v.length) {
      int len = v[i] & 0xff;
      if (len == 0 || i + 1 + len > v.length) {
        framed = null;
        break;
      }
      framed.add(new String(v, i + 1, len, StandardCharsets.ISO_8859_1));
      i += 1 + len;
    }
    if (framed != null && !framed.isEmpty()) {
      return List.copyOf(framed);
    }
    return List.of(string(USER_CLASS).orElse(""));
  }

  /**
   * Encodes the options field: each option as code, length, value (RFC 2132 §2), values over 255
   * bytes split into consecutive instances (RFC 3396), then END. No padding.
   */
  public byte[] encode() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] type = values.get(MESSAGE_TYPE);
    if (type != null) {
      writeOption(out, MESSAGE_TYPE, type);
    }
    values.forEach(
        (code, value) -> {
          if (code != MESSAGE_TYPE) {
            writeOption(out, code, value);
          }
        });
    out.write(END);
    return out.toByteArray();
  }

  private static void writeOption(ByteArrayOutputStream out, int code, byte[] value) {
    int offset = 0;
    do {
      int len = Math.min(255, value.length - offset);
      out.write(code);
      out.write(len);
      out.write(value, offset, len);
      offset += len;
    } while (offset < value.length);
  }

  /**
   * Encodes an encapsulated option space (RFC 2132 §8.4 vendor options, iPXE's option 175): code,
   * length, value for each entry in ascending code order, then END (255).
   */
  public static byte[] encodeEncapsulated(Map<Integer, byte[]> subOptions) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    new TreeMap<>(subOptions)
        .forEach(
            (code, value) -> {
              if (value.length > 255) {
                throw new IllegalArgumentException(
                    "sub-option " + code + " is " + value.length + " bytes; maximum is 255");
              }
              out.write(code);
              out.write(value.length);
              out.write(value, 0, value.length);
            });
    out.write(END);
    return out.toByteArray();
  }

  /**
   * Decodes an encapsulated option space: code, length, value triplets; PAD skipped; END or the end
   * of the bytes stops. A later instance of a code is appended to the earlier one.
   *
   * @param what names the enclosing option in error messages, e.g. "option 43"
   */
  public static Map<Integer, byte[]> decodeEncapsulated(byte[] bytes, String what)
      throws MalformedDhcpPacketException {
    TreeMap<Integer, byte[]> out = new TreeMap<>();
    int i = 0;
    while (i < bytes.length) {
      int code = bytes[i] & 0xff;
      if (code == END) {
        break;
      }
      if (code == PAD) {
        i++;
        continue;
      }
      if (i + 1 >= bytes.length) {
        throw new MalformedDhcpPacketException(
            what + " sub-option " + code + " at offset " + i + " has no length byte");
      }
      int len = bytes[i + 1] & 0xff;
      if (i + 2 + len > bytes.length) {
        throw new MalformedDhcpPacketException(
            what
                + " sub-option "
                + code
                + " at offset "
                + i
                + " claims "
                + len
                + " bytes but only "
                + (bytes.length - i - 2)
                + " remain");
      }
      byte[] value = Arrays.copyOfRange(bytes, i + 2, i + 2 + len);
      out.merge(code, value, DhcpOptions::concat);
      i += 2 + len;
    }
    return out;
  }

  static byte[] concat(byte[] a, byte[] b) {
    byte[] c = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof DhcpOptions other) || other.values.size() != values.size()) {
      return false;
    }
    for (Map.Entry<Integer, byte[]> e : values.entrySet()) {
      if (!Arrays.equals(e.getValue(), other.values.get(e.getKey()))) {
        return false;
      }
    }
    return true;
  }

  @Override
  public int hashCode() {
    int h = 0;
    for (Map.Entry<Integer, byte[]> e : values.entrySet()) {
      h += e.getKey() ^ Arrays.hashCode(e.getValue());
    }
    return h;
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("DhcpOptions[");
    values.forEach(
        (k, v) -> sb.append(' ').append(k).append('=').append(HexFormat.of().formatHex(v)));
    return sb.append(" ]").toString();
  }
}
