package io.chrootbooter.agent.console;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.protocol.ImageFormat;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/** The console's parser and shell loop. */
class ConsoleParserTest {
  private static final String SHA = "a".repeat(64);

  @Test
  void parsesEveryCommand() {
    assertThat(ConsoleParser.parse("load http://x/img.squashfs"))
        .isEqualTo(
            new ConsoleCommand.Load("http://x/img.squashfs", Optional.empty(), Optional.empty()));
    assertThat(
            ConsoleParser.parse(
                "  load https://x/a.tar.zst --sha256 " + SHA + " --format tar.zst\r"))
        .isEqualTo(
            new ConsoleCommand.Load(
                "https://x/a.tar.zst", Optional.of(SHA), Optional.of(ImageFormat.TAR_ZST)));
    assertThat(ConsoleParser.parse("status")).isEqualTo(new ConsoleCommand.Status());
    assertThat(ConsoleParser.parse("return")).isEqualTo(new ConsoleCommand.Return());
    assertThat(ConsoleParser.parse("resume")).isEqualTo(new ConsoleCommand.Resume());
    assertThat(ConsoleParser.parse("images")).isEqualTo(new ConsoleCommand.Images());
    assertThat(ConsoleParser.parse("help")).isEqualTo(new ConsoleCommand.Help());
    assertThat(ConsoleParser.parse("   ")).isEqualTo(new ConsoleCommand.Nothing());
  }

  @ParameterizedTest(name = "[{index}] {0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "reboot|unknown command \"reboot\"; commands: load, status, return, resume, images, help",
        "status now|status takes no arguments; got \"now\"",
        "load|load needs a URL: load <url> [--sha256 HEX] [--format F]",
        "load ftp://x/y|load: \"ftp://x/y\" is not an http:// or https:// URL",
        "load http://x/y --sha256 ABC|load: --sha256 \"ABC\" is not 64 lowercase hex digits",
        "load http://x/y --sha256|load: --sha256 needs a value",
        "load http://x/y --format zip|load: --format \"zip\" is not one of squashfs, tar, tar.gz, tar.xz, tar.zst",
        "load http://x/y --force|load: unknown option --force; options: --sha256, --format",
        "load http://x/y http://x/z|load takes one URL; got \"http://x/y\" and \"http://x/z\"",
      })
  void rejectsWithOneLineNamingWhatIsAccepted(String line, String message) {
    assertThatThrownBy(() -> ConsoleParser.parse(line)).hasMessage(message);
  }

  @Test
  void shellPrintsRepliesAndOneLineErrorsOverADumbLine() throws IOException {
    List<String> calls = new ArrayList<>();
    ConsoleActions actions =
        new ConsoleActions() {
          @Override
          public List<String> load(ConsoleCommand.Load load) {
            calls.add("load " + load.url());
            return List.of("loading " + load.url());
          }

          @Override
          public List<String> status() {
            calls.add("status");
            return List.of("phase: Bootstrap");
          }

          @Override
          public List<String> returnToBootstrap() throws IOException {
            calls.add("return");
            throw new IOException("cgroup X still holds [12]\nsecond line");
          }

          @Override
          public List<String> resume() {
            calls.add("resume");
            return List.of("following the spec");
          }

          @Override
          public List<String> images() {
            calls.add("images");
            return List.of();
          }
        };
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    new ConsoleShell(actions)
        .run(
            new BufferedReader(new StringReader("status\r\nbogus\nreturn\nload http://h/i\n")),
            new PrintStream(out, true, StandardCharsets.US_ASCII));
    assertThat(calls).containsExactly("status", "return", "load http://h/i");
    assertThat(out.toString(StandardCharsets.US_ASCII))
        .isEqualTo(
            "bootstrap> phase: Bootstrap\r\n"
                + "bootstrap> error: unknown command \"bogus\"; commands: load, status, return, resume, images, help\r\n"
                + "bootstrap> error: cgroup X still holds [12] second line\r\n"
                + "bootstrap> loading http://h/i\r\n"
                + "bootstrap> ");
  }

  @Test
  void progressBarIsPlainAscii() {
    assertThat(ProgressBar.render(5 * 1048576L, 10 * 1048576L, 2 * 1048576.0, 10))
        .isEqualTo("[#####.....]  50%  5.0/10.0 MiB  2.0 MiB/s");
    assertThat(ProgressBar.render(3 * 1048576L, 0, 0, 10)).isEqualTo("3.0 MiB  0.0 MiB/s");
  }

  /** Every format of the protocol can be loaded at the console, by name and by the URL's ending. */
  @ParameterizedTest
  @EnumSource(ImageFormat.class)
  void everyFormatIsAccepted(ImageFormat format) {
    assertThat(ConsoleParser.parse("load http://x/y --format " + format.value()))
        .isEqualTo(new ConsoleCommand.Load("http://x/y", Optional.empty(), Optional.of(format)));
    assertThat(ConsoleParser.HELP).contains(format.value());
  }
}
