package io.chrootbooter.pxe.tftp;

import java.util.Map;
import java.util.TreeMap;

/**
 * The outcome of RFC 2347 option negotiation for one read: which options the server acknowledges
 * (sent in an OACK; none means no OACK, plain RFC 1350) and the values it will use. Options it does
 * not support or cannot parse are left out, which RFC 2347 §2 allows; {@code windowsize} (RFC 7440)
 * is not supported, so such clients fall back to lock-step.
 *
 * @param blockSize bytes per DATA packet (RFC 2348; 512 without the option)
 * @param timeoutSeconds retransmission timeout (RFC 2349 {@code timeout}), or the server default
 * @param acknowledged option name to value for the OACK
 */
public record TftpNegotiation(int blockSize, int timeoutSeconds, Map<String, String> acknowledged) {
  /** RFC 1350 §2 block size. */
  public static final int DEFAULT_BLOCK_SIZE = 512;

  /** RFC 2348: valid values are 8 to 65464. */
  public static final int MIN_BLOCK_SIZE = 8;

  public TftpNegotiation {
    acknowledged = Map.copyOf(acknowledged);
  }

  /**
   * Negotiates a read.
   *
   * @param requested the RRQ's options (names lower-cased)
   * @param fileSize the file's size, the answer to {@code tsize} (RFC 2349)
   * @param maxBlockSize the largest block size to grant; a larger request is answered with this
   *     (RFC 2348 lets the server lower it)
   * @param defaultTimeoutSeconds timeout when the client sends none, or asks for more than {@code
   *     maxTimeoutSeconds}
   * @param maxTimeoutSeconds the longest timeout granted: a longer one is not acknowledged (RFC
   *     2349 gives the server no way to lower it), so the client keeps its default and the server
   *     uses {@code defaultTimeoutSeconds}. A client asking 255 s would otherwise hold a transfer
   *     slot for (retries + 1) × 255 s without sending a single ACK.
   */
  public static TftpNegotiation negotiate(
      Map<String, String> requested,
      long fileSize,
      int maxBlockSize,
      int defaultTimeoutSeconds,
      int maxTimeoutSeconds) {
    Map<String, String> ack = new TreeMap<>();
    int blockSize = DEFAULT_BLOCK_SIZE;
    int timeout = defaultTimeoutSeconds;
    Integer blksize = parse(requested.get("blksize"));
    if (blksize != null && blksize >= MIN_BLOCK_SIZE) {
      blockSize = Math.min(Math.min(blksize, TftpPacket.MAX_BLOCK_SIZE), maxBlockSize);
      ack.put("blksize", Integer.toString(blockSize));
    }
    Integer tsize = parse(requested.get("tsize"));
    if (tsize != null) {
      ack.put("tsize", Long.toString(fileSize));
    }
    Integer t = parse(requested.get("timeout"));
    if (t != null && t >= 1 && t <= Math.min(255, maxTimeoutSeconds)) {
      timeout = t;
      ack.put("timeout", Integer.toString(t));
    }
    return new TftpNegotiation(blockSize, timeout, ack);
  }

  /**
   * A decimal value up to 9 digits, or null: longer or non-digit values are not options we take.
   */
  private static Integer parse(String value) {
    if (value == null || value.isEmpty() || value.length() > 9) {
      return null;
    }
    for (int i = 0; i < value.length(); i++) {
      if (value.charAt(i) < '0' || value.charAt(i) > '9') {
        return null;
      }
    }
    return Integer.parseInt(value);
  }
}
