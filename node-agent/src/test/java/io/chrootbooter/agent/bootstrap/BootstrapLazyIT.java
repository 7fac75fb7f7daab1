package io.chrootbooter.agent.bootstrap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.chrootbooter.agent.pivot.TestTarget;
import io.chrootbooter.testkit.Host;
import io.chrootbooter.testkit.Machine;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code delivery: Lazy} on the bootstrap as a machine runs it, in QEMU (TCG): the bootstrap's own
 * kernel, modules and tools (nbd, dm_verity, nbd-client, dmsetup, losetup from the initramfs)
 * against a stand-in operator on loopback ({@link LazyOperator}, reached through QEMU's user
 * network). The machine is the test kit's {@link Machine} with the lab's QEMU machine and CPU. The
 * operator's desired state runs a squashfs image Lazy, with the dm-verity tree {@code veritysetup
 * format} made for it: the image's init runs from {@code /dev/dm-N} (its own {@code /proc/mounts}
 * shows squashfs there as {@code /}, with overlay {@code none}), the image is never downloaded
 * whole, and the operator's {@code Bootstrap} brings the machine back with no NBD client, dm
 * device, loop device or mount of the load left. A second Lazy run, with the tmpfs overlay, shows
 * the same on the next NBD and dm device. Needs the bootstrap profile, qemu-system-x86_64,
 * mksquashfs and veritysetup; skips otherwise.
 */
class BootstrapLazyIT {
  private static final Duration BOOT = Duration.ofSeconds(480);
  private static final Duration STEP = Duration.ofSeconds(180);
  private static final String MAC = "52:54:00:12:34:56";

  /** The image's init: says what its root is, then waits for the stop signal. */
  private static final String INIT =
      """
      trap 'echo "lazy init: bye"; exit 0' TERM USR2
      bb=/bin/busybox
      echo "TARGET UP $(cat /etc/marker) as PID $$"
      echo "lazy init: root [$($bb awk '$2 == "/" {print $1, $3}' /proc/mounts | $bb tail -1)]"
      echo "lazy init: blob $($bb md5sum /blob | $bb cut -c1-32)"
      while :; do sleep 1; done
      """;

  private final StringBuffer debug = new StringBuffer();
  private Path dir;
  private LazyOperator operator;
  private Machine vm;
  private SocketChannel debugShell;
  private int debugCommands;

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (debugShell != null) {
        debugShell.close();
      }
      if (vm != null) {
        vm.close();
      }
      if (operator != null) {
        operator.close();
      }
      Path log = BootstrapImage.MODULE.resolve("target/bootstrap-lazy-console.log");
      Files.writeString(log, (vm == null ? "" : vm.console()) + "\n---- ttyS2 ----\n" + debug);
      System.out.println("bootstrap lazy test: serial consoles in " + log);
    } finally {
      TestTarget.deleteTree(dir);
    }
  }

  @Test
  void aLazyImageRunsFromItsVerityDeviceAndItsReturnLeavesNoDevice() throws Exception {
    BootstrapImage image = BootstrapImage.require();
    for (String tool : List.of("qemu-system-x86_64", "mksquashfs", "veritysetup")) {
      assumeTrue(
          Host.onPath(tool),
          tool + " is not on the PATH (Debian: qemu-system-x86, squashfs-tools, cryptsetup-bin)");
    }
    dir = Files.createTempDirectory("cb-lazy-it");
    TestTarget.build(dir, Map.of("lazy", INIT));
    Path tree = dir.resolve("tree");
    byte[] blob = new byte[6 << 20];
    new Random(24).nextBytes(blob);
    Files.write(tree.resolve("blob"), blob);
    Path squashfs = dir.resolve("lazy.squashfs");
    TestTarget.run("mksquashfs", tree.toString(), squashfs.toString(), "-quiet", "-noappend");
    long size = Files.size(squashfs);
    assertThat(size % 4096).as("mksquashfs pads to 4 KiB blocks").isZero();
    String sha = TestTarget.sha256(squashfs);
    String blobMd5 = TestTarget.run("md5sum", tree.resolve("blob").toString()).substring(0, 32);
    Path hashes = dir.resolve("lazy.verity");
    String format =
        TestTarget.run(
            "veritysetup",
            "format",
            "--hash",
            "sha256",
            "--data-block-size",
            "4096",
            "--hash-block-size",
            "4096",
            squashfs.toString(),
            hashes.toString());
    String rootHash = group(format, "Root hash:\\s+([0-9a-f]{64})", "veritysetup's root hash");
    String salt = group(format, "Salt:\\s+([0-9a-f]+)", "veritysetup's salt");

    operator = new LazyOperator(MAC, squashfs, sha, hashes);
    String base = "http://10.0.2.100";
    String verity =
        String.format(
            "{\"hashTreeUrl\":\"%s/verity/%s\",\"rootHash\":\"%s\",\"salt\":\"%s\","
                + "\"dataBlocks\":%d,\"hashTreeSize\":%d}",
            base, sha, rootHash, salt, size / 4096, Files.size(hashes));
    operator.push(run(1, base + "/images/lazy.squashfs", sha, verity, "none"), 1);

    vm =
        Machine.builder("lazy-it", dir)
            .memory(1024)
            // ttyS1 unused, ttyS2 the bootstrap's root shell (cb.debug).
            .serialPorts(2)
            .mac(MAC)
            // One busybox nc per connection: a guestfwd to a tcp: chardev connects only once.
            .userNetwork(
                "restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:"
                    + TestTarget.BUSYBOX
                    + " nc 127.0.0.1 "
                    + operator.port())
            .kernel(
                image.kernel(),
                image.initrd(),
                // no_timer_check: see BootstrapQemuBootIT.
                "console=ttyS0 quiet panic=-1 no_timer_check cb.debug cb.operator="
                    + base
                    + " cb.nonce="
                    + LazyOperator.NONCE
                    + " cb.mac="
                    + MAC)
            .powerOn();
    List<String> figures = new ArrayList<>();
    try {
      awaitCount("TARGET UP " + TestTarget.MARKER + " as PID 1", 1, BOOT);
      figures.add(String.format("boot to the Lazy image's init %.1f s", vm.seconds()));
      awaitCount("lazy init: blob ", 1, STEP);
      String root = group(vm.console(), "lazy init: root \\[([^\\]]*)\\]", "the root line");
      assertThat(root)
          .as("the target's / in its /proc/mounts (overlay none)")
          .matches("/dev/dm-\\d+ squashfs");
      assertThat(vm.console())
          .as("the blob read through NBD and dm-verity")
          .contains("lazy init: blob " + blobMd5);
      assertThat(vm.console()).doesNotContain("delivery Lazy is not available");
      debugShell = vm.serial(2);
      Thread debugReader = new Thread(this::copyDebug, "qemu-ttyS2");
      debugReader.setDaemon(true);
      debugReader.start();
      String running = debugShell(STACK);
      assertThat(group(running, "squashfs \\[([^\\]]*)\\]", "squashfs mounts"))
          .as("the bootstrap's squashfs mounts while the target runs")
          .matches("/dev/dm-\\d+ /run/chrootbooter/\\S+/lower");
      assertThat(group(running, "verity (\\d+)", "verity tables"))
          .as("dm devices with a verity table")
          .isEqualTo("1");
      assertThat(group(running, "nbd (\\d+)", "nbd")).as("attached NBD devices").isEqualTo("1");
      assertThat(operator.wholeDownloads()).as("whole downloads of the image").isZero();
      assertThat(operator.treeDownloads()).as("hash tree downloads").isEqualTo(1);
      assertThat(operator.ranges()).as("range requests for the image's blocks").isPositive();

      operator.push("{\"action\":\"Bootstrap\",\"generation\":2}", 2);
      awaitCount("back in the bootstrap", 1, STEP);
      figures.add(String.format("returned after %.1f s", vm.seconds()));
      assertNothingLeft("after the first return");

      // Again with the tmpfs overlay: the next NBD and dm device, and again nothing left.
      int up = vm.count("TARGET UP");
      operator.push(run(3, base + "/images/lazy.squashfs", sha, verity, "tmpfs"), 3);
      awaitCount("TARGET UP", up + 1, STEP);
      awaitCount(" overlay]", 1, STEP);
      awaitCount("lazy init: blob " + blobMd5, 2, STEP);
      String second = debugShell(STACK);
      assertThat(group(second, "verity (\\d+)", "verity tables")).isEqualTo("1");
      assertThat(group(second, "nbd (\\d+)", "nbd")).isEqualTo("1");
      operator.push("{\"action\":\"Bootstrap\",\"generation\":4}", 4);
      awaitCount("back in the bootstrap", 2, STEP);
      assertNothingLeft("after the second return");
      assertThat(operator.wholeDownloads()).as("whole downloads of the image").isZero();
      assertThat(vm.count("chrootbooter: bootstrap ready")).as("no reboot happened").isEqualTo(1);
      System.out.println(
          "bootstrap lazy test: "
              + String.join("; ", figures)
              + "; "
              + operator.ranges()
              + " range requests for a "
              + size
              + "-byte image");
    } catch (AssertionError | RuntimeException e) {
      System.out.println("---- serial console ----\n" + vm.console() + "\n---- end ----");
      System.out.println("---- ttyS2 ----\n" + debug + "\n---- end ----");
      throw e;
    }
  }

  /**
   * What the block stack holds, seen from the bootstrap: its squashfs mounts, dm devices with a
   * verity table, NBD devices with a size, loop devices, and mounts below the agent's work dir.
   */
  private static final String STACK =
      "echo \"squashfs [$(awk '$3 == \"squashfs\" {print $1, $2}' /proc/mounts | tr '\\n' ' '"
          + " | sed 's/ $//')] verity $(dmsetup table 2>/dev/null | grep -c ' verity ')"
          + " dm $(ls /sys/block | grep -c '^dm-') nbd $(cat /sys/block/nbd*/size 2>/dev/null"
          + " | grep -vc '^0$') loops $(losetup -a | wc -l)"
          + " work-mounts $(grep -c ' /run/chrootbooter' /proc/mounts)\"";

  private void assertNothingLeft(String when) throws IOException {
    String left = debugShell(STACK);
    assertThat(group(left, "squashfs \\[([^\\]]*)\\]", "squashfs mounts"))
        .as("squashfs mounts %s", when)
        .isEmpty();
    assertThat(group(left, " dm (\\d+)", "dm devices")).as("dm devices %s", when).isEqualTo("0");
    assertThat(group(left, "nbd (\\d+)", "nbd")).as("attached NBD devices %s", when).isEqualTo("0");
    assertThat(group(left, "loops (\\d+)", "loops")).as("loop devices %s", when).isEqualTo("0");
    assertThat(group(left, "work-mounts (\\d+)", "work mounts"))
        .as("mounts below /run/chrootbooter %s", when)
        .isEqualTo("0");
  }

  private static String run(long generation, String url, String sha, String verity, String ovl) {
    return String.format(
        "{\"action\":\"Run\",\"generation\":%d,\"image\":{\"name\":\"lazy\",\"url\":\"%s\","
            + "\"sha256\":\"%s\",\"format\":\"squashfs\",\"init\":\"/sbin/init-lazy\","
            + "\"kernelModules\":\"None\",\"delivery\":\"Lazy\",\"verity\":%s},"
            + "\"overlay\":\"%s\"}",
        generation, url, sha, verity, ovl);
  }

  private static String group(String text, String regex, String what) {
    Matcher m = Pattern.compile(regex).matcher(text);
    assertThat(m.find()).as("%s in %s", what, text).isTrue();
    return m.group(1);
  }

  /**
   * Runs {@code command} in the root shell on ttyS2 and returns what it printed, between markers
   * the shell computes (the echo of the typed line is never taken for output).
   */
  private String debugShell(String command) throws IOException {
    int n = ++debugCommands;
    int from = debug.length();
    String begin = "BEGIN-" + n + "-BEGIN";
    String end = "END-" + n + "-END";
    String line = "echo BEGIN-$((" + n + "))-BEGIN; " + command + "; echo END-$((" + n + "))-END\n";
    debugShell.write(ByteBuffer.wrap(line.getBytes(StandardCharsets.US_ASCII)));
    await("ttyS2: " + command)
        .atMost(STEP)
        .pollInterval(Duration.ofMillis(200))
        .until(() -> debug.indexOf(end, from) >= 0 || !vm.isAlive());
    int at = debug.indexOf(end, from);
    assertThat(at).as("end of \"%s\" on ttyS2", command).isNotNegative();
    return debug.substring(debug.indexOf(begin, from) + begin.length(), at);
  }

  private void copyDebug() {
    ByteBuffer buffer = ByteBuffer.allocate(4096);
    try {
      while (debugShell.read(buffer.clear()) > 0) {
        debug.append(new String(buffer.array(), 0, buffer.position(), StandardCharsets.UTF_8));
      }
    } catch (IOException e) {
      // QEMU ended or the test closed the socket
    }
  }

  private void awaitCount(String text, int n, Duration timeout) {
    await(text)
        .atMost(timeout)
        .pollInterval(Duration.ofMillis(200))
        .until(() -> vm.count(text) >= n || !vm.isAlive());
    assertThat(vm.count(text))
        .as("occurrences of \"%s\" on the serial console", text)
        .isGreaterThanOrEqualTo(n);
  }
}
