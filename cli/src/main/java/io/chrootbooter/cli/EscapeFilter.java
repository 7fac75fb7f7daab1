package io.chrootbooter.cli;

import java.io.ByteArrayOutputStream;

/**
 * The console's escape, as ssh has it: {@code ~} at the start of a line (after CR or LF, or as the
 * first keystroke) is held back; {@code ~.} then detaches, {@code ~~} sends one {@code ~}, {@code
 * ~?} asks for help, and {@code ~} followed by anything else sends both.
 */
final class EscapeFilter {

  /** What a chunk of keystrokes became. */
  record Result(byte[] send, boolean detach, boolean help) {}

  private boolean lineStart = true;
  private boolean pending;

  /** Filters {@code len} keystrokes; bytes after a detach are dropped. */
  Result filter(byte[] in, int len) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(len + 1);
    boolean help = false;
    for (int i = 0; i < len; i++) {
      byte b = in[i];
      if (pending) {
        pending = false;
        if (b == '.') {
          return new Result(out.toByteArray(), true, help);
        }
        if (b == '?') {
          help = true;
          continue;
        }
        out.write('~');
        if (b == '~') {
          lineStart = false;
          continue;
        }
      } else if (lineStart && b == '~') {
        pending = true;
        continue;
      }
      out.write(b);
      lineStart = b == '\r' || b == '\n';
    }
    return new Result(out.toByteArray(), false, help);
  }
}
