package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.pivot.Cgroup;
import java.nio.file.Path;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.jboss.logging.Logger;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code run}: the agent as the bootstrap runs it. Every option defaults to its kernel command line
 * variable ({@code cb.operator=} → {@code CB_OPERATOR}, exported by the bootstrap's agent wrapper),
 * so the bootstrap passes no arguments.
 */
@Command(
    name = "run",
    mixinStandardHelpOptions = true,
    description =
        "Run the agent: follow the operator's desired state (or load cb.image), enter and return,"
            + " watch the triggers, serve the console, report status.")
public class RunCommand implements Callable<Integer> {
  private static final Logger LOG = Logger.getLogger(RunCommand.class);

  @Option(names = "--operator", defaultValue = "${env:CB_OPERATOR}", description = "operator URL")
  String operator;

  @Option(names = "--token", defaultValue = "${env:CB_TOKEN}", description = "machine token")
  String token;

  @Option(names = "--mac", defaultValue = "${env:CB_MAC}", description = "this machine's MAC")
  String mac;

  @Option(
      names = "--ca",
      defaultValue = "${env:CB_CA}",
      description = "sha256:<hex> of the operator's CA certificate (TLS pinning)")
  String ca;

  @Option(
      names = "--image",
      defaultValue = "${env:CB_IMAGE}",
      description = "standalone: image URL to load at start")
  String image;

  @Option(names = "--sha256", defaultValue = "${env:CB_SHA256}", description = "its SHA-256")
  String sha256;

  @Option(names = "--format", defaultValue = "${env:CB_FORMAT}", description = "its format")
  String format;

  @Option(names = "--init", defaultValue = "${env:CB_INIT}", description = "its init")
  String init;

  @Option(
      names = "--serial",
      defaultValue = "${env:CB_SERIAL}",
      description = "serial port for the magic string, e.g. ttyS1")
  String serial;

  @Option(
      names = "--serial-baud",
      defaultValue = "${env:CB_SERIAL_BAUD:-115200}",
      description = "its baud rate")
  int serialBaud;

  @Option(
      names = "--cache",
      defaultValue = "${env:CB_CACHE}",
      description = "a block device (/dev/…) or directory for cached images; default: RAM")
  String cache;

  @Option(
      names = "--work-dir",
      defaultValue = "/run/chrootbooter",
      description = "roots, downloads")
  Path workDir;

  @Option(names = "--state-dir", defaultValue = "/run/bootstrap", description = "state files")
  Path stateDir;

  @Option(
      names = "--cgroup",
      defaultValue = "/sys/fs/cgroup/chrootbooter",
      description = "cgroup2 directory for the targets")
  Path cgroup;

  @Option(names = "--busybox", defaultValue = "/bin/busybox", description = "static busybox")
  Path busybox;

  @Option(names = "--dev", defaultValue = "/dev", description = "device directory")
  Path dev;

  @Option(
      names = "--target-console",
      defaultValue = "/dev/console",
      description = "the targets' stdin/stdout")
  Path targetConsole;

  @Option(
      names = "--grace",
      defaultValue = "10s",
      description =
          "how long a target may take to power off on the graceful signal before its cgroup is"
              + " killed; a BootImage's spec.stop.gracePeriod overrides it")
  String grace;

  @Option(
      names = "--pids-max",
      defaultValue = "${env:CB_PIDS_MAX}",
      converter = PidsMax.class,
      description = "pids.max of a target's cgroup: a number of processes, or max (default)")
  OptionalLong pidsMax;

  @Option(
      names = "--memory-max",
      defaultValue = "${env:CB_MEMORY_MAX}",
      converter = MemoryMax.class,
      description =
          "memory.max of a target's cgroup: bytes, or with a K/M/G/T suffix (256M), or max"
              + " (default)")
  OptionalLong memoryMax;

  @Option(
      names = "--no-console",
      description = "do not read commands from stdin (the console shell)")
  boolean noConsole;

  @Option(
      names = "--report-interval",
      defaultValue = "1s",
      description = "at most one status report per interval")
  String reportInterval;

  @Override
  public Integer call() throws Exception {
    Daemon.Options options =
        new Daemon.Options(
            operator,
            token,
            mac,
            ca,
            image,
            sha256,
            format,
            init,
            serial,
            serialBaud,
            cache,
            workDir,
            stateDir,
            cgroup,
            busybox,
            dev,
            targetConsole,
            GoDuration.parse(grace),
            pidsMax == null ? OptionalLong.empty() : pidsMax,
            memoryMax == null ? OptionalLong.empty() : memoryMax,
            GoDuration.parse(reportInterval),
            System.getenv());
    Daemon daemon = Daemon.start(options, noConsole ? null : System.in, System.out);
    CountDownLatch stop = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    daemon.close();
                  } finally {
                    stop.countDown();
                  }
                },
                "cb-shutdown"));
    stop.await();
    return 0;
  }

  /** {@code --pids-max} / {@code cb.pids-max=}: {@link Cgroup#parsePidsMax}. */
  static final class PidsMax implements ITypeConverter<OptionalLong> {
    @Override
    public OptionalLong convert(String value) {
      try {
        return Cgroup.parsePidsMax("cb.pids-max", value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }

  /** {@code --memory-max} / {@code cb.memory-max=}: {@link Cgroup#parseMemoryMax}. */
  static final class MemoryMax implements ITypeConverter<OptionalLong> {
    @Override
    public OptionalLong convert(String value) {
      try {
        return Cgroup.parseMemoryMax("cb.memory-max", value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }
}
