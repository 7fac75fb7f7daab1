package io.chrootbooter.agent.lazy;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.agent.daemon.ImageLoader;
import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.OperatorCredential;
import io.chrootbooter.agent.unpack.ImageCache;
import io.chrootbooter.agent.unpack.Mounts;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.protocol.Backoff;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.KernelModules;
import io.chrootbooter.protocol.Verity;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A {@code Lazy} load through the agent's image loader, as root with real mounts: on a kernel with
 * nbd and dm-verity the image is attached lazily (only the blocks read cross the network before the
 * root is ready); elsewhere it is downloaded whole and the load's note says why. Either way the
 * root holds the image's files, and its release leaves no mount, device or file behind.
 */
class LazyLoadTest {
  private static final String SESSION = "Bearer lazy-load";

  @TempDir Path dir;

  static String run(List<String> command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor()).as(String.join(" ", command) + ": " + out).isZero();
    return out;
  }

  @Test
  void aLazyImageBootsFromItsBlocksOrIsDownloadedWholeWhereItCannot() throws Exception {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")), "needs root: it mounts the image");
    Assumptions.assumeTrue(
        new ProcessBuilder("sh", "-c", "command -v veritysetup && command -v mksquashfs")
                .start()
                .waitFor()
            == 0,
        "veritysetup or mksquashfs is not installed (Debian: cryptsetup-bin, squashfs-tools)");
    Path tree = Files.createDirectories(dir.resolve("tree/sbin"));
    Files.writeString(tree.resolve("init"), "#!/bin/sh\necho hello\n");
    byte[] blob = new byte[8 << 20];
    new Random(5).nextBytes(blob);
    Files.write(dir.resolve("tree/blob"), blob);
    Path image = dir.resolve("image.squashfs");
    run(
        List.of(
            "mksquashfs", dir.resolve("tree").toString(), image.toString(), "-noappend", "-quiet"));
    byte[] bytes = Files.readAllBytes(image);
    String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    Path hashes = dir.resolve("image.verity");
    String format = run(List.of("veritysetup", "format", image.toString(), hashes.toString()));
    Matcher root = Pattern.compile("Root hash:\\s+([0-9a-f]{64})").matcher(format);
    Matcher salt = Pattern.compile("Salt:\\s+([0-9a-f]+)").matcher(format);
    assertThat(root.find() && salt.find()).isTrue();

    Optional<String> missing = LazyRoot.missing();
    Path work = Files.createDirectories(dir.resolve("work"));
    try (RangeServer http = new RangeServer(bytes, sha, SESSION)) {
      http.tree(Files.readAllBytes(hashes));
      OperatorCredential.use(URI.create(http.url()), () -> SESSION);
      Verity verity =
          new Verity(
              http.treeUrl(),
              root.group(1),
              salt.group(1),
              bytes.length / 4096L,
              Files.size(hashes));
      ImageLoader loader =
          new ImageLoader(work, new ImageCache(dir.resolve("cache"), () -> 1L << 30));
      FetchOptions options =
          new FetchOptions(
              new Backoff(2, Duration.ofMillis(50), Duration.ofMillis(100)),
              Duration.ofSeconds(5),
              new CancelSignal(),
              p -> {},
              1000);
      ImageLoader.Prepared prepared =
          loader.prepare(
              new ImageLoader.Request(
                  http.url(),
                  Optional.of(sha),
                  ImageFormat.SQUASHFS,
                  Overlay.parse("tmpfs"),
                  KernelModules.None,
                  Optional.of(verity)),
              options,
              phase -> {});
      try {
        assertThat(prepared.sha256()).isEqualTo(sha);
        if (missing.isPresent()) {
          assertThat(prepared.note())
              .hasValueSatisfying(n -> assertThat(n).contains("downloaded whole"));
        } else {
          assertThat(prepared.note()).isEmpty();
          // Before the files are read, fewer than all pieces crossed the network.
          assertThat(http.ranges())
              .isLessThan((bytes.length + HttpBlocks.CHUNK - 1) / HttpBlocks.CHUNK);
        }
        assertThat(Files.readString(prepared.root().resolve("sbin/init"))).contains("hello");
        assertThat(Files.readAllBytes(prepared.root().resolve("blob"))).isEqualTo(blob);
        Files.writeString(prepared.root().resolve("written"), "the overlay is writable");
      } finally {
        prepared.release().release();
        OperatorCredential.clear();
      }
    }
    assertThat(Mounts.mountsBelow(work)).isEmpty();
    try (var left = Files.list(work)) {
      assertThat(left.toList()).isEmpty();
    }
    if (missing.isEmpty()) {
      assertThat(run(List.of("dmsetup", "ls"))).doesNotContain("cb-lazy-");
    }
  }
}
