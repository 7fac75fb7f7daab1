package io.chrootbooter.agent.bootstrap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.net.httpserver.HttpServer;
import io.chrootbooter.agent.pivot.TestTarget;
import io.chrootbooter.testkit.Host;
import io.chrootbooter.testkit.Machine;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The bootstrap as a machine runs it, in QEMU (TCG): the kernel command line's {@code cb.image=}
 * loads a busybox image over the VM's own network (QEMU user networking, isolated, with one forward
 * to a loopback HTTP server), the image's init runs as PID 1 of its namespace on the serial
 * console, and each trigger brings the machine back to the bootstrap without a reboot: Ctrl+Alt+F12
 * through QEMU's monitor (real keyboard events in the guest), the magic string on the second serial
 * port, and {@code /.bootstrap-return} run inside the target. Between them the console's {@code
 * status} and {@code resume} are typed on the serial line, and {@code load} boots a tar.zst image.
 * The same machine then shows that the target's cgroup holds what the kernel command line's {@code
 * cb.pids-max=} and {@code cb.memory-max=} set: a fork bomb and a memory hog in the target, watched
 * from a root shell on the third serial port ({@code cb.debug}), leave the agent running. Last,
 * hostile images (symbolic links at {@code /run} and {@code /.bootstrap-return} into the bootstrap)
 * are refused and change nothing, and the target's {@code /proc/cmdline} has no {@code cb.*} words.
 * One boot serves the three tests (a TCG boot costs 30–60 s), in this order. Needs the bootstrap
 * profile and qemu-system-x86_64; skips otherwise.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class BootstrapTriggersIT {
  private static final Duration BOOT = Duration.ofSeconds(480);
  private static final Duration STEP = Duration.ofSeconds(120);
  private static final Pattern BACK =
      Pattern.compile("back in the bootstrap \\((\\w+)[^,]*, (\\d+) ms\\)");

  /** The limits on the kernel command line, and what the kernel shows for them. */
  private static final int PIDS_MAX = 40;

  private static final String MEMORY_MAX = "48M";
  private static final long MEMORY_MAX_BYTES = 48L << 20;
  private static final String INIT =
      """
      #!/bin/sh
      # The test image's init: says it is up, reports healthy, and runs the return helper
      # when "helper" is typed on its console (the console is the target's while it runs).
      trap 'echo "vm init: bye"; exit 0' TERM USR2
      echo "TARGET UP $(cat /etc/marker) as PID $$"
      /.bootstrap-return --healthy
      # "deaf" ignores the graceful signals from then on; "bomb" starts a fork bomb; "hog" reads
      # more than memory.max into one buffer.
      while :; do
        if read -r line; then
          case "$line" in
            helper) /.bootstrap-return asked from inside ;;
            cmdline) echo "vm init: cmdline [$(cat /proc/cmdline)]" ;;
            modules)
              bb=/bin/busybox
              if $bb modprobe dummy && $bb ip link add d0 type dummy \
                  && $bb lsmod | $bb grep -q '^dummy '; then
                echo "vm init: modules ok on $($bb uname -r), firmware: $($bb ls /lib/firmware | $bb wc -l) entries"
              else
                echo "vm init: modules failed"
              fi ;;
            deaf) trap '' TERM USR2; echo "vm init: deaf to the graceful signals" ;;
            bomb) /bin/forkbomb >/dev/null 2>&1 & echo "vm init: bomb started" ;;
            hog)
              /bin/busybox dd if=/dev/zero of=/dev/null bs=160M count=1 2>/dev/null
              echo "vm init: hog exited with status $?" ;;
          esac
        else
          sleep 1
        fi
      done
      """;

  /**
   * Every call forks two more in the background, forever; its processes are named (comm) forkbomb.
   */
  private static final String FORK_BOMB =
      """
      #!/bin/sh
      b() { b | b & }
      b
      """;

  private BootstrapImage image;

  /** Whether the bootstrap was built with a modules image, which the VM then gets. */
  private boolean hasModules;

  /** What the root shell on ttyS2 prints. */
  private final StringBuffer debug = new StringBuffer();

  private Path dir;
  private HttpServer images;
  private Machine vm;
  private SocketChannel debugShell;
  private int debugCommands;
  private String bootFigure;

  @AfterAll
  void tearDown() throws Exception {
    try {
      if (debugShell != null) {
        debugShell.close();
      }
      if (vm != null) {
        vm.close();
      }
      if (images != null) {
        images.stop(0);
      }
      Path log = BootstrapImage.MODULE.resolve("target/bootstrap-triggers-console.log");
      Files.writeString(log, vm == null ? "" : vm.console());
      Path debugLog = BootstrapImage.MODULE.resolve("target/bootstrap-triggers-ttyS2.log");
      Files.writeString(debugLog, debug.toString());
      System.out.println(
          "bootstrap triggers test: serial console in " + log + ", debug shell in " + debugLog);
    } finally {
      if (dir == null) {
        return;
      }
      try (Stream<Path> walk = Files.walk(dir)) {
        for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
  }

  /** Boots the machine with the image of {@code cb.image=}; both tests run on it. */
  @BeforeAll
  void boot() throws Exception {
    image = BootstrapImage.require();
    assumeTrue(Host.onPath("qemu-system-x86_64"), "qemu-system-x86_64 is not on the PATH");
    assumeTrue(Host.onPath("mksquashfs"), "mksquashfs is not on the PATH (squashfs-tools)");
    dir = Files.createTempDirectory("cb-triggers-it");
    TestTarget.build(dir);
    Path tree = dir.resolve("tree");
    Path bomb = tree.resolve("bin/forkbomb");
    Files.writeString(bomb, FORK_BOMB);
    Files.setPosixFilePermissions(bomb, PosixFilePermissions.fromString("rwxr-xr-x"));
    // init-vm for cb.init=; the same as /sbin/init for the console's load (which has no --init).
    for (String name : List.of("sbin/init-vm", "sbin/init")) {
      Path init = tree.resolve(name);
      Files.writeString(init, INIT);
      Files.setPosixFilePermissions(init, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
    Path squashfs = dir.resolve("vm.squashfs");
    TestTarget.run("mksquashfs", tree.toString(), squashfs.toString(), "-quiet", "-noappend");
    Path tarZst = dir.resolve("vm.tar.zst");
    TestTarget.run("tar", "--zstd", "-cf", tarZst.toString(), "-C", tree.toString(), ".");
    String sha = TestTarget.run("sha256sum", squashfs.toString()).split(" ")[0];
    // Hostile images: the escapes of an enter step that resolved the image's paths in the
    // bootstrap. /run points at a directory the bootstrap has (and the image ships too);
    // /.bootstrap-return dangles to a path the bootstrap lacks.
    Files.createDirectories(tree.resolve("etc/chrootbooter"));
    Path hostileRun = hostile(tree, "run", "/etc/chrootbooter", "hostile-run.squashfs");
    Path hostileHelper =
        hostile(tree, ".bootstrap-return", "/etc/chrootbooter-planted", "hostile-helper.squashfs");
    Map<String, Path> served = new java.util.HashMap<>();
    // The kernel's modules image, which a target gets (cb.modules=; the operator's
    // /bootstrap/modules without it): none from a bootstrap built without one.
    Path modulesImage = image.dir().resolve("modules.sqfs");
    boolean modules = Files.isRegularFile(modulesImage);
    if (modules) {
      served.put("/modules", modulesImage);
    }
    served.putAll(
        Map.of(
            "/vm.squashfs",
            squashfs,
            "/vm.tar.zst",
            tarZst,
            "/hostile-run.squashfs",
            hostileRun,
            "/hostile-helper.squashfs",
            hostileHelper));
    int port = serve(served);
    hasModules = modules;

    vm =
        Machine.builder("triggers-it", dir)
            .memory(1024)
            .serialPorts(2)
            // One busybox nc per connection: a guestfwd to a tcp: chardev connects only once.
            .userNetwork(
                "restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:"
                    + TestTarget.BUSYBOX
                    + " nc 127.0.0.1 "
                    + port)
            .kernel(
                image.kernel(),
                image.initrd(),
                // no_timer_check: see BootstrapQemuBootIT.
                "console=ttyS0 quiet panic=-1 no_timer_check cb.image=http://10.0.2.100/vm.squashfs"
                    + " cb.sha256="
                    + sha
                    + " cb.init=/sbin/init-vm cb.serial=ttyS1 cb.debug cb.pids-max="
                    + PIDS_MAX
                    + " cb.memory-max="
                    + MEMORY_MAX
                    + (modules ? " cb.modules=http://10.0.2.100/modules" : ""))
            .powerOn();
    try {
      awaitCount("TARGET UP " + TestTarget.MARKER + " as PID 1", 1, BOOT);
      bootFigure = String.format("standalone boot to the image's init %.1f s", vm.seconds());
      debugShell = vm.serial(2);
      Thread debugReader = new Thread(this::copyDebug, "qemu-ttyS2");
      debugReader.setDaemon(true);
      debugReader.start();
    } catch (AssertionError | RuntimeException e) {
      System.out.println("---- serial console ----\n" + vm.console() + "\n---- end ----");
      throw e;
    }
  }

  /**
   * Under QEMU's TCG the launcher starts the agent C1 only, from CPUID's hypervisor vendor, and the
   * agent hashes the image with libcrypto whatever the JIT.
   */
  @Test
  @Order(0)
  void theAgentRunsC1OnlyUnderTcgAndHashesWithLibcrypto() {
    assertThat(vm.console())
        .contains("chrootbooter: JIT c1 (hypervisor TCGTCGTCGTCG: QEMU TCG)")
        .contains("SHA-256 by libcrypto (libcrypto.so.3)");
  }

  @Test
  @Order(1)
  void everyTriggerReturnsToTheBootstrapWithoutAReboot() throws Exception {
    List<String> figures = new ArrayList<>(List.of(bootFigure));
    try {
      vm.sendkey("ctrl-alt-f12");
      figures.add("hotkey return " + awaitReturn("Hotkey", 1) + " ms");
      assertThat(vm.console()).contains("console override: type 'resume'");
      type("status");
      awaitCount("phase: ConsoleOverride", 1, STEP);
      awaitCount("last return: Hotkey", 1, STEP);
      type("resume");
      awaitCount("TARGET UP", 2, STEP);

      try (SocketChannel serial = vm.serial(1)) {
        serial.write(ByteBuffer.wrap("noise RETURN_TO_BOOT\n".getBytes(StandardCharsets.US_ASCII)));
        Thread.sleep(2000);
        assertThat(count("back in the bootstrap (Serial"))
            .as("a partial line does nothing")
            .isZero();
        serial.write(ByteBuffer.wrap("RETURN_TO_BOOTSTRAP\n".getBytes(StandardCharsets.US_ASCII)));
        figures.add("serial return " + awaitReturn("Serial", 1) + " ms");
      }
      type("resume");
      awaitCount("TARGET UP", 3, STEP);

      type("helper");
      figures.add("helper return " + awaitReturn("Helper", 1) + " ms");
      assertThat(vm.console()).contains("Helper: asked from inside");

      type("load http://10.0.2.100/vm.tar.zst --format tar.zst");
      awaitCount("TARGET UP", 4, STEP);
      assertThat(count("chrootbooter: bootstrap ready")).as("no reboot happened").isEqualTo(1);
      System.out.println("bootstrap triggers test: " + String.join("; ", figures));
    } catch (AssertionError | RuntimeException e) {
      System.out.println("---- serial console ----\n" + vm.console() + "\n---- end ----");
      throw e;
    }
  }

  /**
   * Runs on the machine the first test left, its fourth target running. A fork bomb started by an
   * init deaf to the graceful signals fills its cgroup's pids.max and no more, while the agent
   * keeps its PID and answers the serial trigger, which kills the bomb once the grace is over; a
   * read into a buffer larger than memory.max is OOM-killed inside the target's cgroup, the
   * target's init and the agent live on; each return leaves no cgroup and no process of the target
   * behind.
   */
  @Test
  @Order(2)
  void theTargetsCgroupHoldsAForkBombAndAnOomWhileTheAgentLives() throws Exception {
    List<String> figures = new ArrayList<>();
    try {
      assertThat(vm.console())
          .as("the agent's warnings: cb.pids-max and cb.memory-max applied to every target")
          .doesNotContain("the target runs without");
      String before = debugShell("echo \"agent $(cat /run/bootstrap/agent.pid) up\"");
      String agentPid = group(before, "agent (\\d+) up", "the agent's PID");

      type("deaf");
      awaitCount("vm init: deaf to the graceful signals", 1, STEP);
      type("bomb");
      awaitCount("vm init: bomb started", 1, STEP);
      List<long[]> samples = new ArrayList<>();
      long bombs = 0;
      String bombState = "";
      for (int i = 0; i < 5; i++) {
        bombState =
            debugShell(
                "for d in /sys/fs/cgroup/chrootbooter/*/; do echo \"pids max=$(cat $d/pids.max)"
                    + " current=$(cat $d/pids.current) bombs=$(grep -lx forkbomb"
                    + " /proc/[0-9]*/comm 2>/dev/null | wc -l)\"; done");
        Matcher m =
            Pattern.compile("pids max=(\\d+) current=(\\d+) bombs=(\\d+)").matcher(bombState);
        assertThat(m.find()).as("the target's cgroup in ttyS2 output %s", bombState).isTrue();
        assertThat(m.group(1)).as("pids.max of the target's cgroup").isEqualTo("" + PIDS_MAX);
        samples.add(new long[] {Long.parseLong(m.group(2)), Long.parseLong(m.group(3))});
        bombs = Math.max(bombs, Long.parseLong(m.group(3)));
        Thread.sleep(1000);
      }
      figures.add(
          "pids.current/bomb processes while the bomb runs: "
              + samples.stream().map(a -> a[0] + "/" + a[1]).toList());
      assertThat(samples)
          .as("pids.current never above pids.max=%d", PIDS_MAX)
          .allSatisfy(a -> assertThat(a[0]).isLessThanOrEqualTo(PIDS_MAX));
      assertThat(bombs).as("fork bomb processes seen in the guest").isPositive();
      String during =
          debugShell(
              "d=$(echo /sys/fs/cgroup/chrootbooter/*/); echo \"limit hits $(sed -n 's/^max //p'"
                  + " $d/pids.events) memory.max $(cat $d/memory.max) agent cgroup $(cut -d: -f3"
                  + " /proc/$(cat /run/bootstrap/agent.pid)/cgroup) agent $(cat"
                  + " /run/bootstrap/agent.pid) alive $(kill -0 $(cat /run/bootstrap/agent.pid) &&"
                  + " echo yes) phase $(cat /run/bootstrap/current_phase)\"");
      assertThat(Long.parseLong(group(during, "limit hits (\\d+)", "pids.events max")))
          .as("forks refused by pids.max (pids.events)")
          .isPositive();
      assertThat(group(during, "memory.max (\\d+)", "memory.max"))
          .as("memory.max of the target's cgroup (cb.memory-max=%s)", MEMORY_MAX)
          .isEqualTo("" + MEMORY_MAX_BYTES);
      assertThat(group(during, "agent cgroup (\\S+) agent", "the agent's cgroup"))
          .as("the agent's cgroup: its own (agent-cgroup), beside the target's, outside its limits")
          .isEqualTo("/cb-agent");
      assertThat(group(during, "agent (\\d+) alive", "the agent's PID"))
          .as("the agent's PID while the bomb runs")
          .isEqualTo(agentPid);
      assertThat(group(during, "alive (\\w+) phase (\\w+)", "agent alive")).isEqualTo("yes");
      assertThat(group(during, "phase (\\w+)", "phase")).isEqualTo("Running");

      try (SocketChannel serial = vm.serial(1)) {
        serial.write(ByteBuffer.wrap("RETURN_TO_BOOTSTRAP\n".getBytes(StandardCharsets.US_ASCII)));
        long forcedMs = awaitReturn("Serial", 2);
        figures.add(
            "serial return during the fork bomb, deaf init, forced after the grace "
                + forcedMs
                + " ms");
        assertThat(forcedMs)
            .as("the return: the 10 s grace, then the kill ends the bomb at once")
            .isBetween(10_000L, 15_000L);
      }
      assertThat(vm.console())
          .as("the deaf init and its bomb are killed once the grace is over")
          .contains("trigger Serial (magic string on /dev/ttyS1), forced");
      type("status");
      awaitCount("last return: Serial", 1, STEP);
      assertLeftNothing(agentPid, "after the fork bomb");

      type("resume");
      awaitCount("TARGET UP", 5, STEP);
      type("hog");
      awaitCount("vm init: hog exited with status", 1, STEP);
      assertThat(vm.console())
          .as("the hog is SIGKILLed (128 + 9) by the OOM killer, not the target's init")
          .contains("vm init: hog exited with status 137");
      String oom =
          debugShell(
              "d=$(echo /sys/fs/cgroup/chrootbooter/*/); echo \"oom kills $(sed -n 's/^oom_kill"
                  + " //p' $d/memory.events) peak $(cat $d/memory.peak 2>/dev/null || echo 0) agent"
                  + " $(cat /run/bootstrap/agent.pid) phase $(cat /run/bootstrap/current_phase)\"");
      assertThat(Long.parseLong(group(oom, "oom kills (\\d+)", "memory.events oom_kill")))
          .as("OOM kills in the target's cgroup (memory.events)")
          .isPositive();
      assertThat(Long.parseLong(group(oom, "peak (\\d+)", "memory.peak")))
          .as("memory.peak of the target's cgroup")
          .isLessThanOrEqualTo(MEMORY_MAX_BYTES);
      assertThat(group(oom, "agent (\\d+) phase", "the agent's PID"))
          .as("the agent's PID after the OOM kill")
          .isEqualTo(agentPid);
      assertThat(group(oom, "phase (\\w+)", "phase")).isEqualTo("Running");
      figures.add("memory.peak " + group(oom, "peak (\\d+)", "memory.peak") + " bytes");

      type("helper");
      awaitReturn("Helper", 2);
      type("status");
      awaitCount("phase: ConsoleOverride", 3, STEP);
      assertLeftNothing(agentPid, "after the OOM kill");
      assertThat(count("chrootbooter: bootstrap ready")).as("no reboot happened").isEqualTo(1);
      assertThat(vm.console()).doesNotContain("agent exited with status");
      System.out.println("bootstrap cgroup limits test: " + String.join("; ", figures));
    } catch (AssertionError | RuntimeException e) {
      System.out.println("---- serial console ----\n" + vm.console() + "\n---- end ----");
      System.out.println("---- ttyS2 ----\n" + debug + "\n---- end ----");
      throw e;
    }
  }

  /** The test tree with a symbolic link at {@code point}, packed as {@code name}. */
  private Path hostile(Path tree, String point, String linkTarget, String name)
      throws IOException, InterruptedException {
    Path copy = dir.resolve("tree-" + name);
    TestTarget.run("cp", "-a", tree.toString(), copy.toString());
    Path at = copy.resolve(point);
    if (Files.isDirectory(at, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      Files.delete(at);
    }
    Files.createSymbolicLink(at, Path.of(linkTarget));
    Path image = dir.resolve(name);
    TestTarget.run("mksquashfs", copy.toString(), image.toString(), "-quiet", "-noappend");
    return image;
  }

  /**
   * Runs on the machine the second test left, in the bootstrap. Hostile images loaded at the
   * console are refused naming the path, leave the bootstrap's files and mounts as they were, and
   * the good image still boots; its init reads a /proc/cmdline without the cb.* words of the
   * bootstrap's.
   */
  @Test
  @Order(3)
  void hostileImagesAreRefusedAndTheTargetSeesNoCbWords() throws Exception {
    try {
      String probe =
          "echo \"state $(ls -la /etc/chrootbooter | md5sum | cut -c1-32)"
              + " planted $(ls /etc/chrootbooter-planted 2>/dev/null | wc -l)"
              + " mounts $(wc -l < /proc/self/mountinfo) targets $(ls -d"
              + " /sys/fs/cgroup/chrootbooter/*/ 2>/dev/null | wc -l)\"";
      String before = group(debugShell(probe), "(state .*targets \\d+)", "the probe");

      type("load http://10.0.2.100/hostile-run.squashfs --format squashfs");
      awaitCount("failed: mount point /run is a symbolic link (to /etc/chrootbooter)", 1, STEP);
      type("load http://10.0.2.100/hostile-helper.squashfs --format squashfs");
      awaitCount("failed: /.bootstrap-return is a symbolic link", 1, STEP);
      String after = group(debugShell(probe), "(state .*targets \\d+)", "the probe");
      assertThat(after)
          .as("the bootstrap's /etc/chrootbooter, planted file, mounts and cgroups")
          .isEqualTo(before);
      assertThat(after).contains("planted 0");

      int up = count("TARGET UP");
      type("load http://10.0.2.100/vm.squashfs --format squashfs");
      awaitCount("TARGET UP", up + 1, STEP);
      type("cmdline");
      awaitCount("vm init: cmdline [", 1, STEP);
      String seen = group(vm.console(), "vm init: cmdline \\[([^\\]]*)\\]", "cmdline");
      assertThat(seen).contains("console=ttyS0").doesNotContain("cb.");
      String bootstrapCmdline = debugShell("cat /proc/cmdline");
      assertThat(bootstrapCmdline).as("the bootstrap's own").contains("cb.image=");
      type("helper");
      awaitReturn("Helper", 3);
      assertThat(count("chrootbooter: bootstrap ready")).as("no reboot happened").isEqualTo(1);
      System.out.println("bootstrap hostile images test: refused, target cmdline [" + seen + "]");
    } catch (AssertionError | RuntimeException e) {
      System.out.println("---- serial console ----\n" + vm.console() + "\n---- end ----");
      System.out.println("---- ttyS2 ----\n" + debug + "\n---- end ----");
      throw e;
    }
  }

  /**
   * On the same machine, back in the bootstrap: the image (which ships no modules) loads a module
   * of the running kernel with its own busybox modprobe, from the modules image the agent fetched
   * (cb.modules=), verified against the initramfs' digest and bound into the target.
   */
  @Test
  @Order(4)
  void theTargetLoadsModulesOfTheRunningKernel() throws Exception {
    assumeTrue(
        hasModules,
        "target/bootstrap has no modules.sqfs: built by a build.sh without the modules image");
    try {
      int up = count("TARGET UP");
      type("load http://10.0.2.100/vm.squashfs --format squashfs");
      awaitCount("TARGET UP", up + 1, STEP);
      type("modules");
      awaitCount("vm init: modules ", 1, STEP);
      String kernel = image.buildInfo().getProperty("kernel");
      assertThat(vm.console())
          .as("modprobe dummy, ip link add d0 type dummy, lsmod in the target")
          .contains("vm init: modules ok on " + kernel);
      String firmware = group(vm.console(), "firmware: (\\d+) entries", "firmware");
      assertThat(Integer.parseInt(firmware)).as("firmware-linux-free's files").isPositive();
      type("helper");
      awaitReturn("Helper", 4);
      System.out.println("bootstrap modules test: dummy loaded on " + kernel);
    } catch (AssertionError | RuntimeException e) {
      System.out.println("---- serial console ----\n" + vm.console() + "\n---- end ----");
      throw e;
    }
  }

  /** No target cgroup and no fork bomb process left, and the same agent process as before. */
  private void assertLeftNothing(String agentPid, String when) throws IOException {
    String after =
        debugShell(
            "echo \"left cgroups $(ls -d /sys/fs/cgroup/chrootbooter/*/ 2>/dev/null | wc -l)"
                + " bombs $(grep -lx forkbomb /proc/[0-9]*/comm 2>/dev/null | wc -l) agent"
                + " $(cat /run/bootstrap/agent.pid) restarted $(cat /run/bootstrap/agent.restarts"
                + " 2>/dev/null || echo 0) phase $(cat /run/bootstrap/current_phase)\"");
    assertThat(group(after, "left cgroups (\\d+)", "cgroups"))
        .as("target cgroups below /sys/fs/cgroup/chrootbooter %s", when)
        .isEqualTo("0");
    assertThat(group(after, "bombs (\\d+)", "bombs"))
        .as("fork bomb processes %s", when)
        .isEqualTo("0");
    assertThat(group(after, "agent (\\d+) restarted", "agent"))
        .as("the agent's PID %s", when)
        .isEqualTo(agentPid);
    assertThat(group(after, "restarted (\\d+)", "restarts")).as("agent restarts").isEqualTo("0");
    assertThat(group(after, "phase (\\w+)", "phase")).isEqualTo("ConsoleOverride");
  }

  private static String group(String text, String regex, String what) {
    Matcher m = Pattern.compile(regex).matcher(text);
    assertThat(m.find()).as("%s in the ttyS2 output %s", what, text).isTrue();
    return m.group(1);
  }

  /**
   * Runs {@code command} in the root shell on ttyS2 and returns what it printed, between two
   * markers the shell computes, so that the echo of the typed line (which the shell's line editing
   * may wrap) is never taken for output.
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

  /** Waits for the {@code n}-th return by {@code trigger}; its duration in ms. */
  private long awaitReturn(String trigger, int n) {
    awaitCount("back in the bootstrap (" + trigger, n, STEP);
    Matcher m = BACK.matcher(vm.console());
    long ms = -1;
    while (m.find()) {
      if (m.group(1).equals(trigger)) {
        ms = Long.parseLong(m.group(2));
      }
    }
    return ms;
  }

  private void awaitCount(String text, int n, Duration timeout) {
    await(text)
        .atMost(timeout)
        .pollInterval(Duration.ofMillis(200))
        .until(() -> count(text) >= n || !vm.isAlive());
    assertThat(count(text))
        .as("occurrences of \"%s\" on the serial console", text)
        .isGreaterThanOrEqualTo(n);
  }

  private int count(String text) {
    return vm.count(text);
  }

  private void type(String line) throws IOException {
    vm.type(line);
  }

  private int serve(Map<String, Path> files) throws IOException {
    Map<String, Path> byPath = new ConcurrentHashMap<>(files);
    images = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    images.createContext(
        "/",
        exchange -> {
          Path file = byPath.get(exchange.getRequestURI().getPath());
          if (file == null) {
            exchange.sendResponseHeaders(404, -1);
          } else {
            exchange.sendResponseHeaders(200, Files.size(file));
            try (OutputStream out = exchange.getResponseBody()) {
              Files.copy(file, out);
            }
          }
          exchange.close();
        });
    images.start();
    return images.getAddress().getPort();
  }
}
