package io.chrootbooter.agent.relay;

import io.chrootbooter.agent.pivot.ConsoleHook;
import io.chrootbooter.agent.pivot.TargetSpec;
import io.chrootbooter.agent.sys.SyscallException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
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
 * target is gone. Between targets the bootstrap's own console shell is recorded the same way, in a
 * log of its own (no image), and users attach to it ({@link #bootstrapStarted}, {@link #tee},
 * {@link #merge}). A device that cannot be relayed (absent, not openable) is left to the target as
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
  private volatile Boot running;
  private volatile Shell shell;

  /** Bytes users attached to the bootstrap's shell may have typed and it has not read yet. */
  static final int MAX_TYPED = 4096;

  /** Where a remote user's view of a console goes; neither method may block. */
  public interface Screen {
    /** What the target wrote to the console. */
    void output(byte[] bytes, int off, int len);

    /** The target is gone (or the attachment was closed): nothing more comes. */
    void ended();
  }

  /** A remote user attached to the running target's console ({@link #attach}). */
  public interface Attachment extends AutoCloseable {
    /** Types into the target's console; returns the bytes taken (the rest is dropped). */
    int type(byte[] bytes);

    /** The real device whose console this is. */
    Path device();

    /** Detaches; the screen is told {@link Screen#ended}. */
    @Override
    void close();
  }

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

  /**
   * Attaches {@code screen} to the running target's console: the relay of the kernel's {@code
   * /dev/console} (the last {@code console=} of the command line), else the first relayed device.
   * Empty when no target runs or none of its consoles is relayed. Several attachments may be open
   * at once: each sees all output, and each may type.
   */
  public Optional<Attachment> attach(Screen screen) {
    Boot boot = running;
    if (boot == null) {
      Shell bootstrap = shell;
      return bootstrap == null ? Optional.empty() : bootstrap.attach(screen);
    }
    if (boot.primary == null) {
      return Optional.empty();
    }
    return boot.attach(screen);
  }

  /**
   * The bootstrap's turn begins (the agent started, or a target ended): its own console shell gets
   * a log of its own, {@link #current} from now on (no image), and users attach to that shell until
   * the next target starts. Only when {@link #tee} and {@link #merge} carry the shell's console.
   */
  public void bootstrapStarted() {
    bootstrapShell = true;
    if (running != null) {
      return; // a target has the console: the shell's turn begins when it ends
    }
    BootLog log =
        new BootLog(
            settings.bootId() + "-" + sequence.incrementAndGet(),
            null,
            clock.instant(),
            settings.capacity());
    Shell old;
    synchronized (this) {
      old = shell;
      shell = new Shell(log);
      previous = current;
      current = log;
    }
    if (old != null) {
      old.end();
    }
    onStart.run();
  }

  /**
   * What the bootstrap's console shell prints: to {@code out} as before, and while no target runs
   * also into the bootstrap's log and to every user attached to it.
   */
  public PrintStream tee(PrintStream out) {
    return new PrintStream(
        new OutputStream() {
          @Override
          public void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
          }

          @Override
          public void write(byte[] bytes, int off, int len) {
            out.write(bytes, off, len);
            Shell bootstrap = shell;
            if (bootstrap != null && running == null) {
              bootstrap.record(bytes, off, len);
            }
          }

          @Override
          public void flush() {
            out.flush();
          }
        },
        false,
        StandardCharsets.UTF_8);
  }

  /**
   * What the bootstrap's console shell reads: what attached users typed (echoed to {@code echo},
   * into the log and to every user, as the machine's own terminal echoes a key), then {@code in}
   * (the real console, whose terminal echoed it already: recorded and shown to the users).
   */
  public InputStream merge(InputStream in, PrintStream echo) {
    return new InputStream() {
      @Override
      public int available() throws IOException {
        Shell bootstrap = shell;
        return (bootstrap == null ? 0 : bootstrap.typed()) + in.available();
      }

      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n <= 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        Shell bootstrap = shell;
        if (bootstrap != null) {
          int n = bootstrap.take(b, off, len);
          if (n > 0) {
            byte[] shown =
                new String(b, off, n, StandardCharsets.UTF_8)
                    .replace("\r", "\r\n")
                    .getBytes(StandardCharsets.UTF_8);
            echo.write(shown, 0, shown.length);
            echo.flush();
            return n;
          }
        }
        int n = in.read(b, off, len);
        Shell now = shell;
        if (n > 0 && now != null && running == null) {
          now.record(b, off, n);
        }
        return n;
      }
    };
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
    ConsoleRelay primary = null;
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
        if (primary == null) {
          primary = relay;
        }
        for (String name : device.names()) {
          if (name.equals(ConsoleDevices.CONSOLE)) {
            primary = relay;
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
    Shell bootstrap;
    synchronized (this) {
      bootstrap = shell;
      shell = null;
      previous = current;
      current = log;
    }
    if (bootstrap != null) {
      bootstrap.end(); // the target has the console now; its users go with the shell
    }
    Boot boot = new Boot(console, Map.copyOf(binds), started, log, primary);
    running = boot;
    onStart.run();
    LOG.infof("console relay: %s through ptys; %s as the target's /dev/console", plan, console);
    return boot;
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

  private final class Boot implements Consoles {
    private final Path console;
    private final Map<String, Path> binds;
    private final List<AutoCloseable> parts;
    private final BootLog log;
    private final ConsoleRelay primary;
    private final List<Attached> attached = new ArrayList<>();
    private boolean released;

    Boot(
        Path console,
        Map<String, Path> binds,
        List<AutoCloseable> parts,
        BootLog log,
        ConsoleRelay primary) {
      this.console = console;
      this.binds = binds;
      this.parts = parts;
      this.log = log;
      this.primary = primary;
    }

    @Override
    public Path console() {
      return console;
    }

    @Override
    public Map<String, Path> binds() {
      return binds;
    }

    synchronized Optional<Attachment> attach(Screen screen) {
      if (released) {
        return Optional.empty();
      }
      Attached a = new Attached(this, screen);
      attached.add(a);
      primary.watch(a);
      return Optional.of(a);
    }

    void detach(Attached a) {
      synchronized (this) {
        attached.remove(a);
      }
      primary.unwatch(a);
    }

    @Override
    public void release() {
      List<Attached> open;
      synchronized (this) {
        released = true;
        open = List.copyOf(attached);
        attached.clear();
      }
      boolean last = running == this;
      if (last) {
        running = null;
      }
      closeAll(parts);
      log.end();
      open.forEach(Attached::ended);
      if (last && bootstrapShell) {
        bootstrapStarted(); // the bootstrap's console shell has the console again
      }
    }
  }

  /** Whether the bootstrap's shell is recorded: set by the first {@link #bootstrapStarted}. */
  private volatile boolean bootstrapShell;

  /** The bootstrap's console shell: its log, the users attached, what they typed. */
  private final class Shell {
    private final BootLog log;
    private final List<Screen> screens = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final java.io.ByteArrayOutputStream typed = new java.io.ByteArrayOutputStream();
    private boolean over;

    Shell(BootLog log) {
      this.log = log;
      bootstrapShell = true;
    }

    void record(byte[] bytes, int off, int len) {
      log.append(bytes, off, len);
      for (Screen screen : screens) {
        screen.output(bytes, off, len);
      }
    }

    synchronized int typed() {
      return typed.size();
    }

    synchronized int take(byte[] b, int off, int len) {
      if (typed.size() == 0) {
        return 0;
      }
      byte[] all = typed.toByteArray();
      int n = Math.min(len, all.length);
      System.arraycopy(all, 0, b, off, n);
      typed.reset();
      typed.write(all, n, all.length - n);
      return n;
    }

    synchronized int type(byte[] bytes) {
      if (over) {
        return 0;
      }
      int n = Math.min(bytes.length, MAX_TYPED - typed.size());
      typed.write(bytes, 0, Math.max(0, n));
      return Math.max(0, n);
    }

    Optional<Attachment> attach(Screen user) {
      java.util.concurrent.atomic.AtomicBoolean closed =
          new java.util.concurrent.atomic.AtomicBoolean();
      // Told of the end once, whether the user detaches or the shell ends first.
      Screen screen =
          new Screen() {
            @Override
            public void output(byte[] bytes, int off, int len) {
              if (!closed.get()) {
                user.output(bytes, off, len);
              }
            }

            @Override
            public void ended() {
              if (closed.compareAndSet(false, true)) {
                user.ended();
              }
            }
          };
      synchronized (this) {
        if (over) {
          return Optional.empty();
        }
        screens.add(screen);
      }
      return Optional.of(
          new Attachment() {
            @Override
            public int type(byte[] bytes) {
              return closed.get() ? 0 : Shell.this.type(bytes);
            }

            @Override
            public Path device() {
              return Path.of("/dev/console");
            }

            @Override
            public void close() {
              screens.remove(screen);
              screen.ended();
            }
          });
    }

    void end() {
      List<Screen> open;
      synchronized (this) {
        over = true;
        typed.reset();
        open = List.copyOf(screens);
        screens.clear();
      }
      log.end();
      open.forEach(Screen::ended);
    }
  }

  private static final class Attached implements Attachment, ConsoleRelay.Viewer {
    private final Boot boot;
    private final Screen screen;
    private final java.util.concurrent.atomic.AtomicBoolean over =
        new java.util.concurrent.atomic.AtomicBoolean();

    Attached(Boot boot, Screen screen) {
      this.boot = boot;
      this.screen = screen;
    }

    @Override
    public void output(byte[] bytes, int off, int len) {
      screen.output(bytes, off, len);
    }

    @Override
    public int type(byte[] bytes) {
      return over.get() ? 0 : boot.primary.type(bytes);
    }

    @Override
    public Path device() {
      return boot.primary.real();
    }

    void ended() {
      if (over.compareAndSet(false, true)) {
        screen.ended();
      }
    }

    @Override
    public void close() {
      boot.detach(this);
      ended();
    }
  }
}
