package io.chrootbooter.agent.unpack;

import java.io.ByteArrayOutputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * Keeps the raw bytes read while commons-compress parses an entry's headers, so that binary PAX
 * values can be recovered.
 *
 * <p>Why: commons-compress decodes every PAX value as UTF-8, which replaces bytes {@code >= 0x80}
 * of a binary {@code SCHILY.xattr.security.capability} value with U+FFFD (e.g. {@code cap_setuid},
 * bit 7). GNU tar writes these values raw (tar(1) {@code --xattrs}). This class only finds the
 * record {@code "LEN KEY=VALUE\n"} (POSIX pax, "pax Extended Header File Format") for a key
 * commons-compress already parsed; it does not parse tar.
 */
final class RawHeaderRecorder extends FilterInputStream {

  /** Headers larger than this are not kept; values then stay as commons-compress decoded them. */
  private static final int LIMIT = 1 << 20;

  private final ByteArrayOutputStream recorded = new ByteArrayOutputStream();
  private boolean recording;
  private boolean overflow;

  RawHeaderRecorder(InputStream in) {
    super(in);
  }

  /** Starts recording; call before {@code getNextEntry()}. */
  void start() {
    recorded.reset();
    overflow = false;
    recording = true;
  }

  /** Stops recording; call after {@code getNextEntry()}. */
  void stop() {
    recording = false;
  }

  @Override
  public int read() throws IOException {
    int b = super.read();
    if (recording && b >= 0) {
      keep(new byte[] {(byte) b}, 0, 1);
    }
    return b;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    int n = super.read(b, off, len);
    if (recording && n > 0) {
      keep(b, off, n);
    }
    return n;
  }

  private void keep(byte[] b, int off, int n) {
    if (overflow || recorded.size() + n > LIMIT) {
      overflow = true;
      return;
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
