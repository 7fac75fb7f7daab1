package io.chrootbooter.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * The local terminal in raw mode while a console is attached, through {@code stty} on this
 * process's standard input (the JDK has no termios): {@link #raw()} saves the settings and {@link
 * #restore()} puts them back, once, whichever way the command ends (normal return, error, or a
 * signal: a shutdown hook restores too). Standard input that is not a terminal (a pipe, a file) is
 * left alone, as ssh does.
 */
final class Terminal implements AutoCloseable {

  private String saved;
  private Thread hook;

  /** Puts the terminal in raw mode without echo; a no-op when standard input is no terminal. */
  Terminal raw() {
    String settings = stty("-g");
    if (settings == null || settings.isBlank()) {
      return this;
    }
    saved = settings.strip();
    hook = new Thread(this::restore, "kubectl-boot-tty-restore");
    Runtime.getRuntime().addShutdownHook(hook);
    if (stty("raw", "-echo") == null) {
      restore();
      throw new CliException(Exit.FAILED, "cannot put the terminal in raw mode (stty failed)");
    }
    return this;
  }

  /** Whether {@link #raw()} changed the terminal (and lines must end in CR LF). */
  boolean isRaw() {
    return saved != null;
  }

  /** Restores the saved settings; safe to call more than once and from any thread. */
  synchronized void restore() {
    if (saved != null) {
      stty(saved);
      saved = null;
    }
  }

  @Override
  public void close() {
    restore();
    if (hook != null) {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // shutting down: the hook runs (and finds nothing to restore)
      }
      hook = null;
    }
  }

  private static String stty(String... args) {
    String[] command = new String[args.length + 1];
    command[0] = "stty";
    System.arraycopy(args, 0, command, 1, args.length);
    try {
      Process p =
          new ProcessBuilder(command)
              .redirectInput(ProcessBuilder.Redirect.INHERIT)
              .redirectError(ProcessBuilder.Redirect.DISCARD)
              .start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(5, TimeUnit.SECONDS) || p.exitValue() != 0) {
        p.destroyForcibly();
        return null;
      }
      return out;
    } catch (IOException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  /**
   * {@code text} with control characters (escape sequences a hostile server could send) shown as
   * {@code ?}, for messages that come from the network.
   */
  static String printable(String text) {
    StringBuilder b = new StringBuilder(text.length());
    text.codePoints()
        .forEach(
            c -> {
              if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f && !(c >= 0x80 && c < 0xa0))) {
                b.appendCodePoint(c);
              } else if (c != '\r') {
                b.append('?');
              }
            });
    return b.toString();
  }
}
