package io.chrootbooter.agent.pivot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.confine.BoundingSet;
import io.chrootbooter.agent.unpack.Mounts;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.agent.unpack.SquashfsImage;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A {@link Confinement#Confined} target against the real enter step: an image whose init tries what
 * a hostile system would (load a module with insmod and finit_module, kexec_load, mknod of a disk,
 * open the bootstrap's disk, write {@code kernel.core_pattern}, {@code echo b >
 * /proc/sysrq-trigger}, delete_module, perf_event_open, bpf, open_by_handle_at, a kexec reboot) and
 * writes down what each did. Each is refused; the test JVM (the agent) keeps its capabilities and
 * has no filter; the host's {@code core_pattern} is unchanged; and the next image, Machine and
 * Confined, still boots.
 *
 * <p>The image carries Debian's {@code perl}, whose {@code syscall} builtin makes the raw system
 * calls (x86-64 numbers: the test skips elsewhere). The two attempts that would harm the host if
 * the confinement failed are guarded inside the image: {@code sysrq-trigger} is written only when
 * its mount is read-only, and the test restores {@code core_pattern} if it was changed.
 */
class ConfinedTargetTest {
  private static final Path PERL = Path.of("/usr/bin/perl");
  private static final Path CORE_PATTERN = Path.of("/proc/sys/kernel/core_pattern");

  /** Each attempt: a name and the shell that makes it, its output written to the results. */
  private static final Map<String, String> ATTEMPTS = new LinkedHashMap<>();

  static {
    ATTEMPTS.put("insmod", "busybox insmod /lib/modules/cb-test/cb-fake.ko");
    ATTEMPTS.put(
        "finit_module",
        "perl -e 'open(my $f, \"<\", \"/lib/modules/cb-test/cb-fake.ko\") or die;"
            + " my $p = \"\"; syscall(313, fileno($f), $p, 0) == -1"
            + " and print \"errno \", $!+0, \"\\n\"'");
    ATTEMPTS.put(
        "delete_module",
        "perl -e 'my $m = \"cb_no_such_module\"; syscall(176, $m, 0) == -1"
            + " and print \"errno \", $!+0, \"\\n\"'");
    // Invalid flags: even a kernel that let it through would only say EINVAL.
    ATTEMPTS.put(
        "kexec_load",
        "perl -e 'syscall(246, 0, 0, 0, 0x7fff0000) == -1 and print \"errno \", $!+0, \"\\n\"'");
    ATTEMPTS.put(
        "kexec_file_load",
        "perl -e 'syscall(320, -1, -1, 0, 0, 0) == -1 and print \"errno \", $!+0, \"\\n\"'");
    ATTEMPTS.put(
        "reboot_kexec",
        "perl -e 'syscall(169, 0xfee1dead, 672274793, 0x45584543, 0) == -1"
            + " and print \"errno \", $!+0, \"\\n\"'");
    // A software clock of its own process: allowed to root and to anyone at perf_event_paranoid 2;
    // only the filter refuses it.
    ATTEMPTS.put(
        "perf_event_open",
        "perl -e 'my $a = pack(\"LLQ\", 1, 112, 0) . \"\\0\" x 96;"
            + " syscall(298, $a, 0, -1, -1, 0) == -1 and print \"errno \", $!+0, \"\\n\"'");
    ATTEMPTS.put(
        "bpf",
        "perl -e 'my $a = \"\\0\" x 64; syscall(321, 0, $a, 64) == -1"
            + " and print \"errno \", $!+0, \"\\n\"'");
    // EBADF (9) when allowed: only the filter says EPERM.
    ATTEMPTS.put(
        "open_by_handle_at",
        "perl -e 'my $h = pack(\"LL\", 8, 1) . \"\\0\" x 8; syscall(304, -1, $h, 0) == -1"
            + " and print \"errno \", $!+0, \"\\n\"'");
    ATTEMPTS.put("mknod_sda", "busybox mknod /dev/sda b 8 0 && echo made");
    ATTEMPTS.put("mknod_disk", "busybox mknod /dev/cb-disk b $(cat /disk-dev) && echo made");
    ATTEMPTS.put("open_disk", "busybox head -c 512 /dev/$(cat /disk-name) | busybox wc -c");
    // CAP_SYS_ADMIN stays (systemd needs it): a devtmpfs of its own holds the disk's node, whose
    // opening the device filter of the target's cgroup refuses.
    ATTEMPTS.put(
        "devtmpfs_disk",
        "busybox mkdir -p /tmp/devtmpfs && busybox mount -t devtmpfs cb /tmp/devtmpfs"
            + " && busybox head -c 512 /tmp/devtmpfs/$(cat /disk-name) | busybox wc -c");
    ATTEMPTS.put(
        "core_pattern", "echo '|/bin/false-cb' > /proc/sys/kernel/core_pattern && echo written");
    ATTEMPTS.put(
        "sysrq",
        // Only ever tried on a read-only mount: on a writable one it would reboot the host.
        "if [ ! -e /proc/sysrq-trigger ]; then echo 'no sysrq-trigger';"
            + " elif busybox awk '$5 == \"/proc/sysrq-trigger\" && $6 ~ /^ro/ {f=1} END {exit !f}'"
            + " /proc/self/mountinfo; then echo b > /proc/sysrq-trigger && echo written;"
            + " else echo 'not read-only: not tried'; fi");
    ATTEMPTS.put("sys_write", "echo 1 > /sys/kernel/uevent_helper && echo written");
    ATTEMPTS.put("modules_dep", "cat /lib/modules/cb-test/modules.dep");
    ATTEMPTS.put("dev", "busybox ls /dev | busybox tr '\\n' ' '");
    ATTEMPTS.put("listed", "busybox head -c 14 /dev/$(cat /listed-name)");
    ATTEMPTS.put(
        "status",
        "busybox grep -E '^(CapBnd|Seccomp|NoNewPrivs):' /proc/self/status | busybox tr '\\t\\n' '  '");
  }

  private static final String HOSTILE_INIT;

  static {
    StringBuilder init = new StringBuilder("trap 'exit 0' USR2 TERM\n");
    for (Map.Entry<String, String> a : ATTEMPTS.entrySet()) {
      init.append("r=$( { ")
          .append(a.getValue())
          .append(" ; } 2>&1 | tr '\\n' ' ')\n")
          .append("echo \"")
          .append(a.getKey())
          .append(": $r\" >> /run/results\n");
    }
    init.append("echo ok > /run/booted\nwhile :; do sleep 1 & wait $!; done\n");
    HOSTILE_INIT = init.toString();
  }

  private static Path imageDir;
  private static Path image;
  private static String disk;
  private static String listed;
  private static final List<String> loops = new ArrayList<>();

  private Path temp;
  private Path cgroupParent;
  private StateFiles state;
  private BootController controller;
  private List<String> mountsBefore;
  private String corePatternBefore;

  @BeforeAll
  static void buildImage() throws Exception {
    TestTarget.assumeHost();
    Assumptions.assumeTrue(
        "amd64".equals(System.getProperty("os.arch")),
        "the image's raw system calls use x86-64 numbers");
    Assumptions.assumeTrue(Files.isExecutable(PERL), "no /usr/bin/perl");
    Assumptions.assumeTrue(
        Files.exists(Path.of("/usr/lib/x86_64-linux-gnu/libseccomp.so.2")),
        "no libseccomp.so.2: apt-get install -y libseccomp2");
    detachLeftLoops();
    imageDir = Files.createTempDirectory("cb-confined-image");
    // Two disks of "the bootstrap": loop devices the test can read itself, one with a marker the
    // target must not read, one the MachineBoot lists.
    disk = loopDevice("bootstrap-disk", "cb-bootstrap-disk");
    listed = loopDevice("listed-disk", "cb-listed-disk");
    image = TestTarget.build(imageDir, Map.of("hostile", HOSTILE_INIT));
    Path tree = imageDir.resolve("tree");
    // perl and what it links, from the host
    Files.createDirectories(tree.resolve("usr/bin"));
    Files.copy(PERL, tree.resolve("usr/bin/perl"));
    Files.createSymbolicLink(tree.resolve("bin/perl"), Path.of("/usr/bin/perl"));
    for (String line : TestTarget.run("ldd", PERL.toString()).split("\n")) {
      String[] f = line.strip().split("\\s+");
      String lib = f.length >= 3 && f[1].equals("=>") ? f[2] : f[0];
      if (lib.startsWith("/")) {
        Path inTree = tree.resolve(lib.substring(1));
        Files.createDirectories(inTree.getParent());
        Files.copy(Path.of(lib).toRealPath(), inTree);
      }
    }
    Files.writeString(
        tree.resolve("disk-dev"),
        Files.readString(Path.of("/sys/block", disk, "dev")).strip().replace(':', ' ') + "\n");
    Files.writeString(tree.resolve("disk-name"), disk + "\n");
    Files.writeString(tree.resolve("listed-name"), listed + "\n");
    for (String applet : List.of("busybox")) {
      assertThat(tree.resolve("bin/" + applet)).exists();
    }
    Files.delete(image);
    TestTarget.run(
        "mksquashfs", tree.toString(), image.toString(), "-quiet", "-noappend", "-comp", "gzip");
  }

  /** A loop device of 1 MiB starting with {@code marker}; its name under /dev. */
  private static String loopDevice(String name, String marker) throws Exception {
    Path file = imageDir.resolve(name + ".img");
    Files.write(file, java.util.Arrays.copyOf(marker.getBytes(StandardCharsets.US_ASCII), 1 << 20));
    String dev = TestTarget.run("losetup", "-f", "--show", file.toString()).strip();
    loops.add(dev);
    assertThat(TestTarget.run("head", "-c", String.valueOf(marker.length()), dev))
        .as("the test reads %s itself", dev)
        .isEqualTo(marker);
    return Path.of(dev).getFileName().toString();
  }

  /**
   * Detaches the loop devices of an earlier run that was killed before its {@code @AfterAll} (a JVM
   * ended with SIGKILL cleans nothing up): those whose backing file is one of this test's disks.
   */
  private static void detachLeftLoops() throws Exception {
    String list = TestTarget.run("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE");
    for (String line : list.split("\n")) {
      String[] f = line.strip().split("\\s+", 2);
      if (f.length == 2
          && f[1].matches(".*/cb-confined-image[0-9]+/(bootstrap|listed)-disk\\.img.*")) {
        TestTarget.run("losetup", "-d", f[0]);
        Path left = Path.of(f[1].replaceAll("/[^/]*$", ""));
        if (Files.isDirectory(left)) {
          TestTarget.deleteTree(left);
        }
      }
    }
  }

  @AfterAll
  static void removeImage() throws Exception {
    try {
      for (String loop : loops) {
        try {
          TestTarget.run("losetup", "-d", loop);
        } catch (Exception e) {
          System.err.println("could not detach " + loop + ": " + e.getMessage());
        }
      }
    } finally {
      loops.clear();
      TestTarget.deleteTree(imageDir);
    }
  }

  @BeforeEach
  void setUp() throws IOException {
    temp = Files.createTempDirectory("cb-confined");
    corePatternBefore = Files.readString(CORE_PATTERN);
    mountsBefore = TestTarget.mountTable();
    cgroupParent = TestTarget.newCgroup("cb-confined");
    state = new StateFiles(temp.resolve("state"));
    controller = TestTarget.controller(cgroupParent, temp, state, OptionalLong.of(512));
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (controller != null) {
        controller.close();
      }
    } finally {
      try {
        if (!Files.readString(CORE_PATTERN).equals(corePatternBefore)) {
          Files.writeString(CORE_PATTERN, corePatternBefore);
        }
      } finally {
        if (cgroupParent != null) {
          TestTarget.removeCgroup(cgroupParent);
        }
        if (temp != null) {
          TestTarget.umountAllBelow(temp);
          TestTarget.deleteTree(temp);
        }
      }
    }
  }

  @Test
  void everyAttemptOnTheMachineIsRefusedAndTheAgentAndTheNextImagesAreUnaffected()
      throws Exception {
    String agentStatusBefore = threadStatus();
    Path root = mountImage("hostile");
    Path modules = fakeModulesTree(root);

    long pid = boot(root, "/sbin/init-hostile", Confinement.Confined, List.of("/dev/" + listed));
    Map<String, String> results = results(pid);
    controller.trigger(ReturnTrigger.Console, "done").orElseThrow();
    Mounts.umount(modules);

    System.out.println("what the Confined target's attempts did: " + results);
    assertThat(results.get("insmod")).contains("Operation not permitted");
    for (String call :
        List.of(
            "finit_module",
            "delete_module",
            "kexec_load",
            "kexec_file_load",
            "reboot_kexec",
            "perf_event_open",
            "bpf",
            "open_by_handle_at")) {
      assertThat(results.get(call)).as(call).isEqualTo("errno 1");
    }
    assertThat(results.get("mknod_sda")).contains("Operation not permitted").doesNotContain("made");
    assertThat(results.get("mknod_disk"))
        .contains("Operation not permitted")
        .doesNotContain("made");
    assertThat(results.get("open_disk"))
        .as("the bootstrap's /dev/" + disk)
        .contains("No such file");
    assertThat(results.get("devtmpfs_disk"))
        .as("the disk through a devtmpfs of the target's own")
        .contains("Operation not permitted")
        .doesNotContain("512");
    assertThat(results.get("core_pattern")).contains("Read-only file system");
    if (Files.exists(Path.of("/proc/sysrq-trigger"))) {
      assertThat(results.get("sysrq")).contains("Read-only file system");
    } else {
      // A kernel without CONFIG_MAGIC_SYSRQ: nothing to refuse, nothing made in its place.
      System.out.println("this kernel has no /proc/sysrq-trigger: the sysrq attempt is moot");
      assertThat(results.get("sysrq")).isEqualTo("no sysrq-trigger");
    }
    assertThat(results.get("sys_write")).contains("Read-only file system");
    assertThat(results.get("modules_dep"))
        .as("the modules tree stays readable")
        .isEqualTo("cb-fake.ko:");
    assertThat(results.get("dev").split(" "))
        .as("the private /dev")
        .containsExactlyInAnyOrder(
            "console", "fd", "full", listed, "null", "ptmx", "pts", "random", "shm", "stderr",
            "stdin", "stdout", "tty", "urandom", "zero");
    assertThat(results.get("listed")).as("the listed disk").isEqualTo("cb-listed-disk");
    long capBnd = Long.parseUnsignedLong(field(results.get("status"), "CapBnd:"), 16);
    assertThat(capBnd & BoundingSet.mask()).as("dropped capabilities in CapBnd").isZero();
    assertThat(field(results.get("status"), "Seccomp:")).isEqualTo("2");
    assertThat(field(results.get("status"), "NoNewPrivs:"))
        .as("setuid programs of the image still work")
        .isEqualTo("0");

    assertThat(Files.readString(CORE_PATTERN)).isEqualTo(corePatternBefore);
    assertThat(threadStatus())
        .as("the agent's own capabilities and filter")
        .isEqualTo(agentStatusBefore);
    assertThat(controller.phase()).isEqualTo(MachinePhase.Bootstrap);
    List<String> mounts = TestTarget.mountTable();
    mounts.removeIf(m -> m.startsWith(temp + "/"));
    assertThat(mounts).as("mounts after the return").isEqualTo(mountsBefore);

    // The next images: a Machine target has every capability again, a Confined one boots too.
    Path next = mountImage("next");
    long machine = boot(next, "/sbin/init-friendly", Confinement.Machine, List.of());
    assertThat(field(status(machine), "CapBnd:")).isEqualTo(field(agentStatusBefore, "CapBnd:"));
    assertThat(field(status(machine), "Seccomp:")).isEqualTo("0");
    controller.trigger(ReturnTrigger.Console, "done").orElseThrow();
    long confined = boot(next, "/sbin/init-friendly", Confinement.Confined, List.of());
    assertThat(field(status(confined), "Seccomp:")).isEqualTo("2");
    controller.trigger(ReturnTrigger.Console, "done").orElseThrow();
  }

  @Test
  void aListedDeviceThatIsNoDeviceNodeOrABasicNodeThatIsAnotherDeviceFailsTheBoot()
      throws Exception {
    Path root = mountImage("refused");
    List<String> mounts = TestTarget.mountTable();

    assertThatThrownBy(
            () ->
                boot(root, "/sbin/init-friendly", Confinement.Confined, List.of("/dev/cb-absent")))
        .hasMessageContaining("device /dev/cb-absent is not a device node of the bootstrap");
    assertThatThrownBy(
            () -> boot(root, "/sbin/init-friendly", Confinement.Confined, List.of("/dev/../etc")))
        .hasMessageContaining("is not a device path below /dev/");
    // A bootstrap /dev/tty that is another device (as a Machine target before could have left
    // in the devtmpfs): bound over the real one in the test JVM's own mount namespace only.
    TestTarget.run("mount", "--bind", "/dev/full", "/dev/tty");
    try {
      assertThatThrownBy(() -> boot(root, "/sbin/init-friendly", Confinement.Confined, List.of()))
          .hasMessageContaining("/dev/tty of the bootstrap is not the character device 5:0");
    } finally {
      Mounts.umount(Path.of("/dev/tty"));
    }

    assertThat(controller.session()).isEmpty();
    assertThat(TestTarget.mountTable()).isEqualTo(mounts);
    assertThat(ProcessHandle.current().descendants().filter(ProcessHandle::isAlive)).isEmpty();
    long pid = boot(root, "/sbin/init-friendly", Confinement.Confined, List.of());
    assertThat(field(status(pid), "Seccomp:")).isEqualTo("2");
    controller.trigger(ReturnTrigger.Console, "done").orElseThrow();
  }

  /** A read-only "modules tree" with a module that is no module, bound as the agent binds one. */
  private Path fakeModulesTree(Path root) throws Exception {
    Path tree = Files.createDirectories(temp.resolve("modules"));
    Files.writeString(tree.resolve("modules.dep"), "cb-fake.ko:\n");
    Files.write(tree.resolve("cb-fake.ko"), new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1, 0});
    Path point = Files.createDirectories(root.resolve("lib/modules/cb-test"));
    TestTarget.run("mount", "--bind", tree.toString(), point.toString());
    TestTarget.run("mount", "-o", "remount,bind,ro", point.toString());
    return point;
  }

  private Path mountImage(String name) throws IOException {
    Path root = Files.createDirectories(temp.resolve(name + "-root"));
    Path work = Files.createDirectories(temp.resolve(name + "-work"));
    SquashfsImage.mount(image, work, root, new Overlay.Tmpfs());
    return root;
  }

  private long boot(Path root, String init, Confinement confinement, List<String> devices)
      throws IOException {
    Path console = temp.resolve("console.log");
    Files.writeString(console, "", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    TargetSpec spec =
        new TargetSpec(
                root, init, "http://images.test/confined", Signals.SIGUSR2, Duration.ZERO, console)
            .confined(confinement, devices);
    controller.boot(spec, null, Duration.ZERO);
    long pid = Long.parseLong(state.read("pid_in_target").orElseThrow());
    await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> Files.exists(Path.of("/proc", Long.toString(pid), "root/run/booted")));
    return pid;
  }

  private Map<String, String> results(long pid) throws IOException {
    Map<String, String> results = new LinkedHashMap<>();
    for (String line :
        Files.readAllLines(Path.of("/proc", Long.toString(pid), "root/run/results"))) {
      int colon = line.indexOf(": ");
      results.put(line.substring(0, colon), line.substring(colon + 2).strip());
    }
    assertThat(results.keySet()).as("every attempt ran").containsAll(ATTEMPTS.keySet());
    return results;
  }

  /** CapBnd, Seccomp and NoNewPrivs of the target's init. */
  private static String status(long pid) throws IOException {
    List<String> lines = new ArrayList<>();
    for (String l : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
      if (l.matches("^(CapBnd|Seccomp|NoNewPrivs):.*")) {
        lines.add(l.replace('\t', ' '));
      }
    }
    return String.join(" ", lines);
  }

  /** The same of this thread of the test JVM. */
  private static String threadStatus() throws IOException {
    return status(ProcessHandle.current().pid());
  }

  private static String field(String status, String name) {
    String[] f = status.strip().split("\\s+");
    for (int i = 0; i + 1 < f.length; i++) {
      if (f[i].equals(name)) {
        return f[i + 1];
      }
    }
    throw new AssertionError(name + " not in " + status);
  }
}
