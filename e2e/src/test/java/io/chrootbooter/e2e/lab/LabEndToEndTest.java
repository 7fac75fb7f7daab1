package io.chrootbooter.e2e.lab;

import static io.chrootbooter.e2e.lab.BootResources.BOOT_IMAGE;
import static io.chrootbooter.e2e.lab.BootResources.BOOT_TEST;
import static io.chrootbooter.e2e.lab.BootResources.MACHINE_BOOT;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.xml.parsers.DocumentBuilderFactory;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * The whole system, end to end, on one QEMU machine (TCG where KVM does not work): {@code ./lab up
 * --machines 1 --hold} starts dnsmasq, the pxe-server, the operator, the embedded Kubernetes API
 * and the machine in a network namespace of the test's own, with the Debian 12 systemd image and
 * the two busybox images; the machine PXE-boots through proxyDHCP and iPXE into the bootstrap, and
 * its agent talks to the operator. The test acts as a user does — with the fabric8 client on the
 * lab's kubeconfig, QEMU's {@code sendkey}, the console and the second serial port — and checks
 * what a user sees: MachineBoot and BootImage status, systemd's status lines, a shell's output and
 * the images' markers on the serial console. BootTests run through {@code ./lab test} and the
 * fabric8 client and are read back as JUnit XML; the remote console through the {@code kubectl
 * boot} plugin the lab installed, on a pseudo-terminal.
 *
 * <p>The steps build on each other and run in order; once one fails the rest are skipped, and the
 * MachineBoot status, events, operator log and console are printed. A step that cannot run here is
 * skipped by an assumption, which is no failure: without the Debian mirror (and no cached image)
 * the lab comes up without the Debian image, its step is skipped with the reason, and the busybox
 * steps still run, from the bootstrap instead of from Debian. The lab is taken down in {@link
 * #down()} whatever happened.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class LabEndToEndTest {
  private static final String M = "m1";
  private static final Duration BOOT = Duration.ofMinutes(5);
  private static final Duration LOAD = Duration.ofMinutes(3);
  private static final Duration RETURN = Duration.ofMinutes(2);
  private static final Duration MIRROR = Duration.ofMinutes(2);
  private static final Duration DEBIAN_BOOT = Duration.ofMinutes(6);

  /** The lab operator's cb.agent.lost-after (the default, 60 s), a heartbeat, and slack. */
  private static final Duration LOST = Duration.ofSeconds(120);

  private static final String MARKER_A = "CB-LAB-MARKER busybox-a: init running";
  private static final String MARKER_B = "CB-LAB-MARKER busybox-b: init running";

  /**
   * The line the image's chrootbooter-console-marker.service (ordered after multi-user.target)
   * writes to the console; systemd's own "Reached target" lines stop once the getty owns it.
   */
  private static final Pattern MULTI_USER =
      Pattern.compile(
          "chrootbooter-debian: multi-user.target reached \\(Debian GNU/Linux 12 \\(bookworm\\)\\)");

  /** The prompt of the root shell console-getty logs in on the image's console. */
  private static final Pattern ROOT_PROMPT = Pattern.compile("root@chrootbooter-debian:[^\\n]*# ");

  /** {@code cat /etc/os-release} of Debian 12, as it prints on the console. */
  private static final Pattern DEBIAN_OS_RELEASE =
      Pattern.compile(
          "(?m)^PRETTY_NAME=\"Debian GNU/Linux 12 \\(bookworm\\)\"\\s*$[\\s\\S]*^ID=debian\\s*$");

  /**
   * What the modules check typed on m1's console prints: a module of the running kernel loaded from
   * the modules image the agent bound in, and systemd's verdict on the whole boot.
   */
  private static final Pattern MODULES =
      Pattern.compile(
          "(?m)^modules: dummy=(\\d+) vfat=(\\d+) d0=(\\w+) system=(\\w+)(?: failed=(.*))?$");

  /**
   * What the confinement check typed on m1's console prints: whether root of the Confined Debian
   * could write {@code kernel.core_pattern} and the {@code pids.max} of its cgroup (each its own
   * value back, so that a failure harms nothing) and make a node of a virtio disk, systemd's
   * bounding set, and systemd's verdict on the boot.
   */
  private static final Pattern CONFINED =
      Pattern.compile(
          "(?m)^confined: core_pattern=(\\w+) pids_max=(\\w*) mknod=(\\w+)"
              + " capbnd=([0-9a-f]+) system=(\\w+)(?: failed=(.*))?$");

  /**
   * The capabilities a Confined target's bounding set lacks (node-agent's BoundingSet), by number
   * (linux/capability.h): SYS_MODULE, SYS_RAWIO, SYS_PTRACE, SYS_BOOT, SYS_TIME, MKNOD.
   */
  private static final long CONFINED_DROPS =
      (1L << 16) | (1L << 17) | (1L << 19) | (1L << 22) | (1L << 25) | (1L << 27);

  @TempDir static Path dir;
  static Lab lab;
  static BootResources api;
  static String failedStep;
  static boolean debianRan;
  static boolean confinedRan;

  /** What {@code uname -r} printed inside the Debian image (the BootTest's command check). */
  static String debianKernel;

  /** Where m1's serial console was when the BootTest released m1 to boot Debian again. */
  static int afterTheBootTest;

  /** m1 was returned from Debian by the hotkey in the console step, and waits in the bootstrap. */
  static boolean heldAtTheConsole;

  /** What the console step typed, and the shell printed, in that Debian boot. */
  private static final String ATTACH_MARK = "cb-e2e-attached-42";

  /** Prints what a human needs when a step fails, and makes the later steps skip. */
  @RegisterExtension
  static final TestWatcher DIAGNOSTICS =
      new TestWatcher() {
        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
          failedStep = context.getDisplayName();
          System.err.println(diagnostics());
        }
      };

  @BeforeAll
  static void up() throws Exception {
    Path repository = Path.of(System.getProperty("cb.repo.dir", "..")).toAbsolutePath().normalize();
    assumeTrue(
        Files.isExecutable(repository.resolve("lab")),
        "no lab script in " + repository + " (set -Dcb.repo.dir)");
    Optional<String> missing = LabPrerequisites.missing(repository);
    assumeTrue(missing.isEmpty(), () -> "the lab cannot run here: " + missing.orElse(""));
    lab = Lab.up(repository, dir, "--machines", "1", "--hold");
    api = new BootResources(lab.env().kubeconfig(), lab.env().get("LAB_NAMESPACE"));
  }

  @BeforeEach
  void earlierStepsPassed() {
    assumeTrue(failedStep == null, () -> "skipped: an earlier step failed (" + failedStep + ")");
  }

  @AfterAll
  static void down() throws Exception {
    try {
      if (api != null) {
        api.close();
      }
    } finally {
      if (lab != null) {
        lab.close();
      }
    }
  }

  @Test
  @Order(1)
  void powerOnBringsTheMachineToTheBootstrapWithItsAgentReporting() {
    awaitStep(
        "m1 in phase Bootstrap with agent version and IP",
        BOOT,
        () ->
            "Bootstrap".equals(api.machinePhase(M))
                && api.field(MACHINE_BOOT, M, "status", "agent", "version").isPresent()
                && lab.env()
                    .ip(M)
                    .equals(api.field(MACHINE_BOOT, M, "status", "agent", "ip").orElse(""))
                && condition("Ready", "True", "InBootstrap"));
    assertThat(lab.console(M)).contains("chrootbooter: bootstrap ready");

    // The status page is on the admin port `./lab up` printed, and not on the machine port.
    String mac = lab.env().mac(M);
    HttpResponse<String> page = get(lab.env().get("OPERATOR_ADMIN_URL") + "/");
    assertThat(page.statusCode()).isEqualTo(200);
    assertThat(page.body()).contains(mac);
    HttpResponse<String> onMachinePort = get(lab.env().get("OPERATOR_URL") + "/");
    assertThat(onMachinePort.statusCode()).isEqualTo(404);
    assertThat(onMachinePort.body()).doesNotContain(mac);
  }

  private static HttpResponse<String> get(String url) {
    try {
      return HttpClient.newHttpClient()
          .send(
              HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
              HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new UncheckedIOException("GET " + url, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  @Test
  @Order(2)
  void namingTheDebianImageBootsSystemdToMultiUser() throws Exception {
    String debian = lab.env().find("DEBIAN").orElse("");
    assumeTrue(
        "yes".equals(debian),
        () ->
            "no Debian image in this lab (DEBIAN="
                + debian
                + "): e2e/lab/images/debian.sh could not reach the Debian mirror and had no"
                + " cached image: "
                + Lab.tail(lab.log("debian-image"), 3).strip());
    int from = consoleLength();
    try (BootResources.PhaseWatch phases = api.watchPhases(M)) {
      api.mergePatch(MACHINE_BOOT, M, "{\"spec\":{\"state\":null,\"imageRef\":\"debian-12\"}}");
      awaitStep(
          "m1 Running debian-12, systemd's multi-user.target reached (the image's console line)",
          DEBIAN_BOOT,
          () ->
              running("debian-12")
                  && condition("Ready", "True", "Running")
                  && consoleMatches(MULTI_USER, from));
      assertThat(phases.phases())
          .as("m1's phases, as a watch saw them")
          .containsSubsequence("Downloading", "Running");
    }
    // console-getty logs root in on the console: the shell a user at the serial port gets.
    awaitStep(
        "a root shell prompt on m1's console", RETURN, () -> consoleMatches(ROOT_PROMPT, from));
    int typed = consoleLength();
    lab.type(M, "cat /etc/os-release");
    awaitStep(
        "Debian 12's os-release printed on m1's console",
        RETURN,
        () -> consoleMatches(DEBIAN_OS_RELEASE, typed));
    // The image ships no modules for the bootstrap's kernel: these come from the modules image.
    int probed = consoleLength();
    lab.type(
        M,
        "modprobe dummy; modprobe vfat; ip link add d0 type dummy; echo \"modules: dummy=$(lsmod"
            + " | grep -c '^dummy ') vfat=$(lsmod | grep -c '^vfat ') d0=$(ip -br link show d0"
            + " >/dev/null 2>&1 && echo yes || echo no)"
            + " system=$(systemctl is-system-running --wait)"
            + " failed=$(systemctl --failed --no-legend --plain | cut -d' ' -f1 | paste -sd,)\"");
    awaitStep(
        "modprobe dummy and vfat on m1 from the bootstrap kernel's modules",
        RETURN,
        () -> consoleMatches(MODULES, probed));
    Matcher modules = MODULES.matcher(cleanConsole(probed));
    assertThat(modules.find()).isTrue();
    assertThat(modules.group(1)).as("lsmod lists dummy").isEqualTo("1");
    assertThat(modules.group(2)).as("lsmod lists vfat (with fat, its dependency)").isEqualTo("1");
    assertThat(modules.group(3)).as("ip link add d0 type dummy").isEqualTo("yes");
    assertThat(modules.group(4))
        .as("systemctl is-system-running (failed units: %s)", modules.group(5))
        .isEqualTo("running");
    debianRan = true;
  }

  /**
   * The same Debian image, declared {@code spec.confinement: Confined} on the MachineBoot as a user
   * who does not trust it would: the agent returns from the running Debian and boots it again
   * Confined, without a reboot; systemd reaches multi-user.target, the image's
   * chrootbooter-healthy.service reports healthy, and status says Confined. Root at the console
   * then can write neither {@code kernel.core_pattern} nor its cgroup's {@code pids.max} and cannot
   * make a disk's node, and systemd's bounding set lacks the dropped capabilities. The next step's
   * return to busybox is from this Confined target.
   */
  @Test
  @Order(3)
  void declaringTheDebianMachineConfinedBootsItToMultiUserAndRefusesRoot() throws Exception {
    assumeTrue(debianRan, "no Debian run in this lab (see the Debian step): nothing to confine");
    String before = lastReturnTime();
    String bootId = api.field(MACHINE_BOOT, M, "status", "agent", "bootId").orElse("");
    int from = consoleLength();
    api.mergePatch(MACHINE_BOOT, M, "{\"spec\":{\"confinement\":\"Confined\"}}");
    awaitStep(
        "m1 Running debian-12 Confined after a return (SpecChange), multi-user.target reached and"
            + " healthy",
        DEBIAN_BOOT,
        () ->
            running("debian-12")
                && returned("SpecChange", before)
                && "Confined".equals(api.field(MACHINE_BOOT, M, "status", "confinement").orElse(""))
                && "true".equals(api.field(MACHINE_BOOT, M, "status", "healthy").orElse(""))
                && condition("Ready", "True", "Running")
                && backInTheBootstrap(from) >= 0
                && consoleMatches(MULTI_USER, backInTheBootstrap(from)));
    assertThat(api.field(MACHINE_BOOT, M, "status", "agent", "bootId").orElse(""))
        .as("the kernel's boot id: no reboot happened")
        .isEqualTo(bootId);
    // After the agent's line of the return, every prompt is the Confined Debian's.
    int confinedBoot = backInTheBootstrap(from);
    awaitStep(
        "a root shell prompt on m1's Confined console",
        RETURN,
        () -> consoleMatches(ROOT_PROMPT, confinedBoot));
    int typed = consoleLength();
    // Each write puts back the value it read: should the confinement fail, nothing changes.
    lab.type(
        M,
        "p=/proc/sys/kernel/core_pattern; c=/sys/fs/cgroup/pids.max; echo \"confined:"
            + " core_pattern=$(v=$(cat $p); (echo \"$v\" >$p) 2>/dev/null && echo written || echo"
            + " refused) pids_max=$(v=$(cat $c 2>/dev/null) || echo absent; [ -n \"$v\" ] && { (echo \"$v\""
            + " >$c) 2>/dev/null && echo written || echo refused; }) mknod=$(mknod /dev/cb-vda b"
            + " 253 0 2>/dev/null && echo made || echo refused) capbnd=$(grep CapBnd"
            + " /proc/1/status | cut -f2) system=$(systemctl is-system-running --wait)"
            + " failed=$(systemctl --failed --no-legend --plain | cut -d' ' -f1 | paste -sd,)\"");
    awaitStep(
        "the confinement check's line on m1's console",
        RETURN,
        () -> consoleMatches(CONFINED, typed));
    Matcher confined = CONFINED.matcher(cleanConsole(typed));
    assertThat(confined.find()).isTrue();
    assertThat(confined.group(1))
        .as("root writing kernel.core_pattern (read-only /proc/sys)")
        .isEqualTo("refused");
    assertThat(confined.group(2))
        .as(
            "root writing pids.max of its cgroup namespace's root (the bootstrap mounts cgroup2"
                + " with nsdelegate)")
        .isEqualTo("refused");
    assertThat(confined.group(3))
        .as("root making /dev/cb-vda, a block device node (no CAP_MKNOD)")
        .isEqualTo("refused");
    assertThat(Long.parseUnsignedLong(confined.group(4), 16) & CONFINED_DROPS)
        .as(
            "systemd's bounding set (CapBnd %s) without the dropped capabilities",
            confined.group(4))
        .isZero();
    assertThat(confined.group(5))
        .as("systemctl is-system-running (failed units: %s)", confined.group(6))
        .isEqualTo("running");
    confinedRan = true;
  }

  /**
   * {@code ./lab test examples/boottest/lab/debian.yaml}, as a user runs it: a BootTest of the
   * Debian image on m1 (healthy, no kernel panic or BUG on the console, {@code uname -r} inside the
   * image, a return by the hotkey, which the script presses once that check runs). It passes, the
   * script exits 0 and prints the JUnit summary, and the report it saved says every testcase
   * passed, with the command's answer in its {@code <system-out>}. m1 is released: it boots its own
   * spec's image again (the Confined Debian), which the next step attaches to.
   */
  @Test
  @Order(4)
  void labTestRunsABootTestOfTheDebianImageThatPasses() throws Exception {
    assumeTrue(debianRan, "no Debian run in this lab (see the Debian step): nothing to test");
    Path file = lab.repository().resolve("examples/boottest/lab/debian.yaml");
    // The BootTest's own timeout is 20 minutes; the script waits a little longer, the test more.
    Lab.Result run = lab.test(Duration.ofMinutes(25), "--timeout", "1380", file.toString());
    afterTheBootTest = consoleLength();
    System.out.println("./lab test " + file + "\n" + run.stderr() + run.stdout());
    assertThat(run.exitCode()).as("./lab test\n%s", run).isZero();
    Path report = lab.stateDir().resolve("reports/lab-debian.xml");
    assertThat(run.stdout())
        .contains("BootTest lab-debian: Passed (1 passed, 0 failed)")
        .contains("JUnit lab-debian: 4 tests, 0 failures, 0 errors, 0 skipped (")
        .contains(report.toString());
    assertThat(run.stderr()).contains("m1: pressing Ctrl+Alt+F12");

    Element suites = junit(Files.readString(report));
    assertThat(suites.getAttribute("tests")).isEqualTo("4");
    assertThat(suites.getAttribute("failures")).isEqualTo("0");
    assertThat(suites.getAttribute("errors")).isEqualTo("0");
    Map<String, Element> cases = testcases(suites);
    assertThat(cases).containsOnlyKeys("boots", "no-panic", "kernel", "hotkey");
    for (Element c : cases.values()) {
      assertThat(c.getAttribute("classname")).isEqualTo("lab-debian.m1");
      assertThat(
              c.getElementsByTagName("failure").getLength()
                  + c.getElementsByTagName("error").getLength()
                  + c.getElementsByTagName("skipped").getLength())
          .as("testcase %s passed", c.getAttribute("name"))
          .isZero();
    }
    String out = cases.get("kernel").getElementsByTagName("system-out").item(0).getTextContent();
    Matcher kernel = Pattern.compile("^stdout:\n(\\S+)\n").matcher(out);
    assertThat(kernel.find()).as("uname -r in the report's <system-out>: %s", out).isTrue();
    debianKernel = kernel.group(1);
    assertThat(debianKernel).matches("\\d+\\.\\d+\\.\\d+\\S*");
    bootstrapKernel()
        .ifPresent(k -> assertThat(debianKernel).as("the bootstrap kernel's release").isEqualTo(k));

    // The status a user reads with kubectl says the same.
    assertThat(api.field(BOOT_TEST, "lab-debian", "status", "phase")).contains("Passed");
    assertThat(api.condition(BOOT_TEST, "lab-debian", "Complete"))
        .hasValueSatisfying(c -> assertThat(c).containsEntry("status", "True"));
    assertThat(api.at(BOOT_TEST, "lab-debian", "status", "machines", 0, "checks", 2, "exitCode"))
        .contains(0);
    assertThat(api.at(BOOT_TEST, "lab-debian", "status", "machines", 0, "checks", 3, "message"))
        .hasValueSatisfying(m -> assertThat(m.toString()).contains("Hotkey"));

    // Released: m1 follows its spec again, the Confined Debian, which the spec's generation
    // boots anew (it also ends the console override the hotkey left).
    awaitStep(
        "m1 released by the test, Running debian-12 Confined and healthy again",
        DEBIAN_BOOT,
        () ->
            running("debian-12")
                && api.field(MACHINE_BOOT, M, "status", "heldBy").isEmpty()
                && "Confined".equals(api.field(MACHINE_BOOT, M, "status", "confinement").orElse(""))
                && "true".equals(api.field(MACHINE_BOOT, M, "status", "healthy").orElse(""))
                && condition("Ready", "True", "Running")
                && consoleMatches(MULTI_USER, afterTheBootTest));
  }

  /**
   * {@code kubectl boot console m1}, the plugin the lab installed, on a terminal of its own,
   * against the running Debian: the root shell is ended, console-getty shows the login prompt and
   * logs root in, {@code uname -r} answers the kernel the BootTest saw; the real serial console
   * (QEMU's socket, recorded in console.log) shows the same session. {@code ~.} detaches and leaves
   * the image running; Ctrl+Alt+F12 still returns m1 to the bootstrap, and the recorded console of
   * that boot ({@code kubectl boot logs m1}) ends with systemd's power-off messages.
   */
  @Test
  @Order(5)
  void kubectlBootConsoleLogsInOnDebianAndTheHotkeyStillReturns() throws Exception {
    assumeTrue(debianKernel != null, "no BootTest of the Debian image ran: nothing to attach to");
    assumeTrue(
        Files.isExecutable(Lab.SCRIPT),
        "no " + Lab.SCRIPT + " (util-linux) to give kubectl boot console a terminal");
    awaitStep(
        "a root shell prompt on m1's console",
        RETURN,
        () -> consoleMatches(ROOT_PROMPT, afterTheBootTest));
    int serial = consoleLength();
    try (Lab.ConsoleSession console = lab.attach(M)) {
      awaitConsole(console, "the plugin's notice", s -> s.contains("~. detaches"));
      // exit ends root's shell: console-getty starts again, shows the login prompt and logs root
      // in.
      int mark = console.screen().length();
      console.type("exit\r");
      awaitConsole(
          console,
          "the login prompt, root logged in, and a root prompt",
          s -> LOGIN_THEN_PROMPT.matcher(from(s, mark)).find());
      int typed = console.screen().length();
      console.type("uname -r\r");
      Pattern answer = Pattern.compile("uname -r\n(\\S+)\n");
      awaitConsole(console, "uname -r answered", s -> answer.matcher(from(s, typed)).find());
      Matcher kernel = answer.matcher(from(console.screen(), typed));
      assertThat(kernel.find()).isTrue();
      assertThat(kernel.group(1)).as("uname -r at the console").isEqualTo(debianKernel);
      console.type("echo cb-e2e-attached-$((6*7))\r");
      awaitConsole(
          console, "the shell's answer " + ATTACH_MARK, s -> s.contains("\n" + ATTACH_MARK + "\n"));
      // The same session on the machine's real serial console.
      awaitStep(
          "the attached session on m1's serial console (QEMU's socket)",
          RETURN,
          () -> {
            String text = cleanConsole(serial);
            return LOGIN_THEN_PROMPT.matcher(text).find()
                && text.contains("uname -r\n" + debianKernel + "\n")
                && text.contains("\n" + ATTACH_MARK + "\n");
          });
      // The last key typed was Enter: ~. starts a line, and detaches.
      console.type("~.");
      assertThat(console.awaitExit(Duration.ofSeconds(30)))
          .as("kubectl boot console's exit code\n%s", console.screen())
          .isZero();
      assertThat(console.screen()).contains("Detached from the console of m1.");
    }
    assertThat(running("debian-12")).as("m1 still runs Debian after the detach").isTrue();

    String before = lastReturnTime();
    lab.key(M, "ctrl-alt-f12");
    awaitStep(
        "m1 in ConsoleOverride after a return with trigger Hotkey",
        RETURN,
        () ->
            "ConsoleOverride".equals(api.machinePhase(M))
                && returned("Hotkey", before)
                && condition("Stalled", "True", "ConsoleOverride"));
    heldAtTheConsole = true;
    // No target runs: the bootstrap's console shell has the console. Its turn is the current boot
    // of the recorded console once the shell printed, and the Debian boot the previous; until
    // then the Debian boot is still the current one.
    String[] recorded = {""};
    awaitStep(
        "kubectl boot logs [--previous] m1: the Debian boot, to its power-off",
        RETURN,
        () -> {
          for (String[] args :
              List.of(new String[] {"logs", "--previous", M}, new String[] {"logs", M})) {
            Lab.Result logs = lab.kubectlBoot(PLUGIN, args);
            String text = Lab.clean(logs.stdout());
            if (logs.exitCode() == 0
                && text.contains(ATTACH_MARK)
                && text.contains("Powering off.")) {
              recorded[0] = text;
              return true;
            }
          }
          return false;
        });
    assertEndsWithPowerOff(recorded[0], "kubectl boot logs m1");
  }

  @Test
  @Order(6)
  void namingTheBusyboxImageReturnsFromDebianAndRunsIt() throws Exception {
    String before = lastReturnTime();
    int from = consoleLength();
    // The busybox steps run as Machine: the override goes with the Debian image.
    api.mergePatch(
        MACHINE_BOOT,
        M,
        "{\"spec\":{\"state\":null,\"imageRef\":\"busybox\",\"confinement\":null}}");
    // The agent fetches the next image while the current one still runs and reports the load's
    // phases, not Returning, while it returns and mounts: what a user can rely on is the return
    // in lastReturn and the new image running. After the console step m1 waits in the bootstrap
    // (the hotkey returned it): the spec's new generation ends the console override, and there
    // is no running image to return.
    boolean fromDebian = debianRan && !heldAtTheConsole;
    awaitStep(
        heldAtTheConsole
            ? "m1 Running busybox from the console override, which the spec change ended"
            : debianRan
                ? "m1 Running busybox after a return from Debian"
                    + (confinedRan ? " (Confined)" : "")
                    + " with trigger SpecChange"
                : "m1 Running busybox (no Debian image: from the bootstrap)",
        LOAD,
        () ->
            running("busybox")
                && consoleHas(MARKER_A, from)
                && condition("Ready", "True", "Running")
                && (!fromDebian || returned("SpecChange", before))
                && (!confinedRan
                    || "Machine"
                        .equals(api.field(MACHINE_BOOT, M, "status", "confinement").orElse(""))));
    if (fromDebian) {
      // systemd was asked to power off (SIGRTMIN+4) and did, within the grace period.
      assertThat(cleanConsole(from)).contains("Powering off.");
    }
    if (heldAtTheConsole) {
      // busybox's boot is the current one now: the Debian boot of the console step is the
      // previous, recorded to its end.
      String[] previous = {""};
      awaitStep(
          "kubectl boot logs --previous m1: the Debian boot of the console step",
          RETURN,
          () -> {
            Lab.Result logs = lab.kubectlBoot(PLUGIN, "logs", "--previous", M);
            previous[0] = logs.stdout();
            return logs.exitCode() == 0 && Lab.clean(logs.stdout()).contains(ATTACH_MARK);
          });
      assertEndsWithPowerOff(Lab.clean(previous[0]), "kubectl boot logs --previous m1");
    }
  }

  @Test
  @Order(7)
  void changingTheImageSwitchesWithoutARebootAndSaysWhy() {
    String before = lastReturnTime();
    String bootId = api.field(MACHINE_BOOT, M, "status", "agent", "bootId").orElse("");
    int from = consoleLength();
    api.mergePatch(MACHINE_BOOT, M, "{\"spec\":{\"imageRef\":\"busybox-b\"}}");
    awaitStep(
        "m1 Running busybox-b after a return with trigger SpecChange",
        LOAD,
        () -> running("busybox-b") && consoleHas(MARKER_B, from) && returned("SpecChange", before));
    assertThat(api.field(MACHINE_BOOT, M, "status", "agent", "bootId").orElse(""))
        .as("the kernel's boot id: no reboot happened")
        .isEqualTo(bootId);
    assertThat(lab.console(M).substring(from)).doesNotContain("iPXE");
  }

  @Test
  @Order(8)
  void theConsoleHotkeyWinsUntilResumeIsTyped() throws Exception {
    String before = lastReturnTime();
    int from = consoleLength();
    lab.key(M, "ctrl-alt-f12");
    awaitStep(
        "m1 in ConsoleOverride after a return with trigger Hotkey",
        RETURN,
        () ->
            "ConsoleOverride".equals(api.machinePhase(M))
                && returned("Hotkey", before)
                && condition("Stalled", "True", "ConsoleOverride"));
    resumeAtTheConsole(from);
  }

  @Test
  @Order(9)
  void theMagicStringOnTheSecondSerialPortReturns() throws Exception {
    String before = lastReturnTime();
    int from = consoleLength();
    lab.serial(M, "RETURN_TO_BOOTSTRAP");
    awaitStep(
        "m1 back in the bootstrap after a return with trigger Serial",
        RETURN,
        () -> inBootstrap() && returned("Serial", before));
    resumeAtTheConsole(from);
  }

  @Test
  @Order(10)
  void theHelperInsideTheTargetReturns() throws Exception {
    String before = lastReturnTime();
    // The busybox image's init runs /.bootstrap-return for a console line "return <reason>".
    lab.type(M, "return asked-by-the-e2e-test");
    awaitStep(
        "m1 back in the bootstrap after a return with trigger Helper",
        RETURN,
        () -> inBootstrap() && returned("Helper", before));
  }

  @Test
  @Order(11)
  void anImageWithAWrongDigestFailsAndTheMachineStaysInTheBootstrap() throws Exception {
    LabEnv env = lab.env();
    // The store is content-addressed: a declared digest it already holds is served without a
    // download. The wrong digest is therefore one of no image at all.
    String goodSha = env.get("IMAGE_BUSYBOX_SHA256");
    String wrongSha = sha256("chrootbooter e2e: not the bytes of any image".getBytes(UTF_8));
    api.createBootImage("busybox-wrong-digest", env.get("IMAGE_BUSYBOX_URL"), wrongSha, "tar.zst");
    // A source that ends early: the first half of an image, declared with the digest of the
    // whole (the busybox image and one byte more, so that the store does not hold it either).
    Path images = Path.of(env.get("IMAGES_DIR"));
    byte[] whole = Files.readAllBytes(images.resolve("busybox-a.tar.zst"));
    byte[] longer = Arrays.copyOf(whole, whole.length + 1);
    Files.write(
        images.resolve("busybox-truncated.tar.zst"), Arrays.copyOf(longer, longer.length / 2));
    api.createBootImage(
        "busybox-truncated",
        env.get("IMAGES_URL") + "/busybox-truncated.tar.zst",
        sha256(longer),
        "tar.zst");

    awaitStep(
        "BootImages busybox-wrong-digest and busybox-truncated Failed",
        MIRROR,
        () -> imageFailed("busybox-wrong-digest") && imageFailed("busybox-truncated"));
    assertThat(api.condition(BOOT_IMAGE, "busybox-wrong-digest", "Stalled"))
        .hasValueSatisfying(
            c ->
                assertThat(c)
                    .containsEntry("reason", "ChecksumMismatch")
                    .extractingByKey("message")
                    .asString()
                    .contains(wrongSha)
                    .contains(goodSha));

    // Held in the bootstrap, then told to run the image that failed: it stays there. (An
    // agent running an image keeps it while the operator says hold.)
    api.mergePatch(MACHINE_BOOT, M, "{\"spec\":{\"imageRef\":null,\"state\":\"Bootstrap\"}}");
    awaitStep(
        "m1 in phase Bootstrap, as declared",
        RETURN,
        () -> "Bootstrap".equals(api.machinePhase(M)) && condition("Ready", "True", "InBootstrap"));
    int from = consoleLength();
    api.mergePatch(
        MACHINE_BOOT, M, "{\"spec\":{\"state\":null,\"imageRef\":\"busybox-wrong-digest\"}}");
    awaitStep(
        "m1 in phase Bootstrap, Stalled with reason ImageFailed",
        RETURN,
        () ->
            "Bootstrap".equals(api.machinePhase(M)) && condition("Stalled", "True", "ImageFailed"));
    Awaitility.await("m1 stays in the bootstrap")
        .during(Duration.ofSeconds(15))
        .atMost(Duration.ofSeconds(30))
        .pollInterval(Duration.ofMillis(500))
        .until(() -> !"Running".equals(api.machinePhase(M)) && !consoleHas("CB-LAB-MARKER", from));
  }

  @Test
  @Order(12)
  void stateBootstrapSendsARunningMachineBackToTheBootstrap() {
    int from = consoleLength();
    api.mergePatch(MACHINE_BOOT, M, "{\"spec\":{\"imageRef\":\"busybox\"}}");
    awaitStep(
        "m1 Running busybox again", LOAD, () -> running("busybox") && consoleHas(MARKER_A, from));
    String before = lastReturnTime();
    api.mergePatch(MACHINE_BOOT, M, "{\"spec\":{\"imageRef\":null,\"state\":\"Bootstrap\"}}");
    awaitStep(
        "m1 in phase Bootstrap, Ready with reason InBootstrap",
        RETURN,
        () ->
            "Bootstrap".equals(api.machinePhase(M))
                && returned("SpecChange", before)
                && condition("Ready", "True", "InBootstrap"));
  }

  /**
   * A BootTest whose command fails, on the busybox image (from the bootstrap, where the previous
   * step left m1): {@code sh -c 'echo boom; exit 3'} inside the image. The test ends Failed, its
   * status has the exit code and the output, and the JUnit XML ({@code kubectl boot test-report})
   * has the failure with them; m1 goes back to its spec (the bootstrap).
   */
  @Test
  @Order(13)
  void aBootTestWhoseCommandFailsReportsTheOutputInStatusAndJunit() throws Exception {
    api.create(
        BOOT_TEST,
        """
        apiVersion: boot.chrootbooter.io/v1alpha1
        kind: BootTest
        metadata:
          name: busybox-boom
        spec:
          imageRef: busybox
          machines:
            names: [m1]
          timeout: 10m
          checks:
            - name: boots
              healthy: {timeout: 2m}
            - name: boom
              command:
                run: [sh, -c, 'echo boom; exit 3']
                timeout: 30s
        """);
    awaitStep(
        "BootTest busybox-boom Failed",
        Duration.ofMinutes(8),
        () -> "Failed".equals(api.field(BOOT_TEST, "busybox-boom", "status", "phase").orElse("")));
    assertThat(api.condition(BOOT_TEST, "busybox-boom", "Failed"))
        .hasValueSatisfying(c -> assertThat(c).containsEntry("status", "True"));
    assertThat(api.at(BOOT_TEST, "busybox-boom", "status", "machines", 0, "phase"))
        .contains("Failed");
    assertThat(api.at(BOOT_TEST, "busybox-boom", "status", "machines", 0, "checks", 0, "result"))
        .contains("Passed");
    Object[] boom = {"status", "machines", 0, "checks", 1};
    assertThat(api.at(BOOT_TEST, "busybox-boom", append(boom, "result"))).contains("Failed");
    assertThat(api.at(BOOT_TEST, "busybox-boom", append(boom, "exitCode"))).contains(3);
    assertThat(api.at(BOOT_TEST, "busybox-boom", append(boom, "message")))
        .hasValueSatisfying(
            m -> assertThat(m.toString()).contains("exit code 3, expected 0").contains("boom"));
    assertThat(api.at(BOOT_TEST, "busybox-boom", append(boom, "output")))
        .hasValueSatisfying(o -> assertThat(o.toString()).isEqualTo("stdout:\nboom\n"));

    Lab.Result report = lab.kubectlBoot(PLUGIN, "test-report", "bt/busybox-boom");
    assertThat(report.exitCode()).as("kubectl boot test-report\n%s", report).isZero();
    Element suites = junit(report.stdout());
    assertThat(suites.getAttribute("tests")).isEqualTo("2");
    assertThat(suites.getAttribute("failures")).isEqualTo("1");
    assertThat(suites.getAttribute("errors")).isEqualTo("0");
    Element failed = testcases(suites).get("boom");
    assertThat(failed).as("the testcase boom").isNotNull();
    Element failure = (Element) failed.getElementsByTagName("failure").item(0);
    assertThat(failure).as("<failure> of boom").isNotNull();
    assertThat(failure.getAttribute("message")).contains("exit code 3, expected 0");
    assertThat(failed.getElementsByTagName("system-out").item(0).getTextContent())
        .startsWith("stdout:\nboom\n");

    awaitStep(
        "m1 released by the test, back in the bootstrap as its spec says",
        RETURN,
        () ->
            "Bootstrap".equals(api.machinePhase(M))
                && api.field(MACHINE_BOOT, M, "status", "heldBy").isEmpty()
                && condition("Ready", "True", "InBootstrap"));
  }

  /**
   * A running machine that loses power says nothing: its status must say it anyway. Within the
   * operator's {@code cb.agent.lost-after} (60 s in the lab) and a heartbeat, Ready turns False
   * with reason AgentLost and a Warning Event; powered on again, the new boot id gives a
   * MachineRebooted Event and the machine runs its image again, Ready.
   */
  @Test
  @Order(14)
  void aMachinePoweredOffIsLostAndItsRebootIsSeen() throws Exception {
    int from = consoleLength();
    api.mergePatch(MACHINE_BOOT, M, "{\"spec\":{\"imageRef\":\"busybox\",\"state\":null}}");
    awaitStep(
        "m1 Running busybox before the power cut",
        LOAD,
        () -> running("busybox") && consoleHas(MARKER_A, from));
    String bootBefore = api.field(MACHINE_BOOT, M, "status", "agent", "bootId").orElseThrow();
    lab.power(M, "off");
    awaitStep(
        "m1 Ready=False with reason AgentLost, and a Warning Event",
        LOST,
        () ->
            condition("Ready", "False", "AgentLost") && api.eventReasons(M).contains("AgentLost"));
    assertThat(api.machinePhase(M))
        .as("the phase says what m1 was last doing")
        .isEqualTo("Running");

    int booted = consoleLength();
    lab.power(M, "on");
    awaitStep(
        "m1 rebooted (new boot id, MachineRebooted Event), Running busybox and Ready again",
        BOOT,
        () ->
            api.eventReasons(M).contains("MachineRebooted")
                && !bootBefore.equals(
                    api.field(MACHINE_BOOT, M, "status", "agent", "bootId").orElse(bootBefore))
                && running("busybox")
                && consoleHas(MARKER_A, booted)
                && condition("Ready", "True", "Running"));
    assertThat(api.field(MACHINE_BOOT, M, "status", "lastReboot", "previousBootId"))
        .contains(bootBefore);
  }

  // ---- steps shared by several scenarios ---------------------------------------------------

  /** How long one run of the lab's kubectl boot may take (a JVM's start on a busy host). */
  private static final Duration PLUGIN = Duration.ofMinutes(1);

  /**
   * agetty's login prompt with the image's autologin, then root's prompt: what console-getty shows
   * when it starts again.
   */
  private static final Pattern LOGIN_THEN_PROMPT =
      Pattern.compile(
          "chrootbooter-debian login: root \\(automatic login\\)[\\s\\S]*root@chrootbooter-debian:[^\\n]*# ");

  /** Waits until the terminal of {@code kubectl boot console} shows what {@code seen} accepts. */
  private static void awaitConsole(
      Lab.ConsoleSession console, String what, java.util.function.Predicate<String> seen) {
    try {
      Awaitility.await(what)
          .atMost(RETURN)
          .pollInterval(Duration.ofMillis(250))
          .until(() -> seen.test(console.screen()) || !console.alive());
    } catch (ConditionTimeoutException e) {
      throw new AssertionError(
          what
              + ": not on kubectl boot console's terminal within "
              + RETURN
              + ":\n"
              + Lab.tail(console.screen(), 40),
          e);
    }
    assertThat(seen.test(console.screen()))
        .as("%s; kubectl boot console ended:\n%s", what, console.screen())
        .isTrue();
  }

  /**
   * The last lines of a recorded Debian boot are systemd's power-off messages: the graceful return
   * asked it to power off, and it did, ending the boot.
   */
  private static void assertEndsWithPowerOff(String text, String what) {
    String[] lines = text.strip().split("\n");
    String end =
        String.join("\n", Arrays.copyOfRange(lines, Math.max(0, lines.length - 8), lines.length));
    assertThat(end).as("the end of %s", what).contains("Powering off.");
  }

  /** The release of the bootstrap's kernel, from its build-info, when it can be read here. */
  private static Optional<String> bootstrapKernel() throws IOException {
    Path bootstrap =
        Optional.ofNullable(System.getenv("LAB_BOOTSTRAP_DIR"))
            .map(Path::of)
            .orElse(lab.repository().resolve("node-agent/target/bootstrap"));
    Path info = bootstrap.resolve("build-info");
    if (!Files.isReadable(info)) {
      return Optional.empty();
    }
    return Files.readAllLines(info).stream()
        .filter(l -> l.startsWith("kernel="))
        .map(l -> l.substring("kernel=".length()))
        .findFirst();
  }

  /**
   * A JUnit report, validated against the JUnit schema CI systems accept (Jenkins xUnit's {@code
   * junit-10.xsd}, the copy the operator's tests use) and parsed: its {@code <testsuites>}, with
   * the attributes CI systems read.
   */
  private static Element junit(String xml) throws Exception {
    Path xsd =
        Path.of(System.getProperty("cb.repo.dir", ".."))
            .toAbsolutePath()
            .normalize()
            .resolve("operator/src/test/resources/junit/junit-10.xsd");
    javax.xml.validation.SchemaFactory schemas =
        javax.xml.validation.SchemaFactory.newInstance(
            javax.xml.XMLConstants.W3C_XML_SCHEMA_NS_URI);
    schemas.setProperty(javax.xml.XMLConstants.ACCESS_EXTERNAL_DTD, "");
    schemas.setProperty(javax.xml.XMLConstants.ACCESS_EXTERNAL_SCHEMA, "file");
    javax.xml.validation.Validator validator = schemas.newSchema(xsd.toFile()).newValidator();
    validator.setProperty(javax.xml.XMLConstants.ACCESS_EXTERNAL_DTD, "");
    validator.setProperty(javax.xml.XMLConstants.ACCESS_EXTERNAL_SCHEMA, "");
    validator.validate(
        new javax.xml.transform.stream.StreamSource(new ByteArrayInputStream(xml.getBytes(UTF_8))));
    DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
    factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
    Element root =
        factory
            .newDocumentBuilder()
            .parse(new ByteArrayInputStream(xml.getBytes(UTF_8)))
            .getDocumentElement();
    assertThat(root.getTagName()).isEqualTo("testsuites");
    for (String a : List.of("name", "tests", "failures", "errors", "time")) {
      assertThat(root.hasAttribute(a)).as("<testsuites %s=...>", a).isTrue();
    }
    NodeList suites = root.getElementsByTagName("testsuite");
    assertThat(suites.getLength()).as("<testsuite> elements").isPositive();
    for (int i = 0; i < suites.getLength(); i++) {
      Element suite = (Element) suites.item(i);
      for (String a : List.of("name", "tests", "failures", "errors", "skipped", "time")) {
        assertThat(suite.hasAttribute(a)).as("<testsuite %s=...>", a).isTrue();
      }
      assertThat(Integer.parseInt(suite.getAttribute("tests")))
          .isEqualTo(suite.getElementsByTagName("testcase").getLength());
    }
    return root;
  }

  /** The report's testcases by name, each with a name, classname and time. */
  private static Map<String, Element> testcases(Element suites) {
    Map<String, Element> cases = new java.util.LinkedHashMap<>();
    NodeList all = suites.getElementsByTagName("testcase");
    for (int i = 0; i < all.getLength(); i++) {
      Element c = (Element) all.item(i);
      for (String a : List.of("name", "classname", "time")) {
        assertThat(c.hasAttribute(a)).as("<testcase %s=...>", a).isTrue();
      }
      cases.put(c.getAttribute("name"), c);
    }
    return cases;
  }

  /** TEXT from FROM on (all of it when it is shorter: cleaning may join an escape late). */
  private static String from(String text, int from) {
    return text.substring(Math.min(from, text.length()));
  }

  private static Object[] append(Object[] path, Object last) {
    Object[] all = Arrays.copyOf(path, path.length + 1);
    all[path.length] = last;
    return all;
  }

  /** After a return to the console: waits for the prompt, types resume, expects busybox-b. */
  private static void resumeAtTheConsole(int from) throws Exception {
    awaitStep("the bootstrap console prompt", RETURN, () -> consoleHas("bootstrap> ", from));
    int resumed = consoleLength();
    lab.type(M, "resume");
    awaitStep(
        "m1 Running busybox-b again after resume",
        LOAD,
        () -> running("busybox-b") && consoleHas(MARKER_B, resumed));
  }

  /** m1's condition TYPE has this status and reason (the operator sets them after a report). */
  private static boolean condition(String type, String status, String reason) {
    return api.condition(MACHINE_BOOT, M, type)
        .map(c -> status.equals(c.get("status")) && reason.equals(c.get("reason")))
        .orElse(false);
  }

  private static boolean running(String image) {
    return "Running".equals(api.machinePhase(M))
        && image.equals(api.field(MACHINE_BOOT, M, "status", "currentImage").orElse(""));
  }

  /**
   * In the bootstrap after a return the spec did not ask for (docs/architecture.md §2:
   * ConsoleOverride).
   */
  private static boolean inBootstrap() {
    return Set.of("ConsoleOverride", "Bootstrap").contains(api.machinePhase(M));
  }

  /** A return with this trigger newer than the one seen before the step. */
  private static boolean returned(String trigger, String timeBefore) {
    Map<String, Object> last = api.lastReturn(M);
    return trigger.equals(last.get("trigger"))
        && !Objects.equals(Objects.toString(last.get("time"), ""), timeBefore);
  }

  private static String lastReturnTime() {
    return Objects.toString(api.lastReturn(M).get("time"), "");
  }

  private static boolean imageFailed(String name) {
    return "Failed".equals(api.field(BOOT_IMAGE, name, "status", "phase").orElse(""));
  }

  private static String sha256(byte[] bytes) throws NoSuchAlgorithmException {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }

  private static int consoleLength() {
    return lab.console(M).length();
  }

  private static boolean consoleHas(String text, int from) {
    return lab.console(M).indexOf(text, from) >= 0;
  }

  /** The console from byte FROM on, without terminal escapes and carriage returns. */
  private static String cleanConsole(int from) {
    return Lab.clean(lab.console(M).substring(from));
  }

  /** Where the agent's line of a return is on m1's console after FROM; -1 before it is. */
  private static int backInTheBootstrap(int from) {
    return lab.console(M).indexOf("chrootbooter: back in the bootstrap (", from);
  }

  private static boolean consoleMatches(Pattern pattern, int from) {
    return pattern.matcher(cleanConsole(from)).find();
  }

  private static void awaitStep(String what, Duration timeout, Callable<Boolean> condition) {
    try {
      Awaitility.await(what)
          .atMost(timeout)
          .pollInterval(Duration.ofMillis(500))
          .ignoreExceptions()
          // A failure the agent reported will not heal by waiting.
          .failFast("m1's agent reported phase Failed", () -> "Failed".equals(api.machinePhase(M)))
          .until(condition);
    } catch (ConditionTimeoutException e) {
      throw new AssertionError(
          what + ": not within " + timeout + "; m1 is " + api.machinePhase(M), e);
    }
  }

  private static String diagnostics() {
    if (lab == null) {
      return "(no lab)";
    }
    StringBuilder sb = new StringBuilder("\n===== lab diagnostics =====\n");
    try {
      sb.append(api.dump());
    } catch (RuntimeException e) {
      sb.append("(cannot read the API: ").append(e).append(")\n");
    }
    sb.append("\n===== operator log (end) =====\n").append(Lab.tail(lab.log("operator"), 150));
    sb.append("\n===== pxe-server log (end) =====\n").append(Lab.tail(lab.log("pxe"), 20));
    sb.append("\n===== m1 serial console (end) =====\n").append(Lab.tail(lab.console(M), 200));
    return sb.toString();
  }
}
