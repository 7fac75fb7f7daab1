package io.chrootbooter.agent.lazy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
 * root holds the image's files, and its release leaves no mount, device or file behind. A network
 * cut fails reads of blocks that are not local within a bounded time and the return still works;
 * returns during the prefetch, repeated, leak nothing.
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

  /** A squashfs image with /sbin/init and a blob of random bytes, and its hash tree. */
  record Image(byte[] bytes, String sha, byte[] tree, String rootHash, String salt, byte[] blob) {
    Verity verity(String treeUrl) {
      return new Verity(treeUrl, rootHash, salt, bytes.length / 4096L, (long) tree.length);
    }
  }

  Image image(int blobBytes) throws Exception {
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
    byte[] blob = new byte[blobBytes];
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
    return new Image(bytes, sha, Files.readAllBytes(hashes), root.group(1), salt.group(1), blob);
  }

  static FetchOptions options() {
    return new FetchOptions(
        new Backoff(2, Duration.ofMillis(50), Duration.ofMillis(100)),
        Duration.ofSeconds(5),
        new CancelSignal(),
        p -> {},
        1000);
  }

  static ImageLoader.Request request(RangeServer http, Image image) {
    return new ImageLoader.Request(
        http.url(),
        Optional.of(image.sha()),
        ImageFormat.SQUASHFS,
        Overlay.parse("tmpfs"),
        KernelModules.None,
        Optional.of(image.verity(http.treeUrl())));
  }

  /**
   * Nothing of a Lazy load left: no mount below {@code work}, file in it, dm, NBD or loop device.
   */
  static void nothingLeft(Path work) throws Exception {
    assertThat(Mounts.mountsBelow(work)).isEmpty();
    try (var left = Files.list(work)) {
      assertThat(left.toList()).isEmpty();
    }
    if (LazyRoot.missing().isEmpty()) {
      assertThat(run(List.of("dmsetup", "ls"))).doesNotContain("cb-lazy-");
      try (var nbds = Files.list(Path.of("/sys/block"))) {
        assertThat(
                nbds.filter(b -> b.getFileName().toString().startsWith("nbd"))
                    .filter(b -> Files.exists(b.resolve("pid")))
                    .toList())
            .as("NBD devices with a client")
            .isEmpty();
      }
      assertThat(run(List.of("losetup", "-a"))).doesNotContain(work.toString());
    }
  }

  @Test
  void aLazyImageBootsFromItsBlocksOrIsDownloadedWholeWhereItCannot() throws Exception {
    Image image = image(8 << 20);
    Optional<String> missing = LazyRoot.missing();
    Path work = Files.createDirectories(dir.resolve("work"));
    try (RangeServer http = new RangeServer(image.bytes(), image.sha(), SESSION)) {
      http.tree(image.tree());
      OperatorCredential.use(URI.create(http.url()), () -> SESSION);
      ImageLoader loader =
          new ImageLoader(work, new ImageCache(dir.resolve("cache"), () -> 1L << 30));
      ImageLoader.Prepared prepared = loader.prepare(request(http, image), options(), phase -> {});
      try {
        assertThat(prepared.sha256()).isEqualTo(image.sha());
        if (missing.isPresent()) {
          assertThat(prepared.note())
              .hasValueSatisfying(n -> assertThat(n).contains("downloaded whole"));
          assertThat(prepared.lazy()).isEmpty();
        } else {
          assertThat(prepared.note()).isEmpty();
          assertThat(prepared.lazy()).isPresent();
          // Before the files are read, fewer than all pieces crossed the network.
          assertThat(http.ranges())
              .isLessThan((image.bytes().length + HttpBlocks.CHUNK - 1) / HttpBlocks.CHUNK);
        }
        assertThat(Files.readString(prepared.root().resolve("sbin/init"))).contains("hello");
        assertThat(Files.readAllBytes(prepared.root().resolve("blob"))).isEqualTo(image.blob());
        Files.writeString(prepared.root().resolve("written"), "the overlay is writable");
        if (missing.isEmpty()) {
          LazyImage lazy = prepared.lazy().orElseThrow();
          long end = System.nanoTime() + Duration.ofSeconds(60).toNanos();
          while (!lazy.prefetch().fullyLocal() && System.nanoTime() < end) {
            Thread.sleep(50);
          }
          assertThat(lazy.prefetch().fullyLocal()).as("fully local").isTrue();
          assertThat(lazy.prefetch().bytesLocal()).isEqualTo((long) image.bytes().length);
        }
      } finally {
        prepared.release().release();
        OperatorCredential.clear();
      }
    }
    nothingLeft(work);
    if (missing.isEmpty()) {
      // The boot's reads were recorded for the next boot of the digest.
      assertThat(dir.resolve("cache/read-profiles/" + image.sha() + ".reads")).isRegularFile();
    }
  }

  @Test
  void aNetworkCutFailsReadsOfMissingBlocksInBoundedTimeAndTheReturnStillWorks() throws Exception {
    Image image = image(8 << 20);
    Optional<String> missing = LazyRoot.missing();
    Assumptions.assumeTrue(missing.isEmpty(), () -> "no Lazy root here: " + missing.orElse(""));
    Path work = Files.createDirectories(dir.resolve("work"));
    try (RangeServer http = new RangeServer(image.bytes(), image.sha(), SESSION)) {
      http.tree(image.tree());
      http.delay(300); // the prefetch is far from complete when the network goes
      OperatorCredential.use(URI.create(http.url()), () -> SESSION);
      ImageLoader loader =
          new ImageLoader(work, new ImageCache(dir.resolve("cache"), () -> 1L << 30));
      ImageLoader.Prepared prepared = loader.prepare(request(http, image), options(), phase -> {});
      try {
        LazyImage lazy = prepared.lazy().orElseThrow();
        assertThat(Files.readString(prepared.root().resolve("sbin/init"))).contains("hello");
        http.down(true);
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> Files.readAllBytes(prepared.root().resolve("blob")))
            .isInstanceOf(IOException.class)
            .hasMessageContaining("Input/output error");
        Duration took = Duration.ofNanos(System.nanoTime() - t0);
        System.out.println("RESULT lazy_read_fails_after_network_cut " + took.toMillis() + " ms");
        assertThat(took).isLessThan(ImageLoader.LAZY_READ_TIMEOUT);
        long end = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (lazy.prefetch().error() == null && System.nanoTime() < end) {
          Thread.sleep(50);
        }
        assertThat(lazy.prefetch().error()).as("the cut reported").contains("503");
        assertThat(lazy.prefetch().fullyLocal()).isFalse();
        // What is local still reads.
        assertThat(Files.readString(prepared.root().resolve("sbin/init"))).contains("hello");
      } finally {
        long t0 = System.nanoTime();
        prepared.release().release();
        System.out.println(
            "RESULT lazy_return_after_network_cut "
                + Duration.ofNanos(System.nanoTime() - t0).toMillis()
                + " ms");
        OperatorCredential.clear();
      }
    }
    nothingLeft(work);
  }

  /**
   * Returns while the prefetch runs, {@code cb.lazy.cycles} times (10 by default; the VM script
   * runs 100): no NBD, dm or loop device, mount, file, descriptor, thread or RAM is left.
   */
  @Test
  void returnsDuringThePrefetchLeakNothing() throws Exception {
    Image image = image(4 << 20);
    Optional<String> missing = LazyRoot.missing();
    Assumptions.assumeTrue(missing.isEmpty(), () -> "no Lazy root here: " + missing.orElse(""));
    int cycles = Integer.getInteger("cb.lazy.cycles", 10);
    Path work = Files.createDirectories(dir.resolve("work"));
    try (RangeServer http = new RangeServer(image.bytes(), image.sha(), SESSION)) {
      http.tree(image.tree());
      http.delay(20);
      OperatorCredential.use(URI.create(http.url()), () -> SESSION);
      ImageLoader loader =
          new ImageLoader(work, new ImageCache(dir.resolve("cache"), () -> 1L << 30));
      Runnable cycle =
          () -> {
            try {
              ImageLoader.Prepared prepared =
                  loader.prepare(request(http, image), options(), phase -> {});
              try {
                assertThat(Files.readString(prepared.root().resolve("sbin/init")))
                    .contains("hello");
                assertThat(prepared.lazy().orElseThrow().prefetch().fullyLocal())
                    .as("returned during the prefetch")
                    .isFalse();
              } finally {
                prepared.release().release();
              }
            } catch (Exception e) {
              throw new AssertionError(e);
            }
          };
      cycle.run(); // the first loads the classes and starts the pools the rest reuse
      Thread.sleep(500);
      Usage before = Usage.now();
      long t0 = System.nanoTime();
      for (int i = 0; i < cycles; i++) {
        cycle.run();
      }
      long millis = Duration.ofNanos(System.nanoTime() - t0).toMillis();
      System.out.println(
          "RESULT lazy_return_cycles " + cycles + " cycles " + millis / cycles + " ms/cycle");
      Thread.sleep(500);
      Usage after = Usage.now();
      System.out.println("lazy cycles: before " + before + ", after " + after);
      assertThat(after.fds()).as("descriptors").isLessThanOrEqualTo(before.fds() + 2);
      // The agent's threads are named cb-*; the test's range server grows its own pool.
      assertThat(after.threads()).as("the agent's threads").isEqualTo(before.threads());
      assertThat(after.shmemKiB()).as("tmpfs RAM (KiB)").isLessThan(before.shmemKiB() + 4096);
      assertThat(after.heapBytes()).as("heap").isLessThan(before.heapBytes() + (16L << 20));
      nothingLeft(work);
      OperatorCredential.clear();
    }
  }

  /**
   * What this process and the machine hold: descriptors, the agent's threads (named {@code cb-}),
   * tmpfs RAM, heap after a GC.
   */
  record Usage(long fds, long threads, long shmemKiB, long heapBytes) {
    static Usage now() throws IOException {
      long fds;
      try (var list = Files.list(Path.of("/proc/self/fd"))) {
        fds = list.count();
      }
      long shmem = 0;
      for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
        if (line.startsWith("Shmem:")) {
          shmem = Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
      }
      System.gc();
      Runtime rt = Runtime.getRuntime();
      long threads =
          Thread.getAllStackTraces().keySet().stream()
              .filter(t -> t.isAlive() && t.getName().startsWith("cb-"))
              .count();
      return new Usage(fds, threads, shmem, rt.totalMemory() - rt.freeMemory());
    }
  }
}
