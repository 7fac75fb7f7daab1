package io.chrootbooter.agent.pivot;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.agent.unpack.Mounts;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * A tiny busybox root the pivot tests boot, packed as squashfs: Debian's static busybox, its applet
 * links, a marker file and one init script per behaviour (friendly, deaf, fork bomb, file holder,
 * rebooter, helper caller, console wrecker).
 */
public final class TestTarget {
  public static final Path BUSYBOX = Path.of("/bin/busybox");
  public static final Path CGROUP2 = Path.of("/sys/fs/cgroup/unified");
  public static final String MARKER = "chroot-booter-test-image";

  private static final List<String> APPLETS =
      List.of(
          "sh",
          "sleep",
          "reboot",
          "poweroff",
          "echo",
          "cat",
          "mkdir",
          "mount",
          "umount",
          "unshare",
          "tr",
          "cut",
          "true",
          "ls",
          "touch",
          "stty");

  /** Init scripts by name, installed as /sbin/init-NAME. */
  static final Map<String, String> INITS =
      Map.of(
          "friendly",
          """
          trap 'echo friendly init: bye; exit 0' USR2 TERM
          echo ok > /run/booted
          while :; do sleep 1 & wait $!; done
          """,
          "deaf",
          """
          trap '' HUP INT QUIT USR1 USR2 TERM ALRM CHLD CONT TSTP TTIN TTOU PIPE
          echo ok > /run/booted
          while :; do sleep 1; done
          """,
          "forkbomb",
          """
          trap '' HUP INT QUIT USR1 USR2 TERM
          i=0
          while [ $i -lt 150 ]; do
            sh -c 'trap "" TERM HUP; while :; do sleep 1000; done' &
            i=$((i+1))
          done
          echo ok > /run/booted
          while :; do sleep 1; done
          """,
          "holder",
          """
          trap '' HUP INT QUIT USR1 USR2 TERM
          exec 7>/var/held.log
          exec 8</etc/marker
          unshare -m sh -c 'mount --bind / /mnt && exec 9</mnt/etc/marker && touch /run/held && exec sleep 100000' &
          while [ ! -e /run/held ]; do sleep 0.05; done
          echo ok > /run/booted
          while :; do sleep 1; done
          """,
          "rebooter",
          """
          echo ok > /run/booted
          while [ ! -e /run/go ]; do sleep 0.05; done
          # /run/go says reboot or poweroff. Only ever as PID 1 of a PID namespace: there
          # reboot(2) ends the namespace, not the machine.
          [ $$ = 1 ] && case $(cat /run/go) in reboot) reboot -f ;; poweroff) poweroff -f ;; esac
          """,
          "healthy",
          """
          trap 'exit 0' USR2
          /.bootstrap-return --healthy
          echo ok > /run/booted
          while :; do sleep 1 & wait $!; done
          """,
          "saboteur",
          """
          trap '' HUP INT QUIT USR1 USR2 TERM
          umount /.bootstrap-return /run/bootstrap-return.fifo
          rm -f /.bootstrap-return
          echo ok > /run/booted
          while :; do sleep 1; done
          """,
          "rawconsole",
          """
          trap '' HUP INT QUIT USR1 USR2 TERM
          # Its console (stdin) raw, without echo, but stopped by ^S; input is never read.
          stty raw -echo ixon
          echo ok > /run/booted
          while :; do sleep 1; done
          """,
          "helper",
          """
          echo ok > /run/booted
          while [ ! -e /run/go ]; do sleep 0.05; done
          /.bootstrap-return please go back
          while :; do sleep 1; done
          """);

  private TestTarget() {}

  /** Skips unless this host can run the pivot tests, saying what is missing. */
  public static void assumeHost() throws IOException {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")), "needs root: mounts and namespaces");
    Assumptions.assumeTrue(
        "private".equals(System.getenv("CB_TEST_MOUNT_NAMESPACE")),
        "the test JVM is not in a private mount namespace (needs unshare from util-linux, as root)");
    Assumptions.assumeTrue(
        Files.isExecutable(BUSYBOX), "no /bin/busybox: apt-get install -y busybox-static");
    Assumptions.assumeTrue(
        !Files.readString(BUSYBOX, StandardCharsets.ISO_8859_1).contains("/lib64/ld-linux"),
        "/bin/busybox is dynamically linked: apt-get install -y busybox-static");
    Assumptions.assumeTrue(
        Files.exists(CGROUP2.resolve("cgroup.subtree_control")),
        "no cgroup2 hierarchy at " + CGROUP2);
    Assumptions.assumeTrue(
        Stream.of(System.getenv("PATH").split(":"))
            .anyMatch(dir -> Files.isExecutable(Path.of(dir, "mksquashfs"))),
        "mksquashfs is not installed (Debian package squashfs-tools)");
  }

  /**
   * A fresh cgroup2 directory {@code PREFIX-<jvm pid>-<n>} for one test. Those of test JVMs that
   * are gone (killed before their teardown ran) are emptied and removed first, so their targets and
   * the mounts and loop devices they hold do not outlive them.
   */
  public static Path newCgroup(String prefix) throws IOException {
    try (Stream<Path> siblings = Files.list(CGROUP2)) {
      for (Path stale : siblings.filter(d -> isStale(d, prefix)).toList()) {
        removeCgroup(stale);
      }
    }
    return Files.createDirectory(
        CGROUP2.resolve(prefix + "-" + ProcessHandle.current().pid() + "-" + System.nanoTime()));
  }

  private static boolean isStale(Path dir, String prefix) {
    String name = dir.getFileName().toString();
    if (!Files.isDirectory(dir) || !name.startsWith(prefix + "-")) {
      return false;
    }
    String pid = name.substring(prefix.length() + 1).replaceFirst("-.*", "");
    return pid.matches("[0-9]+") && ProcessHandle.of(Long.parseLong(pid)).isEmpty();
  }

  /** Ends every process below {@code cgroup} and removes it; nothing to do when it is gone. */
  public static void removeCgroup(Path cgroup) throws IOException {
    if (Files.exists(cgroup)) {
      io.chrootbooter.agent.pivot.Cgroup.killChildren(cgroup, java.time.Duration.ofSeconds(10));
      io.chrootbooter.agent.pivot.Cgroup.removeTree(cgroup);
    }
  }

  /**
   * The agent's boot controller for busybox targets, as the pivot tests run it: each target's
   * cgroup below {@code cgroupParent}, its staging directory {@code temp/staging}, at most {@code
   * pidsMax} processes in it (empty: no limit), no memory limit.
   */
  public static BootController controller(
      Path cgroupParent, Path temp, StateFiles state, OptionalLong pidsMax) throws IOException {
    return new BootController(
        new PivotConfig(
            BUSYBOX, cgroupParent, temp.resolve("staging"), state, pidsMax, OptionalLong.empty()),
        new LinuxSignals(),
        Clock.systemUTC());
  }

  /**
   * A target of this image that boots its {@code /sbin/init-NAME} (an image at {@code
   * http://images.test/NAME}), powers off on SIGUSR2 and has 5 s to do so, its console {@code
   * console}.
   */
  public static TargetSpec spec(Path root, String init, Path console) {
    return new TargetSpec(
        root,
        "/sbin/init-" + init,
        "http://images.test/" + init,
        Signals.SIGUSR2,
        Duration.ofSeconds(5),
        console);
  }

  /** Builds the tree and packs it as squashfs into {@code dir}; returns the image file. */
  public static Path build(Path dir) throws IOException, InterruptedException {
    return build(dir, Map.of());
  }

  /**
   * As {@link #build(Path)}, with {@code extraInits} (script bodies by name, as {@link #INITS})
   * installed as /sbin/init-NAME as well.
   */
  public static Path build(Path dir, Map<String, String> extraInits)
      throws IOException, InterruptedException {
    Path root = Files.createDirectories(dir.resolve("tree"));
    for (String d :
        List.of("bin", "sbin", "etc", "proc", "sys", "dev", "run", "mnt", "var", "tmp")) {
      Files.createDirectories(root.resolve(d));
    }
    Files.copy(BUSYBOX, root.resolve("bin/busybox"));
    for (String applet : APPLETS) {
      Files.createSymbolicLink(root.resolve("bin").resolve(applet), Path.of("busybox"));
    }
    Files.writeString(root.resolve("etc/marker"), MARKER + "\n");
    Map<String, String> inits = new HashMap<>(INITS);
    inits.putAll(extraInits);
    for (Map.Entry<String, String> init : inits.entrySet()) {
      Path script = root.resolve("sbin/init-" + init.getKey());
      Files.writeString(script, "#!/bin/sh\n" + init.getValue());
      Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
    Path image = dir.resolve("target.squashfs");
    run("mksquashfs", root.toString(), image.toString(), "-quiet", "-noappend", "-comp", "gzip");
    return image;
  }

  /**
   * Packs the tree {@link #build} left in {@code imageDir} as {@code target.tar.zst} next to the
   * squashfs image.
   */
  public static Path packTarZst(Path imageDir) throws IOException, InterruptedException {
    Path tarZst = imageDir.resolve("target.tar.zst");
    run("tar", "--zstd", "-cf", tarZst.toString(), "-C", imageDir.resolve("tree").toString(), ".");
    return tarZst;
  }

  /** Unmounts, innermost first, whatever a test left mounted below {@code dir}. */
  public static void umountAllBelow(Path dir) throws IOException {
    List<Path> leaked = new ArrayList<>(Mounts.mountsBelow(dir));
    Collections.reverse(leaked);
    for (Path point : leaked) {
      Mounts.umount(point);
    }
  }

  /** The SHA-256 of {@code file} in hex, as sha256sum prints it. */
  public static String sha256(Path file) throws IOException, InterruptedException {
    return run("sha256sum", file.toString()).split(" ")[0];
  }

  /** Deletes {@code dir} and everything below it; nothing when it is null. */
  public static void deleteTree(Path dir) throws IOException {
    if (dir == null) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  public static String run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("%s finished", List.of(command)).isTrue();
    assertThat(p.exitValue()).as("%s exit code; output: %s", List.of(command), out).isZero();
    return out;
  }

  /** The mount table of the test JVM: mount point, type, source and options of each mount. */
  public static List<String> mountTable() throws IOException {
    List<String> result = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
      String[] f = line.split(" ");
      result.add(f[4] + " " + line.substring(line.indexOf(" - ") + 3));
    }
    return result;
  }
}
