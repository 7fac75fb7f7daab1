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
import io.chrootbooter.agent.fetch.Retries;
import io.chrootbooter.agent.sys.LinuxSyscalls;
import io.chrootbooter.protocol.Backoff;
import io.chrootbooter.protocol.ImageFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A root filesystem with every kind of file a real image has, packed by GNU tar with each
 * compressor, unpacked by the agent: the trees must be equal in everything a root keeps.
 */
class RoundTripTest {
  /** v2 file capabilities for cap_setuid,cap_net_raw=ep: bit 7 makes a 0x80 byte. */
  private static final String CAPABILITY = "0x0100000280200000000000000000000000000000";

  @TempDir Path temp;
  private Path source;
  private Path root;
  private LoopbackServer server;

  @BeforeEach
  void buildSourceTree() throws Exception {
    Fixtures.assumeRoot();
    Fixtures.assumeTool("setfattr", "attr");
    Fixtures.assumeTool("getfattr", "attr");
    source = Files.createDirectory(temp.resolve("source"));
    root = temp.resolve("root");
    String script =
        String.join(
            "\n",
            "set -e",
            "mkdir -p etc bin sbin usr/bin usr/lib64 tmp home/user dev run var lib/systemd",
            "printf 'node\\n' > etc/hostname",
            "printf '#!/bin/sh\\n' > bin/su && chmod 4755 bin/su",
            "printf 'wall' > usr/bin/wall && chgrp 5 usr/bin/wall && chmod 2755 usr/bin/wall",
            "chmod 1777 tmp",
            "printf 'secret' > home/user/notes && chown -R 1000:1000 home/user",
            "chmod 0700 home/user && chmod 0640 home/user/notes",
            "chown 4294967294:65534 etc/hostname",
            "mknod -m 0666 dev/null c 1 3",
            "mknod -m 0660 dev/loop0 b 7 0 && chgrp 6 dev/loop0",
            "mknod -m 0600 run/initctl p",
            "printf 'perl' > usr/bin/perl && ln usr/bin/perl usr/bin/perl5.36",
            "printf 'systemd' > lib/systemd/systemd && chmod 755 lib/systemd/systemd",
            "ln -s /lib/systemd/systemd sbin/init",
            "ln -s usr/lib64 lib64",
            "ln -s /nowhere/at/all dangling",
            "printf 'uidmap' > usr/bin/newuidmap",
            "setfattr -n security.capability -v " + CAPABILITY + " usr/bin/newuidmap",
            "setfattr -n user.comment -v 'hello world' etc/hostname",
            "setfattr -n user.binary -v 0x00ff80fe etc",
            "long=$(printf 'd%.0s' $(seq 1 150))",
            "mkdir -p \"$long/$long\" && printf 'deep' > \"$long/$long/$(printf 'f%.0s' $(seq 1 200))\"",
            "truncate -s 64M var/sparse.img",
            "printf 'data' | dd of=var/sparse.img bs=1 seek=1048576 conv=notrunc status=none",
            "touch -h -d '2001-02-03 04:05:06.123456789' sbin/init etc/hostname",
            "touch -d '1999-12-31 23:59:59.5' home/user");
    Fixtures.run(source, "sh", "-c", script);
  }

  @AfterEach
  void stopServer() {
    if (server != null) {
      server.close();
    }
  }

  private Path pack(String format, String compressorFlag) throws Exception {
    Path image = temp.resolve("image." + format);
    String flag = compressorFlag.equals("none") ? "" : compressorFlag;
    Fixtures.run(
        source,
        "sh",
        "-c",
        "tar --format=posix --xattrs --xattrs-include='*' --numeric-owner --sparse "
            + flag
            + " -cf "
            + image
            + " .");
    return image;
  }

  private static String sha256(Path file) throws IOException, NoSuchAlgorithmException {
    return HexFormat.of()
        .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"tar,none,", "tar.gz,-z,", "tar.xz,-J,xz-utils", "tar.zst,--zstd,zstd"})
  void extractedTreeEqualsTheSource(String format, String flag, String tool) throws Exception {
    if (tool != null) {
      Fixtures.assumeTool(tool.equals("xz-utils") ? "xz" : tool, tool);
    }
    Path image = pack(format, flag);

    ImageUnpacker.Result result;
    try (ImageStream in = ImageSources.open(image.toString(), FetchOptions.defaults())) {
      result =
          new ImageUnpacker(new LinuxSyscalls())
              .unpack(in, ImageFormat.parse(format), Optional.of(sha256(image)), root);
    }

    assertThat(result.format()).isEqualTo(ImageFormat.parse(format));
    assertThat(result.imageBytes()).isEqualTo(Files.size(image));
    assertThat(Fixtures.manifest(root)).isEqualTo(Fixtures.manifest(source));
    String blocks = Fixtures.run(root, "stat", "-c", "%b", "var/sparse.img").trim();
    assertThat(Long.parseLong(blocks))
        .as("512-byte blocks of the 64 MiB sparse file")
        .isLessThan(1024);
  }

  @Test
  void tarGzOverHttpWithDroppedConnectionsEqualsTheSource() throws Exception {
    Path image = pack("tar.gz", "-z");
    long size = Files.size(image);
    server =
        new LoopbackServer(Files.readAllBytes(image))
            .fault(1, LoopbackServer.Fault.DROP, size / 3)
            .fault(2, LoopbackServer.Fault.DROP, size / 3);
    FetchOptions options =
        new FetchOptions(
            new Backoff(4, Duration.ofMillis(10), Duration.ofMillis(50)),
            Duration.ofSeconds(5),
            new io.chrootbooter.agent.fetch.CancelSignal(),
            p -> {},
            0);

    try (ImageStream in = ImageSources.open(server.url(), options)) {
      new ImageUnpacker(new LinuxSyscalls())
          .unpack(in, ImageFormat.TAR_GZ, Optional.of(sha256(image)), root);
    }

    assertThat(server.ranges()).hasSize(3);
    assertThat(Fixtures.manifest(root)).isEqualTo(Fixtures.manifest(source));
  }

  /**
   * A new spec cancels an extraction in the middle of an entry: the caller sees the cancel ({@link
   * DownloadCancelledException}), not a "truncated or corrupt" archive, which the agent would
   * report as a failure; and no tree is left.
   */
  @Test
  void cancelInTheMiddleOfAnEntryIsACancelAndLeavesNoTree() throws Exception {
    byte[] big = new byte[4 << 20];
    new java.util.Random(1).nextBytes(big);
    Files.write(source.resolve("var/big.bin"), big);
    Path image = pack("tar", "none");
    long half = Files.size(image) / 2;
    server =
        new LoopbackServer(Files.readAllBytes(image)).fault(1, LoopbackServer.Fault.STALL, half);
    CancelSignal cancel = new CancelSignal();
    FetchOptions options =
        new FetchOptions(Retries.DOWNLOAD, Retries.STALL_TIMEOUT, cancel, p -> {}, 0);
    ImageStream in = ImageSources.open(server.url(), options);
    CompletableFuture<Throwable> unpack =
        CompletableFuture.supplyAsync(
            () -> {
              try (in) {
                new ImageUnpacker(new LinuxSyscalls())
                    .unpack(in, ImageFormat.TAR, Optional.of(sha256(image)), root);
                return null;
              } catch (IOException | NoSuchAlgorithmException e) {
                return e;
              }
            });
    await().atMost(Duration.ofSeconds(10)).until(() -> in.bytes() >= half);

    cancel.cancel();

    assertThat(unpack.get(10, java.util.concurrent.TimeUnit.SECONDS))
        .isInstanceOf(DownloadCancelledException.class);
    assertThat(root).doesNotExist();
  }

  @Test
  void wrongDigestDiscardsTheWholeTree() throws Exception {
    Path image = pack("tar.gz", "-z");
    String wrong = "ab".repeat(32);

    try (ImageStream in = ImageSources.open(image.toString(), FetchOptions.defaults())) {
      assertThatThrownBy(
              () ->
                  new ImageUnpacker(new LinuxSyscalls())
                      .unpack(in, ImageFormat.TAR_GZ, Optional.of(wrong), root))
          .isInstanceOf(DigestMismatchException.class)
          .hasMessageContaining("expected " + wrong);
    }
    assertThat(root).doesNotExist();
  }

  @Test
  void declaredFormatMustMatchTheImage() throws Exception {
    Path image = pack("tar.gz", "-z");

    try (ImageStream in = ImageSources.open(image.toString(), FetchOptions.defaults())) {
      assertThatThrownBy(
              () ->
                  new ImageUnpacker(new LinuxSyscalls())
                      .unpack(in, ImageFormat.TAR_ZST, Optional.empty(), root))
          .hasMessage(image + " is a tar.gz image; the declared format is tar.zst");
    }
    assertThat(root).doesNotExist();
  }

  @Test
  void corruptCompressedDataIsRefusedAndTheTreeRemoved() throws Exception {
    Path image = pack("tar.gz", "-z");
    byte[] bytes = Files.readAllBytes(image);
    for (int i = bytes.length / 2; i < bytes.length / 2 + 64; i++) {
      bytes[i] ^= 0x5a;
    }
    Files.write(image, bytes);

    try (ImageStream in = ImageSources.open(image.toString(), FetchOptions.defaults())) {
      assertThatThrownBy(
              () ->
                  new ImageUnpacker(new LinuxSyscalls())
                      .unpack(in, ImageFormat.TAR_GZ, Optional.empty(), root))
          .isInstanceOf(IOException.class);
    }
    assertThat(root).doesNotExist();
  }
}
