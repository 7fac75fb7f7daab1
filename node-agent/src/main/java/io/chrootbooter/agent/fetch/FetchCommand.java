package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code fetch [--sha256 HEX] [--output FILE] SOURCE}: download (resuming, retrying), print the
 * SHA-256; with {@code --output} the file is removed again when the digest does not match.
 */
@Command(
    name = "fetch",
    mixinStandardHelpOptions = true,
    description = "Download an image, print (or check) its SHA-256, optionally keep it in a file.")
public class FetchCommand implements Callable<Integer> {

  @Option(names = "--sha256", description = "expected SHA-256, 64 lowercase hex digits")
  String sha256;

  @Option(names = "--output", description = "absent file to write the image to")
  Path output;

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
      if (sha256 != null && !sha256.matches("[0-9a-f]{64}")) {
        throw new IllegalArgumentException(
            "--sha256 \"" + sha256 + "\" is not 64 lowercase hex digits");
      }
      if (output != null && Files.exists(output, LinkOption.NOFOLLOW_LINKS)) {
        throw new IOException(output + " exists; --output needs an absent file");
      }
      Repeats.run(
          repeat,
          () -> {
            boolean ok = false;
            try (ImageStream image = ImageSources.open(source, FetchOptions.defaults());
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
              String digest = sha256 != null ? image.verify(sha256) : image.sha256();
              ok = true;
              System.out.println(digest + "  " + source);
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
          },
          System.err);
      return 0;
    } catch (IOException | IllegalArgumentException e) {
      System.err.println("fetch: " + e.getMessage());
      return 1;
    }
  }
}
