package io.chrootbooter.agent.bootstrap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Boots the built kernel and initramfs directly in QEMU (TCG, no PXE) and waits for the
 * bootstrap-ready marker of /init and the agent's start line on the serial console. Needs the
 * bootstrap profile ({@code mvn -Pbootstrap verify}) and {@code qemu-system-x86_64}; skips
 * otherwise.
 */
class BootstrapQemuBootIT {

  private static final String READY = "chrootbooter: bootstrap ready";
  private static final Pattern AGENT_STARTED = Pattern.compile("started in ([0-9.]+)s");
  private static final Pattern RSS = Pattern.compile("agent pid \\d+ VmRSS (\\d+) kB VmHWM (\\d+)");
  // TCG is ≈ 20× slower than the host for JVM start-up; two VMs on 2 cores slower still.
  private static final Duration TIMEOUT = Duration.ofSeconds(300);

  private final StringBuffer console = new StringBuffer();
  private Process qemu;

  @AfterEach
  void killQemu() throws Exception {
    if (qemu != null) {
      qemu.destroyForcibly();
      qemu.waitFor(30, TimeUnit.SECONDS);
    }
    Path log = BootstrapImage.MODULE.resolve("target/bootstrap-boot-console.log");
    Files.writeString(log, console.toString());
    System.out.println("bootstrap boot test: serial console in " + log);
  }

  @Test
  void bootsToReadyMarkerAndAgentStart() throws Exception {
    BootstrapImage image = BootstrapImage.require();
    assumeTrue(
        onPath("qemu-system-x86_64"),
        "qemu-system-x86_64 is not on the PATH (Debian: apt-get install qemu-system-x86)");
    List<String> cmd =
        List.of(
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-cpu",
            "qemu64,+rdrand", // entropy ready at boot (docs/architecture.md §7), else ≈ 57 s
            "-smp",
            "2",
            "-m",
            "1024",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
            "-nic",
            "none",
            "-kernel",
            image.kernel().toString(),
            "-initrd",
            image.initrd().toString(),
            "-append",
            // no_timer_check: the kernel's early IO-APIC timer test counts ticks in a busy loop,
            // which a TCG guest on a loaded host can fail with a panic before anything runs.
            "console=ttyS0 quiet panic=-1 no_timer_check cb.debug"
                + " cb.image=http://203.0.113.1/image.tar.zst");
    long t0 = System.nanoTime();
    qemu = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    qemu.getOutputStream().close();
    Thread reader = new Thread(() -> copyLines(qemu, console, t0), "qemu-serial");
    reader.setDaemon(true);
    reader.start();

    try {
      await("bootstrap-ready marker")
          .atMost(TIMEOUT)
          .pollInterval(Duration.ofMillis(200))
          .until(() -> console.indexOf(READY) >= 0 || !qemu.isAlive());
      assertThat(console.toString()).as("serial console").contains(READY);
      double ready = (System.nanoTime() - t0) / 1e9;
      await("agent start line")
          .atMost(TIMEOUT)
          .pollInterval(Duration.ofMillis(200))
          .until(() -> AGENT_STARTED.matcher(console).find() || !qemu.isAlive());
      Matcher started = AGENT_STARTED.matcher(console);
      assertThat(started.find()).as("agent start line in the serial console").isTrue();
      double agent = (System.nanoTime() - t0) / 1e9;
      if (!image.initrd().equals(image.initramfs())) {
        // agent-cache.img came after the initramfs: its archive was unpacked and verified.
        assertThat(console.toString())
            .as("the launcher's verdict on agent-cache in the serial console")
            .contains("chrootbooter: agent-cache verified");
      }
      await("agent RSS line")
          .atMost(Duration.ofSeconds(60))
          .pollInterval(Duration.ofMillis(200))
          .until(() -> RSS.matcher(console).find() || !qemu.isAlive());
      Matcher rss = RSS.matcher(console);
      String rssText =
          rss.find() ? rss.group(1) + " kB (VmHWM " + rss.group(2) + " kB)" : "not reported";
      System.out.printf(
          "bootstrap boot test: %s: ready marker after %.1f s, agent started after %.1f s"
              + " (Quarkus: started in %s s), agent RSS %s; initramfs %d bytes, initrd %d"
              + " bytes%n",
          image.kernel().getFileName(),
          ready,
          agent,
          started.group(1),
          rssText,
          Files.size(image.initramfs()),
          Files.size(image.initrd()));
    } catch (AssertionError | RuntimeException e) {
      System.out.println("---- serial console ----\n" + console + "\n---- end ----");
      throw e;
    }
  }

  private static void copyLines(Process p, StringBuffer into, long t0) {
    try (BufferedReader r =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line; (line = r.readLine()) != null; ) {
        into.append(String.format("[%6.1f] %s%n", (System.nanoTime() - t0) / 1e9, line));
      }
    } catch (IOException e) {
      if (p.isAlive()) {
        throw new UncheckedIOException(e);
      }
    }
  }

  private static boolean onPath(String exe) {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (Files.isExecutable(Path.of(dir, exe))) {
        return true;
      }
    }
    return false;
  }
}
