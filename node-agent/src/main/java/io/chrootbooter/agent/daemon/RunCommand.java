package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.lazy.HttpBlocks;
import io.chrootbooter.agent.pivot.Cgroup;
import io.chrootbooter.protocol.GoDuration;
import java.lang.reflect.Field;
import java.nio.file.Path;
import java.util.Map;
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

  @Option(
      names = "--nonce",
      defaultValue = "${env:CB_NONCE}",
      description = "the one-time boot nonce, exchanged for a session")
  String nonce;

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
      names = "--modules",
      defaultValue = "${env:CB_MODULES}",
      description =
          "where the bootstrap kernel's modules image comes from; default: the operator's"
              + " /bootstrap/modules")
  String modules;

  @Option(
      names = "--modules-sha256-file",
      defaultValue = "/etc/chrootbooter/modules.sha256",
      description = "the modules image's SHA-256, as the bootstrap build recorded it")
  Path modulesDigest;

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

  @Option(
      names = "--console-log",
      defaultValue = "${env:CB_CONSOLE_LOG:-1M}",
      converter = ConsoleLog.class,
      description =
          "bytes of each boot's recorded console the agent keeps (and relays the targets'"
              + " consoles through ptys): bytes, or with a K/M suffix; 0 turns the relay off."
              + " Default 1M")
  int consoleLog = 1 << 20;

  @Option(
      names = "--lazy-ram",
      defaultValue = "${env:CB_LAZY_RAM}",
      converter = LazyRam.class,
      description =
          "the most RAM a Lazy image's fetched blocks take without a cache disk (--cache): bytes,"
              + " or with a K/M/G/T suffix, or max; beyond it blocks are evicted and fetched"
              + " again when read. Default: half of MemAvailable when the image loads")
  OptionalLong lazyRam;

  /** What {@link Option#defaultValue()} is when an option names none (picocli's own marker). */
  private static final String NO_DEFAULT_VALUE = "__no_default_value__";

  /** A value of the environment that its option does not accept. */
  public static final class InvalidOption extends Exception {
    InvalidOption(String message) {
      super(message);
    }
  }

  /**
   * {@code run} with no arguments, as the bootstrap starts it: each option takes the value its
   * {@code defaultValue} names, {@code ${env:NAME}} or {@code ${env:NAME:-fallback}} read from
   * {@code env}, converted as picocli would. The {@link Option} annotations stay the one place that
   * says which variable feeds which option.
   *
   * @throws InvalidOption when a value is not accepted, with picocli's message: the option, then
   *     the converter's words (for the limits: the kernel argument, the value and the rule)
   */
  public static RunCommand fromEnvironment(Map<String, String> env) throws InvalidOption {
    RunCommand run = new RunCommand();
    for (Field field : RunCommand.class.getDeclaredFields()) {
      Option option = field.getAnnotation(Option.class);
      if (option == null
          || NO_DEFAULT_VALUE.equals(option.defaultValue())
          || Option.NULL_VALUE.equals(option.defaultValue())) {
        continue;
      }
      String value = defaultValue(option.defaultValue(), env);
      if (value == null) {
        continue;
      }
      Object converted;
      try {
        converted = convert(field, option, value);
      } catch (ReflectiveOperationException e) {
        throw new IllegalStateException("cannot convert --" + field.getName(), e);
      } catch (IllegalStateException e) { // an option type without a conversion: our bug
        throw e;
      } catch (Exception e) { // a converter's way to refuse a value (picocli's ITypeConverter)
        throw new InvalidOption(
            "Invalid value for option '%s': %s".formatted(option.names()[0], e.getMessage()));
      }
      try {
        field.set(run, converted);
      } catch (IllegalAccessException e) {
        throw new IllegalStateException("cannot set --" + field.getName(), e);
      }
    }
    return run;
  }

  private static String defaultValue(String spec, Map<String, String> env) {
    if (!spec.startsWith("${")) {
      return spec;
    }
    if (!spec.startsWith("${env:") || !spec.endsWith("}")) {
      throw new IllegalStateException("unsupported default value " + spec);
    }
    String body = spec.substring("${env:".length(), spec.length() - 1);
    int fallback = body.indexOf(":-");
    String name = fallback < 0 ? body : body.substring(0, fallback);
    String value = env.get(name);
    return value != null || fallback < 0 ? value : body.substring(fallback + 2);
  }

  private static Object convert(Field field, Option option, String value) throws Exception {
    if (option.converter().length > 0) {
      return option.converter()[0].getDeclaredConstructor().newInstance().convert(value);
    }
    Class<?> type = field.getType();
    if (type == String.class) {
      return value;
    }
    if (type == int.class) {
      try {
        return Integer.parseInt(value);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("'" + value + "' is not an int");
      }
    }
    if (type == Path.class) {
      return Path.of(value);
    }
    throw new IllegalStateException("--" + field.getName() + ": no conversion to " + type);
  }

  @Override
  public Integer call() throws Exception {
    Daemon.Options options =
        new Daemon.Options(
            operator,
            nonce,
            mac,
            ca,
            image,
            sha256,
            format,
            init,
            serial,
            serialBaud,
            cache,
            modules,
            modulesDigest,
            workDir,
            stateDir,
            cgroup,
            busybox,
            dev,
            targetConsole,
            GoDuration.parse("--grace", grace),
            pidsMax == null ? OptionalLong.empty() : pidsMax,
            memoryMax == null ? OptionalLong.empty() : memoryMax,
            GoDuration.parse("--report-interval", reportInterval),
            System.getenv(),
            consoleLog,
            lazyRam == null ? OptionalLong.empty() : lazyRam);
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

  /** {@code --console-log} / {@code cb.console-log=}: 0 to 64M bytes, with a K or M suffix. */
  static final class ConsoleLog implements ITypeConverter<Integer> {
    static final long MAX = 64L << 20;

    @Override
    public Integer convert(String value) {
      String v = value.strip();
      long unit = 1;
      if (v.endsWith("K") || v.endsWith("k")) {
        unit = 1 << 10;
        v = v.substring(0, v.length() - 1);
      } else if (v.endsWith("M") || v.endsWith("m")) {
        unit = 1 << 20;
        v = v.substring(0, v.length() - 1);
      }
      if (!v.matches("[0-9]{1,9}") || Long.parseLong(v) * unit > MAX) {
        throw new TypeConversionException(
            "cb.console-log=\""
                + value.replaceAll("[^\\x20-\\x7e]", "?")
                + "\" is not a size from 0 to 64M (bytes, or with a K or M suffix)");
      }
      return (int) (Long.parseLong(v) * unit);
    }
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
  static final class LazyRam implements ITypeConverter<OptionalLong> {
    @Override
    public OptionalLong convert(String value) {
      try {
        OptionalLong bytes = Cgroup.parseMemoryMax("cb.lazy-ram", value);
        if (bytes.isPresent() && bytes.getAsLong() < HttpBlocks.MIN_BUDGET) {
          throw new IllegalArgumentException(
              "cb.lazy-ram="
                  + value
                  + ": at least "
                  + HttpBlocks.MIN_BUDGET
                  + " bytes (nine pieces of "
                  + HttpBlocks.CHUNK
                  + ")");
        }
        return bytes.isPresent() ? bytes : OptionalLong.of(Long.MAX_VALUE);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }

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
