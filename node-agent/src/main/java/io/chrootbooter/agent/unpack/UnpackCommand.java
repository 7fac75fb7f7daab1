package io.chrootbooter.agent.unpack;

import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageArguments;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.agent.sys.LinuxSyscalls;
import io.chrootbooter.protocol.ImageFormat;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

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

  @Option(names = "--into", required = true, description = "absent or empty target directory")
  Path into;

  @Mixin ImageArguments args;

  @Override
  public Integer call() {
    try {
      ImageFormat imageFormat = ImageFormat.parse(format);
      Optional<String> digest = args.sha256();
      args.repeat(
          () -> {
            try (ImageStream image = ImageSources.open(args.source(), FetchOptions.defaults())) {
              ImageUnpacker.Result result =
                  new ImageUnpacker(new LinuxSyscalls()).unpack(image, imageFormat, digest, into);
              System.out.printf(
                  "unpacked %s (%s, %d bytes, sha256 %s): %d entries, %d file bytes into %s%n",
                  args.source(),
                  result.format(),
                  result.imageBytes(),
                  result.sha256(),
                  result.tree().entries(),
                  result.tree().bytes(),
                  into);
            }
          },
          () -> Trees.deleteContents(into));
      return 0;
    } catch (IOException | IllegalArgumentException e) {
      System.err.println("unpack: " + e.getMessage());
      return 1;
    }
  }
}
