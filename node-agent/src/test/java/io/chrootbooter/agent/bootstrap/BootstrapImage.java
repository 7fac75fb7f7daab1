package io.chrootbooter.agent.bootstrap;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

/**
 * The bootstrap that {@code mvn -Pbootstrap package} builds into {@code target/bootstrap}
 * (src/bootstrap/build.sh). Tests that need it skip, with the command to run, when it is absent.
 */
record BootstrapImage(Path dir, Path kernel, Path initramfs, Path initrd, Properties buildInfo) {

  static final Path MODULE = Path.of(System.getProperty("user.dir"));

  static BootstrapImage require() throws IOException {
    Path dir = MODULE.resolve("target/bootstrap");
    Path initramfs = dir.resolve("initramfs.img");
    assumeTrue(
        Files.isRegularFile(initramfs),
        initramfs
            + " is missing: this test needs the bootstrap profile (mvn -B -pl node-agent -am"
            + " -Pbootstrap verify)");
    // The uncompressed ELF boots ≈ 6 s faster under TCG (docs/architecture.md §7); QEMU boots it
    // via PVH.
    Path vmlinux = dir.resolve("vmlinux");
    Path kernel = Files.isRegularFile(vmlinux) ? vmlinux : dir.resolve("vmlinuz");
    Properties info = new Properties();
    try (var in = Files.newInputStream(dir.resolve("build-info"))) {
      info.load(in);
    }
    return new BootstrapImage(dir, kernel, initramfs, initrd(dir, initramfs), info);
  }

  /**
   * What QEMU loads as its one initrd: the initramfs followed by agent-cache.img, as iPXE lays out
   * two initrds (each at a 4-byte boundary; build.sh ends initramfs.img at one), so the kernel
   * unpacks both and the agent finds its class archive. The initramfs alone when the build made no
   * agent-cache.img.
   */
  private static Path initrd(Path dir, Path initramfs) throws IOException {
    Path cache = dir.resolve("agent-cache.img");
    if (!Files.isRegularFile(cache)) {
      return initramfs;
    }
    Path both = MODULE.resolve("target/bootstrap-initrd.img");
    try (var out = Files.newOutputStream(both)) {
      long n = Files.copy(initramfs, out);
      out.write(new byte[(int) ((4 - n % 4) % 4)]);
      Files.copy(cache, out);
    }
    return both;
  }
}
