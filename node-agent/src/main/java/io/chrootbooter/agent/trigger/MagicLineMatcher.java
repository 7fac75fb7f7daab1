package io.chrootbooter.agent.trigger;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Finds the magic string on a serial line: it fires only for a complete line (ended by CR or LF)
 * that is exactly the magic string, so a partial line, a line with noise around the string or a
 * target printing it inside a longer message does nothing. Pure; lines longer than the magic string
 * are discarded without being buffered.
 */
public final class MagicLineMatcher {
  private final byte[] magic;
  private final byte[] line;
  private int length;
  private boolean overflow;

  public MagicLineMatcher(String magic) {
    if (magic.isEmpty() || magic.contains("\n") || magic.contains("\r")) {
      throw new IllegalArgumentException(
          "magic string \"" + magic + "\" must be non-empty and on one line");
    }
    this.magic = magic.getBytes(StandardCharsets.UTF_8);
    this.line = new byte[this.magic.length];
  }

  /** Feeds bytes; true when they completed a magic line. */
  public boolean accept(byte[] bytes, int offset, int count) {
    boolean found = false;
    for (int i = offset; i < offset + count; i++) {
      byte b = bytes[i];
      if (b == '\n' || b == '\r') {
        found |= !overflow && length == magic.length && Arrays.equals(line, magic);
        length = 0;
        overflow = false;
      } else if (length < line.length) {
        line[length++] = b;
      } else {
        overflow = true;
      }
    }
    return found;
  }
}
