package io.chrootbooter.agent.unpack;

import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.agent.fetch.Repeats;
import io.chrootbooter.agent.sys.LinuxSyscalls;
import io.chrootbooter.protocol.ImageFormat;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code unpack --format tar.gz [--sha256 HEX] --into DIR SOURCE}: the image pipeline outside the
 * initramfs. Exit 0 on success; on refusal exit 1 with one line on stderr and nothing left in DIR.
 */
@Command(
    name = "unpack",
    mixinStandardHelpOptions = true,
    description = "Download (or read) a tar image, extract it safely into DIR, verify its SHA-256.")
public class UnpackCommand implements Callable<Integer> {

  @Option(names = "--format", required = true, description = "tar, tar.gz, tar.xz or tar.zst")
  String format;

  @Option(names = "--sha256", description = "expected SHA-256, 64 lowercase hex digits")
  String sha256;

  @Option(names = "--into", required = true, description = "absent or empty target directory")
  Path into;

  @Option(
      names = "--repeat",
      defaultValue = "1",
      description =
          "run N times in this JVM, each run's time on stderr, undoing each run's output before"
              + " the next (benchmarks: the daemon's JVM is long-running)")
  int repeat;

  @Parameters(index = "0", paramLabel = "SOURCE", description = "file path or http(s) URL")
  String source;

  @Override
  public Integer call() {
    try {
      ImageFormat imageFormat = ImageFormat.parse(format);
      Optional<String> digest = Optional.ofNullable(sha256).map(UnpackCommand::checkedSha256);
      Repeats.run(
          repeat,
          () -> {
            try (ImageStream image = ImageSources.open(source, FetchOptions.defaults())) {
              ImageUnpacker.Result result =
                  new ImageUnpacker(new LinuxSyscalls()).unpack(image, imageFormat, digest, into);
              System.out.printf(
                  "unpacked %s (%s, %d bytes, sha256 %s): %d entries, %d file bytes into %s%n",
                  source,
                  result.format(),
                  result.imageBytes(),
                  result.sha256(),
                  result.tree().entries(),
                  result.tree().bytes(),
                  into);
            }
          },
          () -> Trees.deleteContents(into),
          System.err);
      return 0;
    } catch (IOException | IllegalArgumentException e) {
      System.err.println("unpack: " + e.getMessage());
      return 1;
    }
  }

  static String checkedSha256(String value) {
    if (!value.matches("[0-9a-f]{64}")) {
      throw new IllegalArgumentException(
          "--sha256 \"" + value + "\" is not 64 lowercase hex digits");
    }
    return value;
  }
}
