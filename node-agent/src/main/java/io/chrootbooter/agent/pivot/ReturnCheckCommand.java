package io.chrootbooter.agent.pivot;

import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.agent.unpack.SquashfsImage;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import java.util.concurrent.locks.LockSupport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code return-check [--cycles N] [--grace-ms MS] ... IMAGE.squashfs}: boots a cached squashfs
 * image N times and returns from it each time, printing one line per cycle: {@code cycle I boot_ms
 * B return_ms R forced F}. A field check of the return path on a real machine, and what {@code
 * bench/return.sh} measures. Return time is trigger to bootstrap ready: target gone, overlay,
 * tmpfs, squashfs and loop device released, state files written.
 */
@Command(
    name = "return-check",
    mixinStandardHelpOptions = true,
    description = "Boot a squashfs image N times and return from it each time, timing the return.")
public class ReturnCheckCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "IMAGE", description = "a squashfs image file")
  Path image;

  @Option(names = "--cycles", defaultValue = "10", description = "boot/return cycles")
  int cycles;

  @Option(names = "--init", defaultValue = TargetSpec.DEFAULT_INIT, description = "init to exec")
  String init;

  @Option(
      names = "--signal",
      defaultValue = "SIGRTMIN+4",
      description = "graceful power-off signal for the init")
  String signal;

  @Option(
      names = "--grace-ms",
      defaultValue = "0",
      description = "grace period before the kill; 0 = forced return")
  long graceMs;

  @Option(
      names = "--ready-file",
      description =
          "wait until the target creates this file (path inside the target) before"
              + " triggering the return")
  String readyFile;

  @Option(names = "--work", required = true, description = "scratch directory for mounts")
  Path work;

  @Option(names = "--cgroup-parent", defaultValue = "/sys/fs/cgroup", description = "cgroup2 dir")
  Path cgroupParent;

  @Option(names = "--state-dir", defaultValue = "/var/run/bootstrap", description = "state files")
  Path stateDir;

  @Option(names = "--busybox", defaultValue = "/bin/busybox", description = "static busybox")
  Path busybox;

  @Option(names = "--pids-max", description = "pids.max of the target's cgroup")
  Long pidsMax;

  @Override
  public Integer call() throws IOException {
    StateFiles state = new StateFiles(stateDir);
    PivotConfig config =
        new PivotConfig(
            busybox,
            cgroupParent,
            work.resolve("staging"),
            state,
            pidsMax == null ? OptionalLong.empty() : OptionalLong.of(pidsMax),
            OptionalLong.empty());
    Path console = work.resolve("console.log");
    Files.createDirectories(work);
    if (!Files.exists(console)) {
      Files.createFile(console);
    }
    try (BootController controller =
        new BootController(config, new LinuxSignals(), Clock.systemUTC())) {
      for (int i = 1; i <= cycles; i++) {
        long start = System.nanoTime();
        Path cycle = Files.createDirectories(work.resolve("cycle"));
        Path root = cycle.resolve("root");
        SquashfsImage.Mounted mounted =
            SquashfsImage.mount(
                image, Files.createDirectories(cycle.resolve("work")), root, new Overlay.Tmpfs());
        TargetSpec spec =
            new TargetSpec(
                root,
                init,
                image.toUri().toString(),
                Signals.parse(signal),
                Duration.ofMillis(graceMs),
                console);
        controller.boot(spec, mounted::close, Duration.ZERO);
        long pid = controller.session().orElseThrow().target().initPid();
        if (readyFile != null) {
          Path ready = Path.of("/proc", Long.toString(pid), "root", readyFile);
          long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
          while (!Files.exists(ready)) {
            if (System.nanoTime() > deadline) {
              throw new IOException(
                  "cycle " + i + ": the target made no " + readyFile + " in 30 s");
            }
            LockSupport.parkNanos(1_000_000);
          }
        }
        long booted = System.nanoTime();
        LastReturn r =
            controller
                .trigger(ReturnTrigger.Console, "return-check cycle " + i)
                .orElseThrow(() -> new IOException("the return failed; see the log"));
        long done = System.nanoTime();
        System.out.printf(
            "cycle %d boot_ms %.2f return_ms %.2f forced %s init %s%n",
            i, (booted - start) / 1e6, (done - booted) / 1e6, r.forced(), r.initExit());
        Files.delete(cycle.resolve("work/lower"));
        Files.delete(cycle.resolve("work/rw"));
        Files.delete(cycle.resolve("work"));
        Files.delete(root);
        Files.delete(cycle);
      }
    }
    return 0;
  }
}
