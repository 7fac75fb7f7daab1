package io.chrootbooter.agent.lazy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.chrootbooter.testkit.Host;
import io.chrootbooter.testkit.Machine;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * {@link LazyRootTest} and {@link LazyLoadTest} need the nbd and dm-verity modules, which a host's
 * kernel may lack (they skip there, saying so). This runs them in a QEMU machine (the test kit's
 * {@link Machine}, TCG; q35 with the {@code max} CPU, not a lab machine) with Debian's kernel from
 * /boot: the machine sees this host's root read-only over 9p (a chroot: the same JDK, classes and
 * tools), writes only to tmpfs, and loads the modules from {@code /lib/modules/<its version>}. Not
 * part of the default test run (about 5 minutes); run it by name:
 *
 * <pre>
 * mvn -B -pl node-agent -am test-compile surefire:test -Dtest=LazyInVmIT \
 *     -Dsurefire.failIfNoSpecifiedTests=false
 * </pre>
 *
 * {@code -Dcb.lazy.cycles=N} (default 100) sets how many returns during the prefetch {@link
 * LazyLoadTest} makes, each 10–20 s under TCG; the time allowed grows with it. Needs
 * qemu-system-x86_64, busybox, cpio, a Debian kernel in /boot with its modules; skips otherwise.
 */
class LazyInVmIT {
  private static final Path MODULE = Path.of(System.getProperty("user.dir"));

  /** What the guest's init loads before it mounts the host's root, in dependency order. */
  private static final List<String> GUEST_MODULES =
      List.of(
          "drivers/virtio/virtio.ko",
          "drivers/virtio/virtio_ring.ko",
          "drivers/virtio/virtio_pci_modern_dev.ko",
          "drivers/virtio/virtio_pci_legacy_dev.ko",
          "drivers/virtio/virtio_pci.ko",
          "fs/fscache/fscache.ko",
          "fs/netfs/netfs.ko",
          "net/9p/9pnet.ko",
          "net/9p/9pnet_virtio.ko",
          "fs/9p/9p.ko");

  /** How many returns during the prefetch the guest's {@link LazyLoadTest} makes. */
  private static final int CYCLES = Integer.getInteger("cb.lazy.cycles", 100);

  @Test
  void theLazyTestsPassInAMachineWithDebiansKernel() throws Exception {
    Optional<String> missing =
        Host.missing(List.of("qemu-system-x86_64", "busybox", "cpio", "gzip"));
    assumeTrue(missing.isEmpty(), missing.orElse("") + " is not on the PATH");
    Path kernel = newestKernel();
    assumeTrue(kernel != null, "no Debian kernel (vmlinuz-*) in /boot");
    String version = kernel.getFileName().toString().substring("vmlinuz-".length());
    Path modules = Path.of("/lib/modules", version, "kernel");
    assumeTrue(Files.isDirectory(modules), "no modules for " + version + " in /lib/modules");
    Path runner = MODULE.resolve("src/test/vm/RunOne.java");

    Path work = Files.createTempDirectory("cb-lazy-vm");
    try {
      Path guestTmp = Files.createDirectories(work.resolve("guest-tmp"));
      Path initramfs = initramfs(work, modules, guestTmp, runner);
      try (Machine vm =
          Machine.builder("lazy-vm", work)
              .machine("q35", "max")
              .memory(3072)
              .smp(1)
              .kernel(kernel, initramfs, "console=ttyS0 quiet panic=-1")
              .args(
                  "-virtfs",
                  "local,path=/,mount_tag=host,security_model=passthrough,multidevs=remap,"
                      + "readonly=on")
              .powerOn()) {
        try {
          await("the guest's verdict")
              .atMost(Duration.ofMinutes(15).plusSeconds(30L * CYCLES))
              .pollInterval(Duration.ofSeconds(1))
              .until(() -> vm.console().contains("lazy-tests: exit ") || !vm.isAlive());
          assertThat(vm.console())
              .as("the guest's console")
              .contains("lazy-tests: dm devices left: ")
              .doesNotContainPattern("lazy-tests: dm devices left: \\S")
              .contains("lazy-tests: exit 0");
        } finally {
          Path log = MODULE.resolve("target/lazy-in-vm-console.log");
          Files.writeString(log, vm.console());
          System.out.println("lazy tests in a VM: console in " + log);
        }
      }
    } finally {
      try (Stream<Path> walk = Files.walk(work)) {
        for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
          Files.deleteIfExists(p);
        }
      }
    }
  }

  private static Path newestKernel() throws IOException {
    try (Stream<Path> boot = Files.list(Path.of("/boot"))) {
      return boot.filter(p -> p.getFileName().toString().startsWith("vmlinuz-"))
          .max(Comparator.comparing(p -> p.getFileName().toString()))
          .orElse(null);
    }
  }

  /**
   * busybox, the modules for virtio and 9p, and an init that mounts the host's root read-only,
   * chroots into it and runs each test class with {@code runner} (JUnit's launcher, a source file
   * the JDK compiles as it starts) on this test's own class path.
   */
  private static Path initramfs(Path work, Path modules, Path guestTmp, Path runner)
      throws IOException {
    Path ir = work.resolve("initramfs");
    for (String d : List.of("bin", "lib/modules", "proc", "sys", "dev", "host")) {
      Files.createDirectories(ir.resolve(d));
    }
    Path busybox = Path.of(Host.run("sh", "-c", "command -v busybox").strip());
    Files.copy(busybox, ir.resolve("bin/busybox"));
    for (String applet : List.of("sh", "mount", "insmod", "chroot", "poweroff")) {
      Files.createSymbolicLink(ir.resolve("bin/" + applet), Path.of("busybox"));
    }
    for (String m : GUEST_MODULES) {
      Path ko = modules.resolve(m);
      if (Files.isRegularFile(ko)) {
        Files.copy(ko, ir.resolve("lib/modules").resolve(ko.getFileName()));
      }
    }
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String classpath =
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    String javaOpts =
        "-Djava.io.tmpdir="
            + guestTmp
            + " -Dcb.lazy.cycles="
            + CYCLES
            + " -XX:-UsePerfData -XX:TieredStopAtLevel=1 -cp "
            + classpath
            + " "
            + runner;
    String init =
        """
        #!/bin/sh
        mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
        # In dependency order, whatever it is: each pass loads what the last one made loadable.
        for pass in 1 2 3 4 5 6; do
          for f in /lib/modules/*.ko; do insmod $f 2>/dev/null && rm $f; done
        done
        mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,ro host /host \
          || { echo "lazy-tests: 9p mount failed"; poweroff -f; }
        mount -t proc proc /host/proc; mount -t sysfs sysfs /host/sys
        mount -t devtmpfs dev /host/dev
        mount -t tmpfs tmp /host/run; mount -t tmpfs tmp /host@TMP@
        chroot /host /bin/sh -c 'export HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin
          ip link set lo up; modprobe squashfs; modprobe overlay; modprobe loop
          ok=0
          for t in LazyRootTest LazyLoadTest; do
            @JAVA@ @OPTS@ io.chrootbooter.agent.lazy.$t || ok=1
          done
          echo "lazy-tests: dm devices left: $(dmsetup ls | grep -v "No devices found")"
          echo "lazy-tests: exit $ok"'
        poweroff -f
        """
            .replace("@TMP@", guestTmp.toString())
            .replace("@JAVA@", java)
            .replace("@OPTS@", javaOpts);
    Path initFile = ir.resolve("init");
    Files.writeString(initFile, init);
    Files.setPosixFilePermissions(initFile, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path image = work.resolve("initramfs.gz");
    Host.run(
        "sh",
        "-c",
        "cd \"$1\" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >\"$2\"",
        "cpio",
        ir.toString(),
        image.toString());
    return image;
  }
}
