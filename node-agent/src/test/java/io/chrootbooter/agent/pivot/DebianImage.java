package io.chrootbooter.agent.pivot;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * The Debian 12 systemd image the systemd target tests boot: {@code CB_DEBIAN_IMAGE} when set, else
 * built once per test JVM by {@code e2e/lab/images/debian.sh} into {@code target/debian-image/}
 * with its cache in {@code target/image-cache/} (the first build fetches ≈ 45 MB of packages and
 * takes a minute or two; later ones copy the cached image).
 */
final class DebianImage {
  /** A prebuilt image to use instead of building one. */
  static final String ENV = "CB_DEBIAN_IMAGE";

  /** debian.sh's exit status when the mirror cannot be reached. */
  private static final int NO_NETWORK = 4;

  private static final long BUILD_TIMEOUT_MINUTES = 20;

  private static Path image;

  private DebianImage() {}

  /** The image, built if needed; skips the caller when it cannot be had, saying why. */
  static synchronized Path get() throws IOException, InterruptedException {
    if (image != null) {
      return image;
    }
    String prebuilt = System.getenv(ENV);
    if (prebuilt != null && !prebuilt.isBlank()) {
      Path p = Path.of(prebuilt);
      Assumptions.assumeTrue(
          Files.isRegularFile(p), ENV + "=" + prebuilt + " is not a file: no Debian image to boot");
      image = p;
      return image;
    }
    Path module = Path.of(System.getProperty("user.dir")).toAbsolutePath();
    Path script = module.resolveSibling("e2e/lab/images/debian.sh");
    Assumptions.assumeTrue(
        Files.isExecutable(script),
        "no executable " + script + " to build the Debian image; set " + ENV + " instead");
    String path = System.getenv("PATH") + ":/usr/sbin:/sbin";
    Assumptions.assumeTrue(
        Stream.of(path.split(":")).anyMatch(d -> Files.isExecutable(Path.of(d, "debootstrap"))),
        "debootstrap is not installed (apt-get install -y debootstrap): cannot build the Debian"
            + " image; or set "
            + ENV
            + " to a squashfs made by e2e/lab/images/debian.sh");
    Path out = module.resolve("target/debian-image/debian-bookworm.squashfs");
    Path cache = module.resolve("target/image-cache");
    ProcessBuilder builder =
        new ProcessBuilder(script.toString(), out.toString(), cache.toString())
            .redirectErrorStream(true);
    builder.environment().put("PATH", path);
    Process process = builder.start();
    Deque<String> tail = new ArrayDeque<>();
    Thread pump =
        new Thread(
            () -> {
              try (BufferedReader reader =
                  new BufferedReader(
                      new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                  System.out.println(line);
                  synchronized (tail) {
                    tail.addLast(line);
                    if (tail.size() > 30) {
                      tail.removeFirst();
                    }
                  }
                }
              } catch (IOException e) {
                // the process is gone; its status tells
              }
            },
            "debian.sh output");
    pump.start();
    if (!process.waitFor(BUILD_TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
      process.destroyForcibly();
      fail(script + " did not finish within " + BUILD_TIMEOUT_MINUTES + " minutes");
    }
    pump.join(TimeUnit.SECONDS.toMillis(10));
    String output;
    synchronized (tail) {
      output = String.join("\n", tail);
    }
    Assumptions.assumeTrue(
        process.exitValue() != NO_NETWORK,
        () -> "cannot build the Debian image without the network: " + output);
    if (process.exitValue() != 0) {
      fail(script + " exited with " + process.exitValue() + ":\n" + output);
    }
    image = out;
    return image;
  }
}
