package io.chrootbooter.agent.modules;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.LoopbackServer;
import io.chrootbooter.agent.unpack.Mounts;
import io.chrootbooter.protocol.Backoff;
import io.chrootbooter.protocol.KernelModules;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The modules image as a target sees it: a real squashfs served over loopback HTTP, verified,
 * loop-mounted and bound into target roots on a tmpfs. Runs only in the private mount namespace the
 * surefire JVM launcher makes; every mount is undone in {@code @AfterEach}.
 */
class ModulesImageTest {
  private static final String RELEASE = "6.1.0-test-amd64";

  @TempDir Path temp;
  private byte[] image;
  private String sha256;
  private LoopbackServer server;
  private ModulesImage modules;
  private Path roots;

  @BeforeEach
  void buildImage() throws Exception {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")), "needs root (mount, losetup)");
    Assumptions.assumeTrue(
        "private".equals(System.getenv("CB_TEST_MOUNT_NAMESPACE")),
        "the test JVM is not in a private mount namespace (needs unshare from util-linux, as root)");
    Assumptions.assumeTrue(
        run(temp, "sh", "-c", "command -v mksquashfs || true").contains("mksquashfs"),
        "mksquashfs missing: apt-get install squashfs-tools");
    Path tree = Files.createDirectory(temp.resolve("tree"));
    run(
        tree,
        "sh",
        "-c",
        "mkdir -p lib/modules/"
            + RELEASE
            + "/kernel/drivers lib/firmware"
            + " && echo 'kernel/drivers/dummy.ko:' > lib/modules/"
            + RELEASE
            + "/modules.dep"
            + " && echo ko > lib/modules/"
            + RELEASE
            + "/kernel/drivers/dummy.ko"
            + " && echo bootstrap > lib/firmware/shared.bin && echo ours > lib/firmware/ours.bin");
    Path file = temp.resolve("modules.sqfs");
    run(temp, "mksquashfs", tree.toString(), file.toString(), "-quiet", "-noappend", "-all-root");
    image = Files.readAllBytes(file);
    sha256 = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(image));
    server = new LoopbackServer(image);
    roots = Files.createDirectory(temp.resolve("roots"));
    Mounts.mount("tmpfs", "mode=0755", "cb-test-roots", roots);
    modules = modules(sha256);
  }

  private ModulesImage modules(String digest) {
    return new ModulesImage(
        digest,
        RELEASE,
        options -> ImageSources.open(server.url(), options),
        temp.resolve("store/modules.sqfs"),
        temp.resolve("mnt"));
  }

  @AfterEach
  void tearDown() throws IOException {
    if (server != null) {
      server.close();
    }
    List<Path> leaked = new ArrayList<>(Mounts.mountsBelow(temp));
    Collections.reverse(leaked);
    for (Path point : leaked) {
      Mounts.umount(point);
    }
  }

  private FetchOptions options() {
    return new FetchOptions(
        new Backoff(2, Duration.ofMillis(10), Duration.ofMillis(50)),
        Duration.ofSeconds(30),
        new CancelSignal(),
        p -> {},
        0);
  }

  /** A Debian 12-like root: /lib is a symlink to usr/lib, and it ships firmware of its own. */
  private Path mergedUsrRoot(String name) throws Exception {
    Path root = Files.createDirectory(roots.resolve(name));
    run(
        root,
        "sh",
        "-c",
        "mkdir -p usr/lib/firmware etc && ln -s usr/lib lib"
            + " && echo image > usr/lib/firmware/shared.bin && echo own > usr/lib/firmware/own.bin");
    return root;
  }

  @Test
  void aMergedUsrImageGetsTheKernelsModulesReadOnlyAndKeepsItsOwnFirmwareOnTop() throws Exception {
    Path root = mergedUsrRoot("debian");

    ModulesImage.Bound bound = modules.bindInto(root, KernelModules.Bootstrap, options());

    Path tree = root.resolve("usr/lib/modules/" + RELEASE);
    assertThat(tree.resolve("modules.dep")).content().contains("dummy.ko");
    assertThat(tree.resolve("kernel/drivers/dummy.ko")).exists();
    assertThatThrownBy(() -> Files.writeString(tree.resolve("x"), "x"))
        .as("the module tree is read-only in the target")
        .isInstanceOf(IOException.class);
    Path firmware = root.resolve("usr/lib/firmware");
    assertThat(firmware.resolve("shared.bin")).as("the image's file wins").hasContent("image");
    assertThat(firmware.resolve("own.bin")).hasContent("own");
    assertThat(firmware.resolve("ours.bin")).as("the bootstrap's firmware").hasContent("ours");
    assertThat(bound.mounts()).containsExactly(tree, firmware);
    assertThat(server.requests()).isEqualTo(1);

    bound.release().release();
    assertThat(Mounts.mountsBelow(root)).as("nothing stays mounted in the root").isEmpty();
    assertThat(firmware.resolve("ours.bin")).doesNotExist();
  }

  @Test
  void theImageIsFetchedOnceForEveryTargetOfABoot() throws Exception {
    modules.bindInto(mergedUsrRoot("a"), KernelModules.Bootstrap, options()).release().release();
    ModulesImage.Bound second =
        modules.bindInto(mergedUsrRoot("b"), KernelModules.Bootstrap, options());

    assertThat(roots.resolve("b/usr/lib/modules/" + RELEASE + "/modules.dep")).exists();
    assertThat(server.requests()).as("one download for two targets").isEqualTo(1);
    second.release().release();
    modules.unmount();
    // An agent restarted in the same boot finds the verified file and does not fetch it again.
    assertThat(modules(sha256).ensureMounted(options())).isFalse();
    assertThat(server.requests()).isEqualTo(1);
  }

  @Test
  void aKeptCopyAlteredOnItsDiskIsFetchedAgainBeforeItIsMounted() throws Exception {
    assertThat(modules.ensureMounted(options())).isTrue();
    modules.unmount();
    Path kept = temp.resolve("store/modules.sqfs");
    byte[] altered = Files.readAllBytes(kept);
    altered[altered.length - 1] ^= 1;
    Files.write(kept, altered);

    assertThat(modules(sha256).ensureMounted(options())).as("fetched again").isTrue();
    assertThat(server.requests()).isEqualTo(2);
    assertThat(kept).hasBinaryContent(image);
  }

  @Test
  void anAgentRestartedInTheSameBootMountsItOnceNotTwice() throws Exception {
    modules.ensureMounted(options());
    // The next agent (init restarted it) finds the mount of the one before it.
    modules(sha256).ensureMounted(options());

    assertThat(Mounts.mountsBelow(temp.resolve("mnt"))).hasSize(1);
    assertThat(temp.resolve("mnt/lib/firmware/ours.bin")).hasContent("ours");
  }

  @Test
  void anImageBuiltForTheRunningKernelKeepsItsOwnModules() throws Exception {
    Path root = mergedUsrRoot("native");
    Path own = Files.createDirectories(root.resolve("usr/lib/modules/" + RELEASE));
    Files.writeString(own.resolve("marker"), "the image's");

    ModulesImage.Bound bound = modules.bindInto(root, KernelModules.Bootstrap, options());

    assertThat(own.resolve("marker")).hasContent("the image's");
    assertThat(own.resolve("modules.dep")).doesNotExist();
    assertThat(bound.mounts()).containsExactly(root.resolve("usr/lib/firmware"));
    assertThat(bound.summary()).contains("the image's own /lib/modules/" + RELEASE);
    bound.release().release();
  }

  @Test
  void imageAndNoneBindNothingAndFetchNothing() throws Exception {
    for (KernelModules mode : List.of(KernelModules.Image, KernelModules.None)) {
      Path root = mergedUsrRoot(mode.name());
      ModulesImage.Bound bound = modules.bindInto(root, mode, options());
      assertThat(bound.mounts()).isEmpty();
      assertThat(root.resolve("usr/lib/modules")).doesNotExist();
      assertThat(Mounts.mountsBelow(root)).isEmpty();
    }
    assertThat(server.requests()).isZero();
  }

  @Test
  void aRootWithoutFirmwareOrLibGetsBothCreatedInsideIt() throws Exception {
    Path root = Files.createDirectory(roots.resolve("busybox"));

    ModulesImage.Bound bound = modules.bindInto(root, KernelModules.Bootstrap, options());

    assertThat(root.resolve("lib/modules/" + RELEASE + "/modules.dep")).exists();
    assertThat(root.resolve("lib/firmware/ours.bin")).hasContent("ours");
    bound.release().release();
  }

  @Test
  void symlinksInTheImageNeverLeadOutOfItsRoot() throws Exception {
    Path outside = Files.createDirectory(temp.resolve("outside"));
    // An absolute link, and a relative one that climbs above the root, each to a directory
    // outside the root if followed as the bootstrap sees it.
    for (String link : List.of(outside.toString(), "../../../../../../.." + outside)) {
      Path root = Files.createTempDirectory(roots, "hostile");
      Files.createSymbolicLink(root.resolve("lib"), Path.of(link));

      ModulesImage.Bound bound = modules.bindInto(root, KernelModules.Bootstrap, options());

      assertThat(outside).as("nothing was created outside the root").isEmptyDirectory();
      assertThat(bound.mounts()).allSatisfy(m -> assertThat(m).startsWith(root));
      Path inside = root.resolve(outside.toString().substring(1));
      assertThat(inside.resolve("modules/" + RELEASE + "/modules.dep")).exists();
      bound.release().release();
    }
  }

  @Test
  void aFileWhereTheTreeMustGoIsRefusedAndNothingStaysMounted() throws Exception {
    Path root = Files.createDirectory(roots.resolve("file"));
    Files.writeString(root.resolve("lib"), "not a directory");

    assertThatThrownBy(() -> modules.bindInto(root, KernelModules.Bootstrap, options()))
        .hasMessageContaining("kernel modules")
        .hasMessageContaining("/lib is not a directory");
    assertThat(Mounts.mountsBelow(root)).isEmpty();
  }

  @Test
  void bytesThatDoNotMatchTheInitramfsDigestAreNeverMounted() throws Exception {
    ModulesImage wrong = modules("0".repeat(64));

    assertThatThrownBy(() -> wrong.bindInto(mergedUsrRoot("x"), KernelModules.Bootstrap, options()))
        .hasMessageContaining("modules image")
        .hasMessageContaining(sha256);
    assertThat(temp.resolve("store/modules.sqfs")).doesNotExist();
    assertThat(temp.resolve("store/modules.sqfs.partial")).doesNotExist();
    assertThat(Mounts.mountsBelow(temp.resolve("mnt"))).isEmpty();
  }

  @Test
  void theDigestFileOfTheInitramfsIsReadStrictly() throws Exception {
    Path file = temp.resolve("modules.sha256");
    assertThat(ModulesImage.digestIn(file)).isEmpty();
    Files.writeString(file, sha256 + "\n");
    assertThat(ModulesImage.digestIn(file)).contains(sha256);
    Files.writeString(file, "garbage\n");
    assertThatThrownBy(() -> ModulesImage.digestIn(file)).hasMessageContaining("SHA-256");
  }

  private static String run(Path dir, String... command) throws Exception {
    Process p =
        new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException(String.join(" ", command) + ": " + out);
    }
    return out;
  }
}
