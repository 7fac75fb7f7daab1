package io.chrootbooter.pxe.tftp;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * TFTP packets (RFC 1350 §5, option extension RFC 2347 §2), decoded and encoded without I/O. All
 * numbers are 16-bit, network order; strings are NUL-terminated netascii:
 *
 * <pre>
 * opcode 1 RRQ    | 01 | filename | 0 | mode | 0 | [ option | 0 | value | 0 ]* |
 * opcode 2 WRQ    | 02 | filename | 0 | mode | 0 | [ option | 0 | value | 0 ]* |
 * opcode 3 DATA   | 03 | block |  0..blksize bytes |
 * opcode 4 ACK    | 04 | block |
 * opcode 5 ERROR  | 05 | error code | message | 0 |
 * opcode 6 OACK   | 06 | [ option | 0 | value | 0 ]* |          (RFC 2347 §2)
 * </pre>
 */
public sealed interface TftpPacket
    permits TftpPacket.ReadRequest,
        TftpPacket.WriteRequest,
        TftpPacket.Data,
        TftpPacket.Ack,
        TftpPacket.Error,
        TftpPacket.OptionAck {

  int RRQ = 1;
  int WRQ = 2;
  int DATA = 3;
  int ACK = 4;
  int ERROR = 5;
  int OACK = 6;

  /** RFC 2348: the largest block size, so DATA is at most 4 + 65464 bytes. */
  int MAX_BLOCK_SIZE = 65464;

  /** The largest packet {@link #decode} accepts: a DATA packet of {@link #MAX_BLOCK_SIZE}. */
  int MAX_SIZE = 4 + MAX_BLOCK_SIZE;

  /** Encodes this packet as one UDP payload. */
  byte[] encode();

  /**
   * RRQ: read {@code filename} in {@code mode} ("octet", "netascii"), with RFC 2347 options.
   *
   * @param options option names lower-cased (RFC 2347: case-insensitive), in request order
   */
  record ReadRequest(String filename, String mode, Map<String, String> options)
      implements TftpPacket {
    public ReadRequest {
      options = Map.copyOf(options);
    }

    @Override
    public byte[] encode() {
      return encodeRequest(RRQ, filename, mode, options);
    }
  }

  /** WRQ: never served (read-only server), decoded to answer it with an error. */
  record WriteRequest(String filename, String mode, Map<String, String> options)
      implements TftpPacket {
    public WriteRequest {
      options = Map.copyOf(options);
    }

    @Override
    public byte[] encode() {
      return encodeRequest(WRQ, filename, mode, options);
    }
  }

  /** DATA: block numbers start at 1 and wrap from 65535 to 0 for large files. */
  record Data(int block, byte[] data) implements TftpPacket {
    public Data {
      checkShort("block", block);
      if (data.length > MAX_BLOCK_SIZE) {
        throw new IllegalArgumentException(
            "TFTP DATA carries " + data.length + " bytes; maximum is " + MAX_BLOCK_SIZE);
      }
      data = data.clone();
    }

    @Override
    public byte[] data() {
      return data.clone();
    }

    @Override
    public byte[] encode() {
      return ByteBuffer.allocate(4 + data.length)
          .putShort((short) DATA)
          .putShort((short) block)
          .put(data)
          .array();
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Data d && d.block == block && Arrays.equals(d.data, data);
    }

    @Override
    public int hashCode() {
      return 31 * block + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
      return "Data[block=" + block + ", " + data.length + " bytes]";
    }
  }

  /** ACK of {@code block}; block 0 acknowledges an OACK (RFC 2347 §2). */
  record Ack(int block) implements TftpPacket {
    public Ack {
      checkShort("block", block);
    }

    @Override
    public byte[] encode() {
      return ByteBuffer.allocate(4).putShort((short) ACK).putShort((short) block).array();
    }
  }

  /**
   * ERROR (RFC 1350 §5, Appendix; code 8 from RFC 2347 §2).
   *
   * @param code 0 not defined, 1 file not found, 2 access violation, 3 disk full, 4 illegal
   *     operation, 5 unknown transfer ID, 6 file exists, 7 no such user, 8 option negotiation
   *     refused
   */
  record Error(int code, String message) implements TftpPacket {
    public static final int NOT_DEFINED = 0;
    public static final int FILE_NOT_FOUND = 1;
    public static final int ACCESS_VIOLATION = 2;
    public static final int ILLEGAL_OPERATION = 4;
    public static final int UNKNOWN_TRANSFER_ID = 5;
    public static final int OPTION_REFUSED = 8;

    public Error {
      checkShort("error code", code);
      Objects.requireNonNull(message, "message");
    }

    @Override
    public byte[] encode() {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      out.write(0);
      out.write(ERROR);
      out.write(code >> 8);
      out.write(code);
      writeString(out, message);
      return out.toByteArray();
    }
  }

  /** OACK: the options the server accepts, with the values it will use (RFC 2347 §2). */
  record OptionAck(Map<String, String> options) implements TftpPacket {
    public OptionAck {
      options = Map.copyOf(options);
    }

    @Override
    public byte[] encode() {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      out.write(0);
      out.write(OACK);
      new java.util.TreeMap<>(options)
          .forEach(
              (k, v) -> {
                writeString(out, k);
                writeString(out, v);
              });
      return out.toByteArray();
    }
  }

  /**
   * Decodes one TFTP packet: all of {@code buffer}'s remaining bytes (one UDP payload).
   *
   * @throws MalformedTftpPacketException for anything but a well-formed packet; never any other
   *     exception
   */
  static TftpPacket decode(ByteBuffer buffer) throws MalformedTftpPacketException {
    int size = buffer.remaining();
    if (size < 2) {
      throw new MalformedTftpPacketException("TFTP packet is " + size + " bytes; minimum is 2");
    }
    if (size > MAX_SIZE) {
      throw new MalformedTftpPacketException(
          "TFTP packet is " + size + " bytes; maximum is " + MAX_SIZE);
    }
    byte[] b = new byte[size];
    buffer.get(b);
    int opcode = ((b[0] & 0xff) << 8) | (b[1] & 0xff);
    switch (opcode) {
      case RRQ, WRQ -> {
        String what = opcode == RRQ ? "RRQ" : "WRQ";
        String[] s = strings(b, 2, what);
        if (s.length < 2) {
          throw new MalformedTftpPacketException(
              "TFTP " + what + " has " + s.length + " strings; needs filename and mode");
        }
        if (s.length % 2 != 0) {
          throw new MalformedTftpPacketException(
              "TFTP " + what + " option \"" + s[s.length - 1] + "\" has no value");
        }
        Map<String, String> options = options(s, 2);
        return opcode == RRQ
            ? new ReadRequest(s[0], s[1].toLowerCase(Locale.ROOT), options)
            : new WriteRequest(s[0], s[1].toLowerCase(Locale.ROOT), options);
      }
      case DATA -> {
        if (size < 4) {
          throw new MalformedTftpPacketException("TFTP DATA is " + size + " bytes; minimum is 4");
        }
        return new Data(block(b), Arrays.copyOfRange(b, 4, size));
      }
      case ACK -> {
        if (size != 4) {
          throw new MalformedTftpPacketException("TFTP ACK is " + size + " bytes; expected 4");
        }
        return new Ack(block(b));
      }
      case ERROR -> {
        if (size < 4) {
          throw new MalformedTftpPacketException("TFTP ERROR is " + size + " bytes; minimum is 4");
        }
        // Lenient about the message's NUL: some clients omit it; it ends at the first NUL.
        int end = 4;
        while (end < size && b[end] != 0) {
          end++;
        }
        return new Error(block(b), new String(b, 4, end - 4, StandardCharsets.ISO_8859_1));
      }
      case OACK -> {
        String[] s = strings(b, 2, "OACK");
        if (s.length % 2 != 0) {
          throw new MalformedTftpPacketException(
              "TFTP OACK option \"" + s[s.length - 1] + "\" has no value");
        }
        return new OptionAck(options(s, 0));
      }
      default ->
          throw new MalformedTftpPacketException(
              "TFTP opcode is " + opcode + "; expected 1 (RRQ) to 6 (OACK)");
    }
  }

  private static int block(byte[] b) {
    return ((b[2] & 0xff) << 8) | (b[3] & 0xff);
  }

  /** The NUL-terminated strings from {@code offset} to the end; the last must be terminated. */
  private static String[] strings(byte[] b, int offset, String what)
      throws MalformedTftpPacketException {
    java.util.List<String> out = new java.util.ArrayList<>();
    int start = offset;
    for (int i = offset; i < b.length; i++) {
      if (b[i] == 0) {
        out.add(new String(b, start, i - start, StandardCharsets.ISO_8859_1));
        start = i + 1;
      }
    }
    if (start != b.length) {
      throw new MalformedTftpPacketException(
          "TFTP "
              + what
              + " ends with "
              + (b.length - start)
              + " bytes that are not NUL-terminated at offset "
              + start);
    }
    return out.toArray(String[]::new);
  }

  /** Option pairs from {@code from}; names lower-cased, a repeated name keeps its first value. */
  private static Map<String, String> options(String[] values, int from) {
    Map<String, String> options = new LinkedHashMap<>();
    for (int i = from; i + 1 < values.length; i += 2) {
      options.putIfAbsent(values[i].toLowerCase(Locale.ROOT), values[i + 1]);
    }
    return options;
  }

  private static byte[] encodeRequest(
      int opcode, String filename, String mode, Map<String, String> options) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(0);
    out.write(opcode);
    writeString(out, filename);
    writeString(out, mode);
    new java.util.TreeMap<>(options)
        .forEach(
            (k, v) -> {
              writeString(out, k);
              writeString(out, v);
            });
    return out.toByteArray();
  }

  private static void writeString(ByteArrayOutputStream out, String s) {
    byte[] bytes = s.getBytes(StandardCharsets.ISO_8859_1);
    out.write(bytes, 0, bytes.length);
    out.write(0);
  }

  private static void checkShort(String what, int value) {
    if (value < 0 || value > 0xffff) {
      throw new IllegalArgumentException("TFTP " + what + " is " + value + "; accepted 0..65535");
    }
  }
}
