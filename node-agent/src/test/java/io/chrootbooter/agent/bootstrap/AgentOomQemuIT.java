package io.chrootbooter.agent.bootstrap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.chrootbooter.testkit.Host;
import io.chrootbooter.testkit.Machine;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real out-of-memory in a target, on the bootstrap's kernel in the test kit's {@link Machine}
 * (the build host's cgroup2 may have no memory controller, and an OOM there would hit the host): a
 * tiny initramfs of this test (busybox, {@code src/bootstrap/agent-cgroup} and an /init script)
 * mounts cgroup2 with every controller as the bootstrap's init does and runs two rounds in 320 MiB
 * of RAM:
 *
 * <ol>
 *   <li><b>control</b>: an "agent" holding 150 MiB, started without agent-cgroup, and a "target" in
 *       a cgroup below {@code chrootbooter} that allocates 1 MiB after 1 MiB until the memory is
 *       gone. The target never gets as large as the agent, so the kernel's OOM killer, choosing the
 *       largest process, kills the agent: what the bootstrap must prevent.
 *   <li><b>shielded</b>: the same, with the agent's launcher running agent-cgroup on itself first,
 *       and the target started by that launcher the way the enter step starts one (its {@code
 *       oom_score_adj} set back to 0). The OOM killer kills the target; the agent lives on, in
 *       {@code cb-agent} with its {@code memory.min}.
 * </ol>
 *
 * Needs the bootstrap's kernel ({@code mvn -Pbootstrap verify}) and {@code qemu-system-x86_64},
 * {@code cpio} and a static busybox; skips with what is missing. Alone, on the last build: {@code
 * mvn -B -pl node-agent -am -Pbootstrap test-compile surefire:test@bootstrap-it
 * -Dtest=AgentOomQemuIT -Dsurefire.failIfNoSpecifiedTests=false}.
 */
class AgentOomQemuIT {
  private static final Path BUSYBOX = Path.of("/bin/busybox");
  private static final Path SCRIPT = BootstrapImage.MODULE.resolve("src/bootstrap/agent-cgroup");
  private static final Pattern KILLED = Pattern.compile("Killed process (\\d+) \\(([^)]*)\\)");

  /**
   * A process that takes {@code $1} MiB in 1 MiB strings, writes the file {@code $2}, and waits for
   * ever (opening a FIFO nobody writes: no fork of a large process).
   */
  private static final String HOLD =
      "exec awk -v n=\"$1\" -v f=\"$2\" 'BEGIN { c = \"x\"; for (i = 0; i < 20; i++) c = c c;"
          + " while (k < n) a[k++] = c \"\"; print \"held\" > f; close(f);"
          + " getline x < \"/never\" }'";

  /** A process that takes 1 MiB after 1 MiB until the kernel stops it. */
  private static final String GROW =
      "exec awk 'BEGIN { c = \"x\"; for (i = 0; i < 20; i++) c = c c;"
          + " while (1) a[k++] = c \"\" }'";

  private static final String INIT =
      """
      #!/bin/busybox sh
      /bin/busybox mkdir -p /proc /sys /dev /usr/bin /usr/sbin /sbin
      /bin/busybox --install -s
      mount -t devtmpfs devtmpfs /dev
      exec >/dev/ttyS0 2>&1 </dev/null
      mount -t proc proc /proc
      mount -t sysfs sysfs /sys
      mount -t cgroup2 cgroup2 /sys/fs/cgroup
      for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control
      done
      mkdir -p /sys/fs/cgroup/chrootbooter
      echo "+memory" > /sys/fs/cgroup/chrootbooter/cgroup.subtree_control
      cat > /hold <<'EOF'
      HOLD
      EOF
      cat > /grow <<'EOF'
      GROW
      EOF
      mkfifo /never
      held() { while [ ! -f "$1" ]; do sleep 0.2; done; }
      # The enter step's first stage (pivot/Target.java): the target's cgroup, oom_score_adj 0.
      enter='echo $$ > "$1/cgroup.procs" || exit 111; echo 0 > /proc/self/oom_score_adj || exit 111; exec sh /grow'
      mkdir -p /sys/fs/cgroup/chrootbooter/t0 /sys/fs/cgroup/chrootbooter/t1

      echo "round control"
      sh /hold 150 /held0 &
      agent=$!
      held /held0
      echo "agent $agent oom_score_adj $(cat /proc/$agent/oom_score_adj)"
      sh -c "$enter" cb-cgroup /sys/fs/cgroup/chrootbooter/t0 &
      t=$!
      echo "target $t"
      wait "$t"
      if kill -0 "$agent" 2>/dev/null; then echo "agent $agent alive"; else echo "agent $agent dead"; fi
      kill "$agent" 2>/dev/null
      wait

      echo "round shielded"
      export enter
      sh -c '
        sh /agent-cgroup /sys/fs/cgroup $$ 64M
        sh /hold 150 /held1 &
        agent=$!
        echo "agent $agent oom_score_adj $(cat /proc/$agent/oom_score_adj) cgroup $(cat /proc/$agent/cgroup)"
        echo "agent memory.min $(cat /sys/fs/cgroup/cb-agent/memory.min)"
        while [ ! -f /held1 ]; do sleep 0.2; done
        sh -c "$enter" cb-cgroup /sys/fs/cgroup/chrootbooter/t1 &
        t=$!
        echo "target $t"
        wait "$t"
        if kill -0 "$agent" 2>/dev/null; then echo "agent $agent alive"; else echo "agent $agent dead"; fi
        echo "target cgroup oom_kill $(grep oom_kill /sys/fs/cgroup/chrootbooter/t1/memory.events | cut -d" " -f2)"
        kill "$agent"
      '
      echo "rounds done"
      poweroff -f
      """
          .replace("HOLD", HOLD)
          .replace("GROW", GROW);

  @TempDir Path temp;
  private Machine vm;

  @AfterEach
  void powerOff() throws Exception {
    if (vm != null) {
      vm.close();
      System.out.println("agent OOM test: serial console in " + vm.consoleLog());
    }
  }

  @Test
  void anOomInTheTargetKillsTheTargetNotTheAgent() throws Exception {
    BootstrapImage image = BootstrapImage.require();
    Optional<String> missing = Host.missing(List.of("qemu-system-x86_64", "cpio"));
    assumeTrue(missing.isEmpty(), () -> missing.get() + " is not on the PATH");
    assumeTrue(Files.isExecutable(BUSYBOX), "no /bin/busybox: apt-get install -y busybox-static");
    Path initrd = initramfs();
    vm =
        Machine.builder("oom-it", BootstrapImage.MODULE.resolve("target"))
            // No lab machine: QEMU's pc with a plain CPU, one processor, and 320 MiB, which the
            // agent's 150 MiB and the growing target fill.
            .machine("pc", "qemu64,+rdrand")
            .smp(1)
            .memory(320)
            .kernel(image.kernel(), initrd, "console=ttyS0 quiet panic=-1")
            .powerOn();
    try {
      await("both rounds")
          .atMost(Duration.ofMinutes(5))
          .pollInterval(Duration.ofMillis(500))
          .until(() -> vm.console().contains("rounds done") || !vm.isAlive());
      String out = vm.console();
      assertThat(out).contains("rounds done");
      int split = out.indexOf("round shielded");
      String control = out.substring(out.indexOf("round control"), split);
      String shielded = out.substring(split);

      long agent0 = pid(control, "agent (\\d+) oom_score_adj 0");
      long target0 = pid(control, "target (\\d+)");
      assertThat(killed(control))
          .as("control: the OOM killer takes the largest process, the unshielded agent, first")
          .startsWith(agent0);
      assertThat(control).contains("agent " + agent0 + " dead");
      assertThat(target0).isPositive();

      long agent1 = pid(shielded, "agent (\\d+) oom_score_adj -1000 cgroup 0::/cb-agent");
      assertThat(shielded).contains("agent memory.min 67108864");
      long target1 = pid(shielded, "target (\\d+)");
      assertThat(killed(shielded))
          .as("shielded: only the target's process is killed")
          .isNotEmpty()
          .doesNotContain(agent1);
      assertThat(shielded)
          .contains("agent " + agent1 + " alive")
          .containsPattern("target cgroup oom_kill [1-9]");
      assertThat(target1).isPositive();
      System.out.printf(
          "agent OOM test: control killed %s (agent %d); shielded killed %s (agent %d alive)%n",
          killed(control), agent0, killed(shielded), agent1);
    } catch (AssertionError | RuntimeException e) {
      System.out.println("---- serial console ----\n" + vm.console() + "\n---- end ----");
      throw e;
    }
  }

  /** The initramfs: busybox, agent-cgroup and the rounds' /init, as a newc cpio. */
  private Path initramfs() throws Exception {
    Path root = Files.createDirectories(temp.resolve("root"));
    Files.createDirectories(root.resolve("bin"));
    Files.copy(BUSYBOX, root.resolve("bin/busybox"));
    Files.copy(SCRIPT, root.resolve("agent-cgroup"));
    Files.writeString(root.resolve("init"), INIT);
    Files.setPosixFilePermissions(
        root.resolve("init"), PosixFilePermissions.fromString("rwxr-xr-x"));
    Path out = temp.resolve("initramfs.cpio");
    Process p =
        new ProcessBuilder("sh", "-c", "find . | cpio -o -H newc --quiet > \"$0\"", out.toString())
            .directory(root.toFile())
            .redirectErrorStream(true)
            .start();
    String err = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor()).as("cpio: %s", err).isZero();
    return out;
  }

  private static long pid(String text, String regex) {
    Matcher m = Pattern.compile(regex).matcher(text);
    assertThat(m.find()).as("/%s/ on the console", regex).isTrue();
    return Long.parseLong(m.group(1));
  }

  /** The PIDs the kernel's OOM killer killed, in order. */
  private static List<Long> killed(String text) {
    List<Long> pids = new ArrayList<>();
    Matcher m = KILLED.matcher(text);
    while (m.find()) {
      pids.add(Long.parseLong(m.group(1)));
    }
    return pids;
  }
}
