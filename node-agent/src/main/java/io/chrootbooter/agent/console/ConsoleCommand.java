package io.chrootbooter.agent.console;

import io.chrootbooter.protocol.ImageFormat;
import java.util.Objects;
import java.util.Optional;

/** One command typed at the bootstrap console. */
public sealed interface ConsoleCommand {
  /**
   * {@code load <url> [--sha256 H] [--format F]}: boot that image now, overriding the spec.
   *
   * @param url http or https
   * @param sha256 64 lowercase hex digits, when given
   * @param format when given (else inferred from the URL)
   */
  record Load(String url, Optional<String> sha256, Optional<ImageFormat> format)
      implements ConsoleCommand {
    public Load {
      Objects.requireNonNull(url, "url");
      sha256 = sha256 == null ? Optional.empty() : sha256;
      format = format == null ? Optional.empty() : format;
    }
  }

  /** {@code status}: phase, image, last return. */
  record Status() implements ConsoleCommand {}

  /** {@code return}: leave the running target now. */
  record Return() implements ConsoleCommand {}

  /** {@code resume}: end the console override and follow the spec again. */
  record Resume() implements ConsoleCommand {}

  /** {@code images}: the cached images. */
  record Images() implements ConsoleCommand {}

  /** {@code help}. */
  record Help() implements ConsoleCommand {}

  /** An empty line: nothing to do. */
  record Nothing() implements ConsoleCommand {}
}
