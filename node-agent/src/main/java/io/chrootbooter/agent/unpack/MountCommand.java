package io.chrootbooter.agent.unpack;

import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageArguments;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.ImageStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code mount [--sha256 HEX] [--overlay tmpfs|none|/dev/X] --cache FILE --into DIR SOURCE}:
 * downloads a squashfs image to FILE, verifies it, then mounts it at DIR. The mounts stay; {@code
 * umount -R DIR} and the lower mounts under {@code DIR.cb} remove them.
 */
@Command(
    name = "mount",
    mixinStandardHelpOptions = true,
    description = "Download a squashfs image, verify its SHA-256, then mount it (with an overlay).")
public class MountCommand implements Callable<Integer> {

  @Option(
      names = "--overlay",
      defaultValue = "tmpfs",
      description = "tmpfs, none or /dev/<block device>")
  String overlay;

  @Option(
      names = "--cache",
      required = true,
      description = "where to write the image (absent file)")
  Path cache;

  @Option(names = "--into", required = true, description = "the mount point of the root")
  Path into;

  @Mixin ImageArguments args;

  @Override
  public Integer call() {
    try {
      Overlay chosen = Overlay.parse(overlay);
      Optional<String> digest = args.sha256();
      SquashfsImage.Mounted[] last = new SquashfsImage.Mounted[1];
      args.repeat(
          () -> {
            try (ImageStream image = ImageSources.open(args.source(), FetchOptions.defaults())) {
              String actual = SquashfsImage.download(image, digest, cache);
              Path work = Files.createDirectories(Path.of(into.toAbsolutePath() + ".cb"));
              last[0] = SquashfsImage.mount(cache, work, into, chosen);
              System.out.printf(
                  "mounted %s (sha256 %s) at %s: %s%n",
                  args.source(), actual, last[0].root(), last[0].mountPoints());
            }
          },
          () -> {
            last[0].close();
            Files.delete(cache);
          });
      return 0;
    } catch (IOException | IllegalArgumentException e) {
      System.err.println("mount: " + e.getMessage());
      return 1;
    }
  }
}
