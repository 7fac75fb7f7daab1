package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.LoopbackServer;
import io.chrootbooter.agent.unpack.Fixtures;
import io.chrootbooter.agent.unpack.ImageCache;
import io.chrootbooter.agent.unpack.Mounts;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.protocol.Backoff;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.MachinePhase;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A cached image is hashed again before each use: on a cache disk (an ext4 file system on a loop
 * device, as {@code cb.cache=/dev/...} mounts one) whose cached image was changed behind the
 * agent's back, the change is detected, the entry removed and the image downloaded afresh from a
 * loopback HTTP server, and the load says so.
 */
class CachedImageVerifyTest {
  @TempDir Path temp;
  private LoopbackServer server;
  private final List<ImageLoader.Prepared> prepared = new ArrayList<>();

  @BeforeEach
  void host() {
    Fixtures.assumeRoot();
    Fixtures.assumeTool("mksquashfs", "squashfs-tools");
    Fixtures.assumeTool("mkfs.ext4", "e2fsprogs");
    Fixtures.assumeTool("losetup", "mount");
    Assumptions.assumeTrue(
        "private".equals(System.getenv("CB_TEST_MOUNT_NAMESPACE")),
        "the test JVM is not in a private mount namespace (needs unshare from util-linux, as root)");
  }

  @AfterEach
  void tearDown() throws IOException {
    try {
      for (ImageLoader.Prepared p : prepared) {
        p.release().release();
      }
      if (server != null) {
        server.close();
      }
    } finally {
      List<Path> leaked = new ArrayList<>(Mounts.mountsBelow(temp));
      Collections.reverse(leaked);
      for (Path point : leaked) {
        Mounts.umount(point);
      }
    }
  }

  @Test
  void anAlteredCachedImageIsDetectedRemovedAndDownloadedAgain() throws Exception {
    Path tree = Files.createDirectory(temp.resolve("tree"));
    Fixtures.run(
        tree,
        "sh",
        "-c",
        "mkdir -p etc sbin && echo node > etc/hostname && head -c 2000000 /dev/urandom > blob");
    Path image = temp.resolve("image.squashfs");
    Fixtures.run(
        temp,
        "mksquashfs",
        tree.toString(),
        image.toString(),
        "-quiet",
        "-noappend",
        "-comp",
        "gzip");
    byte[] bytes = Files.readAllBytes(image);
    String sha256 = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    // The cache disk: ext4 on a loop device, mounted as the agent mounts cb.cache=/dev/...
    Path disk = temp.resolve("cache-disk.img");
    Fixtures.run(temp, "truncate", "-s", "64M", disk.toString());
    Fixtures.run(temp, "mkfs.ext4", "-q", "-F", disk.toString());
    Path cacheMount = Files.createDirectories(temp.resolve("cache-disk"));
    Mounts.mount("ext4", "loop", disk.toString(), cacheMount);
    server = new LoopbackServer(bytes);
    Path work = Files.createDirectories(temp.resolve("work"));
    ImageLoader loader = new ImageLoader(work, new ImageCache(cacheMount, () -> 32L << 20));
    ImageLoader.Request request =
        new ImageLoader.Request(
            server.url(), Optional.of(sha256), ImageFormat.SQUASHFS, new Overlay.Tmpfs());

    ImageLoader.Prepared first = load(loader, request, new ArrayList<>());
    assertThat(first.cached()).isFalse();
    List<MachinePhase> phases = new CopyOnWriteArrayList<>();
    ImageLoader.Prepared second = load(loader, request, phases);
    assertThat(second.cached()).isTrue();
    assertThat(second.note()).isEmpty();
    assertThat(phases).containsExactly(MachinePhase.Verifying, MachinePhase.Mounting);
    assertThat(server.requests()).isEqualTo(1);
    release();

    // Someone with the cache disk (a target that mounted it) changes one byte of the image.
    Path cached = cacheMount.resolve(sha256 + ".squashfs");
    try (FileChannel ch = FileChannel.open(cached, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.wrap(new byte[] {(byte) ~bytes[bytes.length / 2]}), bytes.length / 2);
    }
    phases.clear();
    ImageLoader.Prepared third = load(loader, request, phases);

    assertThat(third.cached()).as("served from the cache").isFalse();
    assertThat(third.note())
        .hasValueSatisfying(
            note ->
                assertThat(note)
                    .startsWith("cached image " + sha256 + " was altered on the cache disk")
                    .endsWith("; downloading again"));
    assertThat(phases)
        .containsExactly(
            MachinePhase.Verifying,
            MachinePhase.Downloading,
            MachinePhase.Verifying,
            MachinePhase.Mounting);
    assertThat(server.requests()).as("downloads").isEqualTo(2);
    assertThat(Files.readAllBytes(cached)).as("the cache holds the image again").isEqualTo(bytes);
    assertThat(Files.readString(third.root().resolve("etc/hostname"))).isEqualTo("node\n");
    release();
    assertThat(load(loader, request, new ArrayList<>()).cached()).isTrue();
  }

  private ImageLoader.Prepared load(
      ImageLoader loader, ImageLoader.Request request, List<MachinePhase> phases)
      throws IOException {
    FetchOptions options =
        new FetchOptions(
            new Backoff(2, Duration.ofMillis(10), Duration.ofMillis(50)),
            Duration.ofSeconds(30),
            new CancelSignal(),
            p -> {},
            0);
    ImageLoader.Prepared p = loader.prepare(request, options, phases::add);
    prepared.add(p);
    return p;
  }

  private void release() throws IOException {
    for (ImageLoader.Prepared p : prepared) {
      p.release().release();
    }
    prepared.clear();
  }
}
