package io.chrootbooter.agent.lazy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.OperatorCredential;
import io.chrootbooter.protocol.Backoff;
import io.chrootbooter.protocol.Verity;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole block stack with real devices, as root: a squashfs image served on 127.0.0.1, the
 * agent's NBD server, /dev/nbdN, dm-verity with a tree {@code veritysetup format} made, and the
 * squashfs mounted from it. Skips, saying what is missing, on a kernel without the nbd or dm-verity
 * module, or without nbd-client, dmsetup, veritysetup or mksquashfs.
 */
class LazyRootTest {
  private static final String SESSION = "Bearer lazy-root";

  @TempDir Path dir;

  record Run(int exit, String output) {}

  static Run run(List<String> command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    return new Run(p.waitFor(), out);
  }

  @Test
  void aServedImageReadsThroughTheStackAndAFlippedByteFailsOnlyItsFile() throws Exception {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")), "needs root: it attaches block devices");
    Assumptions.assumeTrue(
        run(List.of("sh", "-c", "command -v veritysetup && command -v mksquashfs")).exit == 0,
        "veritysetup or mksquashfs is not installed (Debian: cryptsetup-bin, squashfs-tools)");
    var missing = LazyRoot.missing();
    Assumptions.assumeTrue(missing.isEmpty(), () -> "no Lazy root here: " + missing.orElse(""));

    // An image with two files: "good" and "bad", each 1 MiB of random bytes, stored uncompressed.
    Path tree = Files.createDirectories(dir.resolve("tree"));
    byte[] good = new byte[1 << 20];
    byte[] bad = new byte[1 << 20];
    new Random(1).nextBytes(good);
    new Random(2).nextBytes(bad);
    Files.write(tree.resolve("good"), good);
    Files.write(tree.resolve("bad"), bad);
    Path image = dir.resolve("image.squashfs");
    Run mk =
        run(
            List.of(
                "mksquashfs",
                tree.toString(),
                image.toString(),
                "-noappend",
                "-quiet",
                "-noD",
                "-noF",
                "-noI",
                "-noX"));
    assertThat(mk.exit).as(mk.output).isZero();
    byte[] bytes = Files.readAllBytes(image);
    assertThat(bytes.length % 4096).isZero();
    Path hashes = dir.resolve("image.verity");
    Run format = run(List.of("veritysetup", "format", image.toString(), hashes.toString()));
    assertThat(format.exit).as(format.output).isZero();
    Matcher root = Pattern.compile("Root hash:\\s+([0-9a-f]{64})").matcher(format.output);
    Matcher salt = Pattern.compile("Salt:\\s+([0-9a-f]+)").matcher(format.output);
    assertThat(root.find() && salt.find()).as(format.output).isTrue();
    Verity verity =
        new Verity(null, root.group(1), salt.group(1), bytes.length / 4096L, Files.size(hashes));
    int badAt = indexOf(bytes, java.util.Arrays.copyOf(bad, 64));
    assertThat(badAt).as("the file's bytes in the image").isPositive();

    String name = "cb-lazy-test-" + ProcessHandle.current().pid();
    try (RangeServer http = new RangeServer(bytes, "ab".repeat(32), SESSION)) {
      OperatorCredential.use(URI.create(http.url()), () -> SESSION);
      FetchOptions options =
          new FetchOptions(
              new Backoff(2, Duration.ofMillis(50), Duration.ofMillis(100)),
              Duration.ofSeconds(5),
              new CancelSignal(),
              p -> {},
              1000);
      String nbdDevice;
      try (HttpBlocks blocks =
              new HttpBlocks(
                  URI.create(http.url()),
                  "ab".repeat(32),
                  bytes.length,
                  bytes.length,
                  dir.resolve("blocks"),
                  options);
          NbdServer server = NbdServer.start(dir.resolve("nbd.sock"), "lazy", blocks, 4)) {
        http.flip(badAt + 5000);
        try (LazyRoot lazy =
            LazyRoot.attach(
                server,
                "lazy",
                bytes.length,
                hashes,
                verity,
                name,
                dir.resolve("mnt"),
                Duration.ofSeconds(10))) {
          nbdDevice = lazy.nbdDevice();
          // The agent's watch of the kernel's log, as it runs while a target runs.
          List<LazyRoot.Corruption> heard =
              java.util.Collections.synchronizedList(new java.util.ArrayList<>());
          try (VerityWatch watch =
              VerityWatch.start(lazy, Path.of("/dev/kmsg"), heard::add).orElseThrow()) {
            assertThat(Files.readAllBytes(dir.resolve("mnt/good"))).isEqualTo(good);
            assertThat(heard).isEmpty();
            assertThatThrownBy(() -> Files.readAllBytes(dir.resolve("mnt/bad")))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("Input/output error");
            var corruption = lazy.corruption();
            assertThat(corruption).isPresent();
            assertThat(corruption.get().block()).isEqualTo((badAt + 5000) / 4096);
            long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (heard.isEmpty() && System.nanoTime() < end) {
              Thread.sleep(50);
            }
            assertThat(heard)
                .as("the watch names the block")
                .containsExactly(
                    new LazyRoot.Corruption(
                        lazy.verityDevice().toString(), "data", (badAt + 5000) / 4096));
            assertThat(Files.readAllBytes(dir.resolve("mnt/good"))).isEqualTo(good);
          }
        }
      } finally {
        OperatorCredential.clear();
      }
      // Nothing left: no dm device, no client on the NBD device, no loop device on the tree.
      assertThat(run(List.of("dmsetup", "info", name)).exit).isNotZero();
      assertThat(Path.of("/sys/block/" + Path.of(nbdDevice).getFileName() + "/pid")).doesNotExist();
      assertThat(run(List.of("losetup", "-j", hashes.toString())).output).isBlank();
      assertThat(dir.resolve("nbd.sock")).doesNotExist();
    }
  }

  private static int indexOf(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }
}
