package io.chrootbooter.agent.relay;

import io.chrootbooter.agent.pivot.ConsoleHook;
import io.chrootbooter.agent.pivot.TargetSpec;
import io.chrootbooter.agent.sys.SyscallException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * The agent's console server and recorder: for each boot of a target, a {@link ConsoleRelay} per
 * console device ({@link ConsoleDevices}), a {@link KmsgReader}, and a fresh {@link BootLog} they
 * write into. The log of the running (or last) boot and of the one before stay readable after the
 * target is gone. A device that cannot be relayed (absent, not openable) is left to the target as
 * it is, with a warning: the boot never fails for the relay.
 */
public final class ConsoleRecorder implements ConsoleHook {
  private static final Logger LOG = Logger.getLogger(ConsoleRecorder.class);

  /**
   * Where the recorder reads the machine.
   *
   * @param cmdline the kernel command line
   * @param dev the bootstrap's {@code /dev}
   * @param sysClassTty {@code /sys/class/tty}
   * @param kmsg {@code /dev/kmsg}; empty for none
   * @param capacity bytes kept per boot ({@link BootLog#DEFAULT_CAPACITY})
   * @param bootId what names this agent's run (the kernel's boot id and the agent's PID), the first
   *     part of each boot log's id
   */
  public record Settings(
      String cmdline,
      Path dev,
      Path sysClassTty,
      Optional<Path> kmsg,
      int capacity,
      String bootId) {}

  private final Settings settings;
  private final Supplier<Set<Path>> excluded;
  private final Clock clock;
  private final AtomicInteger sequence = new AtomicInteger();
  private volatile BiConsumer<BootLog, String> onWarning = (log, line) -> {};
  private volatile Runnable onStart = () -> {};
  private volatile BootLog current;
  private volatile BootLog previous;

  /**
   * @param excluded devices not to relay at the time of a boot (the serial trigger's port, which
   *     its watcher reads)
   */
  public ConsoleRecorder(Settings settings, Supplier<Set<Path>> excluded, Clock clock) {
    this.settings = settings;
    this.excluded = excluded;
    this.clock = clock;
  }

  /** Called on the kmsg thread with each kernel warning recorded (its first line). */
  public void onWarning(BiConsumer<BootLog, String> listener) {
    this.onWarning = listener == null ? (log, line) -> {} : listener;
  }

  /** Called when a boot's log starts. */
  public void onStart(Runnable listener) {
    this.onStart = listener == null ? () -> {} : listener;
  }

  /** The log of the running target, or of the last one. */
  public Optional<BootLog> current() {
    return Optional.ofNullable(current);
  }

  /** The log of the boot before {@link #current}. */
  public Optional<BootLog> previous() {
    return Optional.ofNullable(previous);
  }

  @Override
  public Consoles start(TargetSpec spec) throws IOException {
    BootLog log =
        new BootLog(
            settings.bootId() + "-" + sequence.incrementAndGet(),
            spec.imageUrl(),
            clock.instant(),
            settings.capacity());
    List<ConsoleDevices.Device> plan =
        ConsoleDevices.plan(
            settings.cmdline(),
            spec.console(),
            settings.dev(),
            read(settings.sysClassTty().resolve("console/active")),
            read(settings.sysClassTty().resolve("tty0/active")),
            excluded.get());
    List<AutoCloseable> started = new ArrayList<>();
    Path console = spec.console();
    Map<String, Path> binds = new LinkedHashMap<>();
    try {
      for (ConsoleDevices.Device device : plan) {
        ConsoleRelay relay;
        try {
          relay = ConsoleRelay.start(device.real(), log);
        } catch (SyscallException e) {
          LOG.warnf(
              "console relay: %s (%s) is left to the target unrelayed: %s",
              device.real(), device.names(), e.getMessage());
          continue;
        }
        started.add(relay);
        for (String name : device.names()) {
          if (name.equals(ConsoleDevices.CONSOLE)) {
            console = relay.slave();
          } else {
            binds.put(name, relay.slave());
          }
        }
      }
      if (settings.kmsg().isPresent() && Files.exists(settings.kmsg().get())) {
        try {
          started.add(KmsgReader.start(settings.kmsg().get(), log, this::warning));
        } catch (SyscallException e) {
          LOG.warnf("console recorder: the kernel's log is not recorded: %s", e.getMessage());
        }
      }
    } catch (RuntimeException e) {
      closeAll(started);
      throw e;
    }
    previous = current;
    current = log;
    onStart.run();
    LOG.infof("console relay: %s through ptys; %s as the target's /dev/console", plan, console);
    return new Boot(console, Map.copyOf(binds), started, log);
  }

  private void warning(BootLog log, String line) {
    LOG.warnf("kernel warning while %s runs: %s", log.image(), line);
    onWarning.accept(log, line);
  }

  private static Optional<String> read(Path file) {
    try {
      return Optional.of(Files.readString(file));
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  private static void closeAll(List<AutoCloseable> started) {
    for (int i = started.size() - 1; i >= 0; i--) {
      try {
        started.get(i).close();
      } catch (Exception e) {
        LOG.warnf("console relay: %s", e.getMessage());
      }
    }
  }

  private record Boot(Path console, Map<String, Path> binds, List<AutoCloseable> parts, BootLog log)
      implements Consoles {
    @Override
    public void release() {
      closeAll(parts);
      log.end();
    }
  }
}
