package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.DigestMismatchException;
import io.chrootbooter.agent.fetch.DownloadCancelledException;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.agent.fetch.LoopbackServer;
import io.chrootbooter.protocol.Backoff;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Squashfs download, verification and mounting. Runs only in a private mount namespace (the
 * surefire JVM launcher {@code src/test/jvm/bin/java} makes one), so a leaked mount cannot reach
 * the host; every test still unmounts everything in {@code @AfterEach}.
 */
class SquashfsImageTest {
  @TempDir Path temp;
  private Path image;
  private String sha256;
  private LoopbackServer server;
  private final List<SquashfsImage.Mounted> mounted = new ArrayList<>();
  private final CancelSignal cancel = new CancelSignal();

  @BeforeEach
  void buildImage() throws Exception {
    Fixtures.assumeRoot();
    Fixtures.assumeTool("mksquashfs", "squashfs-tools");
    Fixtures.assumeTool("losetup", "mount");
    Assumptions.assumeTrue(
        "private".equals(System.getenv("CB_TEST_MOUNT_NAMESPACE")),
        "the test JVM is not in a private mount namespace (needs unshare from util-linux, as root)");
    Path tree = Files.createDirectory(temp.resolve("tree"));
    Fixtures.run(
        tree,
        "sh",
        "-c",
        "mkdir -p etc sbin && echo node > etc/hostname && head -c 3000000 /dev/urandom > blob");
    image = temp.resolve("image.squashfs");
    Fixtures.run(
        temp,
        "mksquashfs",
        tree.toString(),
        image.toString(),
        "-quiet",
        "-noappend",
        "-comp",
        "gzip");
    sha256 =
        HexFormat.of()
            .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(image)));
  }

  @AfterEach
  void tearDown() throws IOException {
    for (SquashfsImage.Mounted m : mounted) {
      m.close();
    }
    if (server != null) {
      server.close();
    }
    if (temp != null) {
      List<Path> leaked = new ArrayList<>(Mounts.mountsBelow(temp));
      java.util.Collections.reverse(leaked);
      for (Path point : leaked) {
        Mounts.umount(point);
      }
    }
  }

  private FetchOptions options() {
    return new FetchOptions(
        new Backoff(4, Duration.ofMillis(10), Duration.ofMillis(50)),
        Duration.ofSeconds(30),
        cancel,
        p -> {},
        0);
  }

  private List<String> loopDevicesOf(Path file) throws Exception {
    String out = Fixtures.run(temp, "losetup", "-j", file.toString()).trim();
    return out.isEmpty() ? List.of() : List.of(out.split("\n"));
  }

  @Test
  void downloadsVerifiesAndMountsWithATmpfsOverlay() throws Exception {
    server =
        new LoopbackServer(Files.readAllBytes(image))
            .fault(1, LoopbackServer.Fault.DROP, 1_000_000);
    Path cached = temp.resolve("cache.squashfs");
    Path target = temp.resolve("root");

    try (ImageStream in = ImageSources.open(server.url(), options())) {
      assertThat(SquashfsImage.download(in, Optional.of(sha256), cached)).isEqualTo(sha256);
    }
    SquashfsImage.Mounted root =
        SquashfsImage.mount(
            cached, Files.createDirectory(temp.resolve("work")), target, new Overlay.Tmpfs());
    mounted.add(root);

    assertThat(target.resolve("etc/hostname")).hasContent("node");
    Files.writeString(target.resolve("etc/hostname"), "changed\n");
    assertThat(target.resolve("etc/hostname")).hasContent("changed");
    assertThat(temp.resolve("work/rw/upper/etc/hostname")).hasContent("changed");
    assertThat(Mounts.mountsBelow(temp)).hasSize(3);
    assertThat(loopDevicesOf(cached)).hasSize(1);

    root.close();
    mounted.clear();

    assertThat(Mounts.mountsBelow(temp)).isEmpty();
    assertThat(loopDevicesOf(cached)).isEmpty();
  }

  @Test
  void overlayNoneIsReadOnly() throws Exception {
    Path cached = temp.resolve("cache.squashfs");
    try (ImageStream in = ImageSources.open(image.toString(), options())) {
      SquashfsImage.download(in, Optional.of(sha256), cached);
    }
    Path target = temp.resolve("root");
    mounted.add(SquashfsImage.mount(cached, temp.resolve("work"), target, new Overlay.None()));

    assertThat(target.resolve("etc/hostname")).hasContent("node");
    assertThatThrownBy(() -> Files.writeString(target.resolve("etc/hostname"), "x"))
        .hasMessageContaining("Read-only file system");
  }

  @Test
  void blockDeviceUpperKeepsChanges() throws Exception {
    Fixtures.assumeTool("mkfs.ext4", "e2fsprogs");
    Path disk = temp.resolve("disk.img");
    Fixtures.run(temp, "truncate", "-s", "32M", disk.toString());
    Fixtures.run(temp, "mkfs.ext4", "-q", disk.toString());
    String device = Fixtures.run(temp, "losetup", "-f", "--show", disk.toString()).trim();
    try {
      Path cached = temp.resolve("cache.squashfs");
      Files.copy(image, cached);
      Path target = temp.resolve("root");
      try (SquashfsImage.Mounted root =
          SquashfsImage.mount(
              cached, temp.resolve("work"), target, new Overlay.BlockDevice(Path.of(device)))) {
        Files.writeString(target.resolve("kept"), "kept");
      }
      assertThat(Mounts.mountsBelow(temp)).isEmpty();
      try (SquashfsImage.Mounted again =
          SquashfsImage.mount(
              cached, temp.resolve("work"), target, new Overlay.BlockDevice(Path.of(device)))) {
        assertThat(target.resolve("kept")).hasContent("kept");
        assertThat(target.resolve("etc/hostname")).hasContent("node");
      }
    } finally {
      Fixtures.run(temp, "losetup", "-d", device);
    }
  }

  @Test
  void wrongDigestIsNeverMountedAndTheFileRemoved() throws Exception {
    server = new LoopbackServer(Files.readAllBytes(image));
    Path cached = temp.resolve("cache.squashfs");
    String wrong = "0".repeat(64);

    try (ImageStream in = ImageSources.open(server.url(), options())) {
      assertThatThrownBy(() -> SquashfsImage.download(in, Optional.of(wrong), cached))
          .isInstanceOf(DigestMismatchException.class);
    }

    assertThat(cached).doesNotExist();
    assertThat(Mounts.mountsBelow(temp)).isEmpty();
  }

  @Test
  void aTarDeclaredAsSquashfsIsRefused() throws Exception {
    Path tar = temp.resolve("image.tar");
    Fixtures.run(temp, "tar", "-cf", tar.toString(), "tree");
    Path cached = temp.resolve("cache.squashfs");

    try (ImageStream in = ImageSources.open(tar.toString(), options())) {
      assertThatThrownBy(() -> SquashfsImage.download(in, Optional.empty(), cached))
          .hasMessage(tar + " is a tar image; the declared format is squashfs");
    }
    assertThat(cached).doesNotExist();
    assertThatThrownBy(
            () ->
                SquashfsImage.mount(tar, temp.resolve("w"), temp.resolve("r"), new Overlay.Tmpfs()))
        .hasMessageStartingWith(tar + " is not a squashfs image (first bytes ");
    assertThat(Mounts.mountsBelow(temp)).isEmpty();
  }

  @Test
  void cancellationLeavesNothingMountedOrAllocated() throws Exception {
    server =
        new LoopbackServer(Files.readAllBytes(image))
            .fault(1, LoopbackServer.Fault.STALL, 1_000_000);
    Path cached = temp.resolve("cache.squashfs");
    ImageStream in = ImageSources.open(server.url(), options());
    CompletableFuture<String> download =
        CompletableFuture.supplyAsync(
            () -> {
              try (in) {
                return SquashfsImage.download(in, Optional.of(sha256), cached);
              } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            });
    await().atMost(Duration.ofSeconds(10)).until(() -> in.bytes() >= 1_000_000);

    cancel.cancel();

    await().atMost(Duration.ofSeconds(5)).until(download::isDone);
    assertThat(download)
        .failsWithin(Duration.ZERO)
        .withThrowableThat()
        .havingRootCause()
        .isInstanceOf(DownloadCancelledException.class);
    assertThat(cached).doesNotExist();
    assertThat(Mounts.mountsBelow(temp)).isEmpty();
  }
}
