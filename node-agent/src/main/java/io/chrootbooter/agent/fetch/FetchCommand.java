package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code fetch [--sha256 HEX] [--output FILE] SOURCE}: download (resuming, retrying), print the
 * SHA-256; with {@code --output} the file is removed again when the digest does not match.
 */
@Command(
    name = "fetch",
    mixinStandardHelpOptions = true,
    description = "Download an image, print (or check) its SHA-256, optionally keep it in a file.")
public class FetchCommand implements Callable<Integer> {

  @Option(names = "--output", description = "absent file to write the image to")
  Path output;

  @Mixin ImageArguments args;

  @Override
  public Integer call() {
    try {
      Optional<String> expected = args.sha256();
      if (output != null && Files.exists(output, LinkOption.NOFOLLOW_LINKS)) {
        throw new IOException(output + " exists; --output needs an absent file");
      }
      args.repeat(
          () -> {
            boolean ok = false;
            try (ImageStream image = ImageSources.open(args.source(), FetchOptions.defaults());
                InputStream in = new ReadAheadInputStream(image, "cb-download", 1 << 20, 16)) {
              if (output != null) {
                SpaceCheck.requireRoom(image.contentLength(), output.toAbsolutePath().getParent());
              }
              try (OutputStream out =
                  output == null
                      ? OutputStream.nullOutputStream()
                      : Files.newOutputStream(
                          output, StandardOpenOption.CREATE_NEW, LinkOption.NOFOLLOW_LINKS)) {
                in.transferTo(out);
              }
              String digest = expected.isPresent() ? image.verify(expected.get()) : image.sha256();
              ok = true;
              System.out.println(digest + "  " + args.source());
            } finally {
              if (!ok && output != null) {
                Files.deleteIfExists(output);
              }
            }
          },
          () -> {
            if (output != null) {
              Files.deleteIfExists(output);
            }
          });
      return 0;
    } catch (IOException | IllegalArgumentException e) {
      System.err.println("fetch: " + e.getMessage());
      return 1;
    }
  }
}
