package io.chrootbooter.agent.unpack;

import java.io.ByteArrayOutputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * Keeps the raw bytes read while commons-compress parses an entry's headers, so that binary PAX
 * values can be recovered, and bounds them: the headers of one entry (its PAX, GNU long-name and
 * long-link records included) may take at most {@link #MAX_ENTRY_HEADER_BYTES}, and the global PAX
 * headers of a whole archive at most {@link #MAX_GLOBAL_HEADER_BYTES}. commons-compress 1.28 reads
 * such records into memory whatever their size, so a 300 KB tar.gz holding a 64 MiB PAX value would
 * exhaust the agent's 48 MiB heap before any digest could refuse it; here it fails with the entry
 * and the limit named, after at most the limit has been read. (libarchive refuses special headers
 * over 1 MiB the same way.)
 *
 * <p>Why: commons-compress decodes every PAX value as UTF-8, which replaces bytes {@code >= 0x80}
 * of a binary {@code SCHILY.xattr.security.capability} value with U+FFFD (e.g. {@code cap_setuid},
 * bit 7). GNU tar writes these values raw (tar(1) {@code --xattrs}). This class only finds the
 * record {@code "LEN KEY=VALUE\n"} (POSIX pax, "pax Extended Header File Format") for a key
 * commons-compress already parsed; it does not parse tar.
 */
final class RawHeaderRecorder extends FilterInputStream {

  /** The most one entry's headers may take, PAX and GNU long names included. */
  static final int MAX_ENTRY_HEADER_BYTES = 1 << 20;

  /** The most the global PAX headers ({@code g}) of one archive may take together. */
  static final long MAX_GLOBAL_HEADER_BYTES = 4L << 20;

  private static final int LIMIT = MAX_ENTRY_HEADER_BYTES;
  private static final int BLOCK = 512;
  private static final int TYPEFLAG = 156;

  private long globalHeaderBytes;

  /** Bytes read or skipped through this stream: tar headers start at multiples of 512. */
  private long position;

  /** {@link #position} when recording started. */
  private long recordStart;

  private final ByteArrayOutputStream recorded = new ByteArrayOutputStream();
  private boolean recording;
  private boolean overflow;

  RawHeaderRecorder(InputStream in) {
    super(in);
  }

  /** Starts recording; call before {@code getNextEntry()}. */
  void start() {
    recordStart = position;
    recorded.reset();
    overflow = false;
    recording = true;
  }

  /** Stops recording; call after {@code getNextEntry()}, whatever it did. */
  void stop() {
    recording = false;
  }

  /**
   * Counts the global PAX headers the last recorded headers held towards the archive's limit; call
   * after {@code getNextEntry()} returned an entry.
   */
  void countGlobalHeaders() throws HostileArchiveException {
    if (overflow) {
      return;
    }
    byte[] raw = recorded.toByteArray();
    // Recording may start inside the last entry's padding.
    for (long at = (BLOCK - recordStart % BLOCK) % BLOCK; at + BLOCK <= raw.length; ) {
      int header = (int) at;
      long size = size(raw, header);
      if (size < 0) {
        return; // not a header commons-compress accepted as one; nothing to count
      }
      if (raw[header + TYPEFLAG] == 'g') {
        globalHeaderBytes += size;
        if (globalHeaderBytes > MAX_GLOBAL_HEADER_BYTES) {
          throw new HostileArchiveException(
              name(raw, header),
              "global PAX headers of the archive exceed "
                  + (MAX_GLOBAL_HEADER_BYTES >> 20)
                  + " MiB");
        }
      }
      // In long: a hostile size field must not wrap the offset around.
      at += BLOCK + (size + BLOCK - 1) / BLOCK * BLOCK;
    }
  }

  /** The size field (octal) of the header at {@code at}, or -1 when it is not plain octal. */
  private static long size(byte[] raw, int at) {
    long size = 0;
    boolean digits = false;
    for (int i = at + 124; i < at + 136; i++) {
      byte b = raw[i];
      if (b >= '0' && b <= '7') {
        size = size * 8 + (b - '0');
        digits = true;
      } else if (b == ' ' || b == 0) {
        if (digits) {
          break;
        }
      } else {
        return -1;
      }
    }
    return size;
  }

  /** The name field of the header at {@code at}. */
  private static String name(byte[] raw, int at) {
    int end = at;
    while (end < at + 100 && raw[end] != 0) {
      end++;
    }
    return new String(raw, at, end - at, StandardCharsets.UTF_8);
  }

  @Override
  public int read() throws IOException {
    int b = super.read();
    if (b >= 0) {
      position++;
      if (recording) {
        keep(new byte[] {(byte) b}, 0, 1);
      }
    }
    return b;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    int n = super.read(b, off, len);
    if (n > 0) {
      position += n;
      if (recording) {
        keep(b, off, n);
      }
    }
    return n;
  }

  /** Skipped bytes count towards the position; while recording they are read and kept. */
  @Override
  public long skip(long n) throws IOException {
    if (recording) {
      byte[] buffer = new byte[(int) Math.min(n, 8192)];
      long skipped = 0;
      while (skipped < n) {
        int r = read(buffer, 0, (int) Math.min(buffer.length, n - skipped));
        if (r < 0) {
          break;
        }
        skipped += r;
      }
      return skipped;
    }
    long skipped = super.skip(n);
    position += skipped;
    return skipped;
  }

  private void keep(byte[] b, int off, int n) throws HostileArchiveException {
    if (overflow || recorded.size() + n > LIMIT) {
      overflow = true;
      byte[] raw = recorded.toByteArray();
      throw new HostileArchiveException(
          raw.length >= BLOCK ? name(raw, 0) : "?",
          "its headers (PAX or GNU long name) exceed " + (MAX_ENTRY_HEADER_BYTES >> 20) + " MiB");
    }
    recorded.write(b, off, n);
  }

  /** The raw value bytes of PAX record {@code key} in the last recorded headers, if found. */
  Optional<byte[]> rawValue(String key) {
    if (overflow) {
      return Optional.empty();
    }
    byte[] raw = recorded.toByteArray();
    byte[] needle = (" " + key + "=").getBytes(StandardCharsets.UTF_8);
    outer:
    for (int i = 1; i + needle.length <= raw.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (raw[i + j] != needle[j]) {
          continue outer;
        }
      }
      int start = i;
      while (start > 0 && raw[start - 1] >= '0' && raw[start - 1] <= '9') {
        start--;
      }
      if (start == i) {
        continue;
      }
      int recordLength =
          Integer.parseInt(new String(raw, start, i - start, StandardCharsets.US_ASCII));
      int valueStart = i + needle.length;
      int valueEnd = start + recordLength - 1; // the record ends with '\n'
      if (valueEnd < valueStart || valueEnd >= raw.length || raw[valueEnd] != '\n') {
        continue;
      }
      byte[] value = new byte[valueEnd - valueStart];
      System.arraycopy(raw, valueStart, value, 0, value.length);
      return Optional.of(value);
    }
    return Optional.empty();
  }
}
