package io.chrootbooter.agent.console;

import io.chrootbooter.protocol.ImageFormat;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Parses one console line into a {@link ConsoleCommand}. Pure. Every rejection is one line naming
 * what was typed and what is accepted, e.g. {@code --sha256 "abc" is not 64 lowercase hex digits}.
 */
public final class ConsoleParser {
  /** Printed by {@code help}. */
  public static final String HELP =
      """
      load <url> [--sha256 HEX] [--format squashfs|tar|tar.gz|tar.xz|tar.zst]
                    boot that image now (stays until the spec changes)
      status        phase, image and last return
      return        leave the running target and come back here
      resume        end the console override; follow the operator's spec again
      images        list cached images
      help          this text""";

  private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");

  /** A line that is not a valid command; the message is the one line to print. */
  public static final class UsageException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    UsageException(String message) {
      super(message);
    }
  }

  private ConsoleParser() {}

  /**
   * Parses {@code line}; surrounding blanks and a trailing CR (serial terminals) are ignored.
   *
   * @throws UsageException for anything else
   */
  public static ConsoleCommand parse(String line) {
    List<String> words = new ArrayList<>(List.of(line.strip().split("\\s+")));
    if (words.size() == 1 && words.get(0).isEmpty()) {
      return new ConsoleCommand.Nothing();
    }
    String verb = words.remove(0);
    return switch (verb) {
      case "load" -> load(words);
      case "status" -> noArgs(verb, words, new ConsoleCommand.Status());
      case "return" -> noArgs(verb, words, new ConsoleCommand.Return());
      case "resume" -> noArgs(verb, words, new ConsoleCommand.Resume());
      case "images" -> noArgs(verb, words, new ConsoleCommand.Images());
      case "help", "?" -> noArgs(verb, words, new ConsoleCommand.Help());
      default ->
          throw new UsageException(
              "unknown command \""
                  + printable(verb)
                  + "\"; commands: load, status, return, resume, images, help");
    };
  }

  private static ConsoleCommand noArgs(String verb, List<String> args, ConsoleCommand command) {
    if (!args.isEmpty()) {
      throw new UsageException(
          verb + " takes no arguments; got \"" + printable(String.join(" ", args)) + "\"");
    }
    return command;
  }

  private static ConsoleCommand load(List<String> args) {
    String url = null;
    Optional<String> sha256 = Optional.empty();
    Optional<ImageFormat> format = Optional.empty();
    for (int i = 0; i < args.size(); i++) {
      String arg = args.get(i);
      switch (arg) {
        case "--sha256", "--format" -> {
          if (i + 1 >= args.size()) {
            throw new UsageException("load: " + arg + " needs a value");
          }
          String value = args.get(++i);
          if (arg.equals("--sha256")) {
            if (!SHA256.matcher(value).matches()) {
              throw new UsageException(
                  "load: --sha256 \"" + printable(value) + "\" is not 64 lowercase hex digits");
            }
            sha256 = Optional.of(value);
          } else {
            format = ImageFormat.fromValue(value);
            if (format.isEmpty()) {
              throw new UsageException(
                  "load: --format \""
                      + printable(value)
                      + "\" is not one of "
                      + ImageFormat.names(", "));
            }
          }
        }
        default -> {
          if (arg.startsWith("--")) {
            throw new UsageException(
                "load: unknown option " + printable(arg) + "; options: --sha256, --format");
          }
          if (url != null) {
            throw new UsageException(
                "load takes one URL; got \""
                    + printable(url)
                    + "\" and \""
                    + printable(arg)
                    + "\"");
          }
          if (!arg.startsWith("http://") && !arg.startsWith("https://")) {
            throw new UsageException(
                "load: \"" + printable(arg) + "\" is not an http:// or https:// URL");
          }
          url = arg;
        }
      }
    }
    if (url == null) {
      throw new UsageException("load needs a URL: load <url> [--sha256 HEX] [--format F]");
    }
    return new ConsoleCommand.Load(url, sha256, format);
  }

  /** Control characters from a noisy line would garble the terminal: shown as {@code ?}. */
  private static String printable(String s) {
    String cut = s.length() > 80 ? s.substring(0, 80) + "..." : s;
    return cut.replaceAll("[^\\x20-\\x7e]", "?");
  }
}
