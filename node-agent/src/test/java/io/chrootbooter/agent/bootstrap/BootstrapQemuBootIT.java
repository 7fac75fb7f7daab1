package io.chrootbooter.agent.bootstrap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.chrootbooter.testkit.Host;
import io.chrootbooter.testkit.Machine;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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

  private Machine vm;

  @AfterEach
  void powerOff() throws Exception {
    if (vm != null) {
      vm.close();
      Path log = BootstrapImage.MODULE.resolve("target/bootstrap-boot-console.log");
      Files.writeString(log, vm.console());
      System.out.println("bootstrap boot test: serial console in " + log);
    }
  }

  @Test
  void bootsToReadyMarkerAndAgentStart() throws Exception {
    BootstrapImage image = BootstrapImage.require();
    assumeTrue(
        Host.onPath("qemu-system-x86_64"),
        "qemu-system-x86_64 is not on the PATH (Debian: apt-get install qemu-system-x86)");
    vm =
        Machine.builder("boot-it", BootstrapImage.MODULE.resolve("target"))
            .memory(1024)
            .kernel(
                image.kernel(),
                image.initrd(),
                // no_timer_check: the kernel's early IO-APIC timer test counts ticks in a busy
                // loop, which a TCG guest on a loaded host can fail with a panic before anything
                // runs.
                "console=ttyS0 quiet panic=-1 no_timer_check cb.debug"
                    + " cb.image=http://203.0.113.1/image.tar.zst")
            .powerOn();

    try {
      await("bootstrap-ready marker")
          .atMost(TIMEOUT)
          .pollInterval(Duration.ofMillis(200))
          .until(() -> vm.console().contains(READY) || !vm.isAlive());
      assertThat(vm.console()).as("serial console").contains(READY);
      double ready = vm.seconds();
      await("agent start line")
          .atMost(TIMEOUT)
          .pollInterval(Duration.ofMillis(200))
          .until(() -> AGENT_STARTED.matcher(vm.console()).find() || !vm.isAlive());
      Matcher started = AGENT_STARTED.matcher(vm.console());
      assertThat(started.find()).as("agent start line in the serial console").isTrue();
      double agent = vm.seconds();
      if (!image.initrd().equals(image.initramfs())) {
        // agent-cache.img came after the initramfs: its archive was unpacked and verified.
        assertThat(vm.console())
            .as("the launcher's verdict on agent-cache in the serial console")
            .contains("chrootbooter: agent-cache verified");
      }
      await("agent RSS line")
          .atMost(Duration.ofSeconds(60))
          .pollInterval(Duration.ofMillis(200))
          .until(() -> RSS.matcher(vm.console()).find() || !vm.isAlive());
      Matcher rss = RSS.matcher(vm.console());
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
      System.out.println("---- serial console ----\n" + vm.console() + "\n---- end ----");
      throw e;
    }
  }
}
