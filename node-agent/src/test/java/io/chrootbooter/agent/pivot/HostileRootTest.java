package io.chrootbooter.agent.pivot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.sys.LinuxSyscalls;
import io.chrootbooter.agent.unpack.Mounts;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.agent.unpack.SquashfsImage;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile roots against the real enter step: roots whose mount points are symbolic links (relative,
 * absolute, dangling, to {@code /}, chains), files, FIFOs or device nodes, and an init named
 * through {@code ..}. Each is refused with a message naming the path, leaves nothing mounted or
 * running, and creates or changes nothing outside its own root: a "bootstrap side" directory that
 * the links point into is compared byte for byte before and after. Then a good image still enters.
 *
 * <p>The first two cases are the escapes a review found in an enter step that resolved the image's
 * paths in the bootstrap's namespace: {@code /run} as an absolute symbolic link to a directory the
 * bootstrap has (and the image ships too), and a dangling absolute symbolic link at {@code
 * /.bootstrap-return}.
 */
class HostileRootTest {
  private static Path imageDir;
  private static Path image;

  private Path temp;
  private Path bootstrapSide;
  private Path cgroupParent;
  private StateFiles state;
  private BootController controller;
  private List<String> mountsBefore;

  @BeforeAll
  static void buildImage() throws Exception {
    TestTarget.assumeHost();
    imageDir = Files.createTempDirectory("cb-hostile-image");
    image =
        TestTarget.build(
            imageDir,
            Map.of(
                "cmdline",
                """
                cat /proc/cmdline > /run/cmdline-seen
                cat /proc/self/mountinfo > /run/mountinfo
                echo ok > /run/booted
                while :; do sleep 1 & wait $!; done
                """));
  }

  @AfterAll
  static void removeImage() throws IOException {
    TestTarget.deleteTree(imageDir);
  }

  @BeforeEach
  void setUp() throws IOException {
    temp = Files.createTempDirectory("cb-hostile");
    // What the links point at: directories and files "of the bootstrap", which the image
    // ships under the same names as well.
    bootstrapSide = Files.createDirectories(temp.resolve("bootstrap"));
    Files.createDirectories(bootstrapSide.resolve("victim"));
    Files.writeString(bootstrapSide.resolve("victim/config"), "bootstrap's own\n");
    mountsBefore = TestTarget.mountTable();
    cgroupParent = TestTarget.newCgroup("cb-hostile");
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
      if (cgroupParent != null) {
        TestTarget.removeCgroup(cgroupParent);
      }
      if (temp != null) {
        TestTarget.umountAllBelow(temp);
        TestTarget.deleteTree(temp);
      }
    }
  }

  /** One hostile root: how to spoil a copy of the good tree, and what the refusal says. */
  record Case(String name, Spoiler spoil, String message) {
    @Override
    public String toString() {
      return name;
    }
  }

  @FunctionalInterface
  interface Spoiler {
    void spoil(Path root, Path bootstrapSide) throws IOException;
  }

  /** Removes what the good tree has at {@code p}. */
  private static void clear(Path p) throws IOException {
    if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
      Files.delete(p);
    } else {
      Files.deleteIfExists(p);
    }
  }

  private static Spoiler linkTo(String point, String target) {
    return (root, side) -> {
      Path p = root.resolve(point);
      clear(p);
      Files.createSymbolicLink(p, Path.of(target.replace("@SIDE@", side.toString())));
    };
  }

  private static Spoiler node(String point, int mode) {
    return (root, side) -> {
      Path p = root.resolve(point);
      clear(p);
      new LinuxSyscalls().mknod(p, mode, 1, 3);
    };
  }

  static List<Case> hostileRoots() {
    List<Case> cases = new ArrayList<>();
    cases.add(
        new Case(
            "review: /run -> a bootstrap directory the image ships too",
            (root, side) -> {
              // The image has the directory as well, so a check that resolves the link inside
              // the image is satisfied; the bootstrap's shell would resolve it in its own tree.
              Files.createDirectories(root.resolve(side.resolve("victim").toString().substring(1)));
              linkTo("run", "@SIDE@/victim").spoil(root, side);
            },
            "/run is a symbolic link"));
    cases.add(
        new Case(
            "review: /.bootstrap-return dangling to a missing bootstrap path",
            linkTo(".bootstrap-return", "@SIDE@/victim/planted"),
            "/.bootstrap-return is a symbolic link"));
    for (String point : List.of("proc", "sys", "dev", "run")) {
      cases.add(
          new Case(
              "/" + point + " relative link climbing out",
              linkTo(point, "../../../../../../@SIDE@/victim"),
              "/" + point + " is a symbolic link"));
      cases.add(
          new Case(
              "/" + point + " absolute link",
              linkTo(point, "@SIDE@/victim"),
              "/" + point + " is a symbolic link"));
      cases.add(
          new Case(
              "/" + point + " dangling link",
              linkTo(point, "@SIDE@/victim/missing"),
              "/" + point + " is a symbolic link"));
      cases.add(
          new Case(
              "/" + point + " link to /", linkTo(point, "/"), "/" + point + " is a symbolic link"));
      cases.add(
          new Case(
              "/" + point + " chain of links",
              (root, side) -> {
                Files.createSymbolicLink(root.resolve("hop1"), Path.of("hop2"));
                Files.createSymbolicLink(root.resolve("hop2"), side.resolve("victim"));
                linkTo(point, "hop1").spoil(root, side);
              },
              "/" + point + " is a symbolic link"));
      cases.add(
          new Case(
              "/" + point + " a regular file",
              (root, side) -> {
                clear(root.resolve(point));
                Files.writeString(root.resolve(point), "not a directory");
              },
              "/" + point + " is not a directory"));
      cases.add(
          new Case(
              "/" + point + " a FIFO", node(point, 0010644), "/" + point + " is not a directory"));
      cases.add(
          new Case(
              "/" + point + " a character device",
              node(point, 0020644),
              "/" + point + " is not a directory"));
    }
    cases.add(
        new Case(
            "/.bootstrap-return a directory",
            (root, side) -> Files.createDirectories(root.resolve(".bootstrap-return")),
            "/.bootstrap-return is a directory, not a regular file"));
    cases.add(
        new Case(
            "/.bootstrap-return a FIFO",
            node(".bootstrap-return", 0010644),
            "/.bootstrap-return is a FIFO, not a regular file"));
    return cases;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hostileRoots")
  void aHostileRootIsRefusedHarmsNothingAndTheNextImageStillEnters(Case hostile) throws Exception {
    Path root = hostileRoot(hostile.spoil());
    Map<String, String> sideBefore = snapshot(bootstrapSide);

    assertThatThrownBy(() -> boot(root, "/sbin/init-friendly"))
        .hasMessageContaining(hostile.message());
    // The enter step's own check refuses it as well, on its own.
    assertThatThrownBy(() -> MountPoints.prepare(root))
        .isInstanceOf(MountPoints.RefusedException.class)
        .hasMessageContaining(hostile.message());

    assertRefusedCleanly(sideBefore);
    bootGoodImage();
  }

  static List<Case> swappedAfterTheCheck() {
    return List.of(
        new Case("/run", linkTo("run", "@SIDE@/victim"), "error: /run is not itself"),
        new Case("/proc", linkTo("proc", "../../../@SIDE@/victim"), "error: /proc is not itself"),
        new Case("/dev", linkTo("dev", "/"), "error: /dev is not itself"),
        new Case(
            "/.bootstrap-return",
            linkTo(".bootstrap-return", "@SIDE@/victim/planted"),
            "error: mount /.bootstrap-return"));
  }

  /**
   * The enter step checks again what it mounts on, in the target's mount namespace: a root changed
   * after the agent's check (here: never checked) is refused by the script itself, and nothing
   * outside the root is created or changed.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("swappedAfterTheCheck")
  void theEnterStepItselfMountsOnlyOnWhatItChecked(Case hostile) throws Exception {
    Path root = hostileRoot(hostile.spoil());
    Map<String, String> sideBefore = snapshot(bootstrapSide);
    Path staging = Files.createDirectories(temp.resolve("enter"));
    Path fifo = staging.resolve("fifo");
    new LinuxSyscalls().mknod(fifo, 0010600, 0, 0);
    Path helper = Files.writeString(staging.resolve("helper"), EnterScript.helperScript());
    Path cmdline = Files.writeString(staging.resolve("cmdline"), "quiet\n");

    Process p =
        new ProcessBuilder(
                EnterScript.command(
                    TestTarget.BUSYBOX,
                    root.toRealPath(),
                    "/sbin/init-friendly",
                    fifo,
                    Optional.of(helper),
                    cmdline))
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();

    assertThat(p.exitValue()).isEqualTo(EnterScript.FAILED);
    assertThat(out).startsWith(hostile.message()).doesNotContain(EnterScript.READY);
    assertThat(snapshot(bootstrapSide)).as("the bootstrap side").isEqualTo(sideBefore);
    List<String> mounts = TestTarget.mountTable();
    mounts.removeIf(m -> m.startsWith(temp.resolve("hostile-root") + " "));
    assertThat(mounts).as("mounts after the refusal").isEqualTo(mountsBefore);
  }

  @Test
  void anInitNamedThroughDotDotIsRefused() throws Exception {
    Path root = hostileRoot((r, s) -> {});
    Map<String, String> sideBefore = snapshot(bootstrapSide);

    assertThatThrownBy(() -> boot(root, "/sbin/../../../../bin/sh"))
        .hasMessageContaining("init \"/sbin/../../../../bin/sh\" has an empty, \".\" or \"..\"");
    assertThatThrownBy(() -> boot(root, "sbin/init-friendly"))
        .hasMessageContaining("is not an absolute path");

    assertRefusedCleanly(sideBefore);
    bootGoodImage();
  }

  @Test
  void theTargetReadsTheCommandLineWithoutCbWords() throws Exception {
    // The test JVM's private mount namespace gets a command line with the bootstrap's words,
    // read by the agent; the target mounts a /proc of its own and must see the filtered copy.
    Path fake = temp.resolve("fake-cmdline");
    Files.writeString(
        fake,
        "console=ttyS0 cb.operator=http://10.0.0.1:8080 cb.token=s3cr3t-t0ken quiet"
            + " \"cb.nonce=a b\" cb_x=1 root=/dev/ram0\n");
    TestTarget.run("mount", "--bind", fake.toString(), "/proc/cmdline");
    Path root = temp.resolve("good-root");
    try {
      mountGood(root);
      boot(root, "/sbin/init-cmdline");
      long pid = Long.parseLong(state.read("pid_in_target").orElseThrow());
      Path seen = Path.of("/proc", Long.toString(pid), "root/run/cmdline-seen");
      await().atMost(Duration.ofSeconds(20)).until(() -> Files.exists(seen));
      await()
          .atMost(Duration.ofSeconds(5))
          .untilAsserted(
              () ->
                  assertThat(Files.readString(seen))
                      .isEqualTo("console=ttyS0 quiet root=/dev/ram0\n"));
      assertThat(Files.readString(seen)).doesNotContain("s3cr3t").doesNotContain("cb.");
      assertThat(Files.readAllLines(Path.of("/proc", Long.toString(pid), "root/run/mountinfo")))
          .as("/proc/cmdline in the target is a read-only bind mount")
          .anyMatch(line -> line.contains(" /proc/cmdline ro,"));
      controller.trigger(ReturnTrigger.Console, "done").orElseThrow();
    } finally {
      Mounts.umount(Path.of("/proc/cmdline"));
    }
  }

  /** A copy of the good tree in a tmpfs of its own (as a tarball's root is), then spoiled. */
  private Path hostileRoot(Spoiler spoil) throws IOException, InterruptedException {
    Path root = Files.createDirectories(temp.resolve("hostile-root"));
    Mounts.mount("tmpfs", "mode=0755", "cb-hostile-root", root);
    TestTarget.run("cp", "-a", imageDir.resolve("tree") + "/.", root.toString());
    spoil.spoil(root, bootstrapSide);
    return root;
  }

  private void boot(Path root, String init) throws IOException {
    Path console = temp.resolve("console.log");
    Files.writeString(console, "", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    TargetSpec spec =
        new TargetSpec(
            root, init, "http://images.test/hostile", Signals.SIGUSR2, Duration.ZERO, console);
    controller.boot(spec, null, Duration.ZERO);
  }

  private void mountGood(Path root) throws IOException {
    Path work = Files.createDirectories(temp.resolve("good-work"));
    SquashfsImage.mount(image, work, root, new Overlay.Tmpfs());
  }

  private void assertRefusedCleanly(Map<String, String> sideBefore) throws Exception {
    assertThat(controller.session()).as("a session").isEmpty();
    assertThat(controller.phase()).isEqualTo(MachinePhase.Bootstrap);
    assertThat(snapshot(bootstrapSide))
        .as("the bootstrap side, byte for byte")
        .isEqualTo(sideBefore);
    List<String> mounts = TestTarget.mountTable();
    mounts.removeIf(m -> m.startsWith(temp.resolve("hostile-root") + " "));
    assertThat(mounts).as("mounts after the refusal").isEqualTo(mountsBefore);
    try (Stream<Path> cgroups = Files.list(cgroupParent)) {
      assertThat(cgroups.filter(Files::isDirectory)).as("cgroups left").isEmpty();
    }
    if (Files.exists(temp.resolve("staging"))) {
      try (Stream<Path> staging = Files.list(temp.resolve("staging"))) {
        assertThat(staging).as("staging left").isEmpty();
      }
    }
    assertThat(ProcessHandle.current().descendants().filter(ProcessHandle::isAlive))
        .as("processes left")
        .isEmpty();
  }

  private void bootGoodImage() throws Exception {
    Path root = temp.resolve("good-root");
    mountGood(root);
    boot(root, "/sbin/init-friendly");
    long pid = Long.parseLong(state.read("pid_in_target").orElseThrow());
    await()
        .atMost(Duration.ofSeconds(20))
        .until(() -> Files.exists(Path.of("/proc", Long.toString(pid), "root/run/booted")));
    assertThat(controller.phase()).isEqualTo(MachinePhase.Running);
    controller.trigger(ReturnTrigger.Console, "done").orElseThrow();
    assertThat(controller.session()).isEmpty();
  }

  /** Every path below {@code dir} with its type, mode and content's SHA-256 (or link target). */
  private static Map<String, String> snapshot(Path dir) throws IOException {
    Map<String, String> result = new TreeMap<>();
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.toList()) {
        String key = dir.relativize(p).toString();
        if (Files.isSymbolicLink(p)) {
          result.put(key, "link " + Files.readSymbolicLink(p));
        } else if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
          result.put(key, "dir " + Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS));
        } else {
          byte[] digest = MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p));
          result.put(
              key,
              "file "
                  + Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS)
                  + " "
                  + HexFormat.of().formatHex(digest));
        }
      }
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    return result;
  }
}
