package io.chrootbooter.testkit;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.Writer;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Pattern;

/**
 * A QEMU machine (TCG): the {@code pc} machine of {@link MachineDescription}, its console (ttyS0)
 * on QEMU's standard input and output — every line captured with the seconds since power-on, kept
 * in memory and in {@link #consoleLog()} — further serial ports and the HMP monitor on Unix sockets
 * in the lab's directory. It boots a kernel directly or from the network (SeaBIOS with the NIC's
 * iPXE ROM, or OVMF's own PXE client), on a {@link LabNetwork} tap, QEMU's user network or none.
 * {@link #close()} powers it off; a shutdown hook does when the JVM ends first.
 */
public final class Machine implements AutoCloseable {
  private static final Pattern KEY = Pattern.compile("[a-z0-9_-]+");

  /** What the machine boots. */
  public enum Boot {
    /** {@code -kernel}, {@code -initrd}, {@code -append}; the NIC without an option ROM. */
    KERNEL,
    /** SeaBIOS, then the NIC's option ROM: iPXE (efi-virtio.rom, its BIOS part). */
    BIOS_PXE,
    /** OVMF without a NIC option ROM: EDK2's own UEFI PXE client (arch 7). */
    UEFI_PXE
  }

  /** Debian's OVMF, for {@link Boot#UEFI_PXE}. */
  public static final Path OVMF = Path.of("/usr/share/qemu/OVMF.fd");

  private final Builder spec;
  private final Path monitor;
  private final StringBuffer console = new StringBuffer();
  private final Path consoleLog;
  private final Teardown teardown;
  private Process qemu;
  private OutputStream typing;
  private long poweredOn;

  private Machine(Builder spec) {
    this.spec = spec;
    this.monitor = spec.dir.resolve(spec.name + "-monitor.sock");
    this.consoleLog = spec.dir.resolve(spec.name + "-console.log");
    this.teardown = new Teardown("machine " + spec.name);
  }

  /** A machine named {@code name} with no network, its sockets and console log in {@code dir}. */
  public static Builder builder(String name, Path dir) {
    return new Builder(name, dir);
  }

  /** How to start a machine; {@link #powerOn()} starts it. */
  public static final class Builder {
    private final String name;
    private final Path dir;
    private final MachineDescription description = MachineDescription.lab();
    private String machine = description.machine();
    private String cpu = description.cpu();
    private int memoryMib = description.memoryMib();
    private int smp = description.smp();
    private final List<String> extra = new ArrayList<>();
    private int serialPorts;
    private Boot boot = Boot.BIOS_PXE;
    private Path kernel;
    private Path initrd;
    private String append = "";
    private String mac;
    private LabNetwork network;
    private String tap;
    private String userNetwork;

    private Builder(String name, Path dir) {
      this.name = Objects.requireNonNull(name, "name");
      this.dir = Objects.requireNonNull(dir, "dir");
    }

    /**
     * Another QEMU machine and CPU than the lab's ({@code q35}, {@code max}): for a guest that is
     * no lab machine, such as one that runs host tests under another kernel.
     */
    public Builder machine(String machine, String cpu) {
      this.machine = machine;
      this.cpu = cpu;
      return this;
    }

    /** Further QEMU arguments ({@code -virtfs ...}), after the rest. */
    public Builder args(String... args) {
      extra.addAll(List.of(args));
      return this;
    }

    /** Memory in MiB; the description's by default. */
    public Builder memory(int mib) {
      this.memoryMib = mib;
      return this;
    }

    /** Processors; the description's by default. */
    public Builder smp(int n) {
      this.smp = n;
      return this;
    }

    /** Serial ports besides the console: ttyS1, ttyS2, ... as sockets ({@link #serial}). */
    public Builder serialPorts(int n) {
      this.serialPorts = n;
      return this;
    }

    /** Boots {@code kernel} and {@code initrd} with {@code append} as its command line. */
    public Builder kernel(Path kernel, Path initrd, String append) {
      this.boot = Boot.KERNEL;
      this.kernel = kernel;
      this.initrd = initrd;
      this.append = append;
      return this;
    }

    /** Boots from the network with {@code firmware}'s PXE client. */
    public Builder pxe(Boot firmware) {
      if (firmware == Boot.KERNEL) {
        throw new IllegalArgumentException("pxe() takes a firmware; kernel() boots a kernel");
      }
      this.boot = firmware;
      return this;
    }

    /** The NIC's MAC; QEMU's default when unset. */
    public Builder mac(String mac) {
      this.mac = mac;
      return this;
    }

    /** Machine number {@code n} of the lab: its MAC from the description. */
    public Builder number(int n) {
      return mac(description.mac(n));
    }

    Builder on(LabNetwork network, String tap) {
      this.network = network;
      this.tap = tap;
      return this;
    }

    /**
     * QEMU's user network instead of a tap, with {@code options} ({@code
     * restrict=on,guestfwd=...}): the guest reaches only what the options forward.
     */
    public Builder userNetwork(String options) {
      if (network != null) {
        throw new IllegalStateException(name + " is on a lab network already");
      }
      this.userNetwork = options;
      return this;
    }

    /** QEMU's command line for this machine. */
    List<String> command(Path monitor) {
      List<String> cmd = new ArrayList<>();
      if (network != null) {
        cmd.addAll(List.of("ip", "netns", "exec", network.namespace()));
      }
      cmd.addAll(
          List.of(
              "qemu-system-x86_64",
              "-name",
              name,
              "-accel",
              "tcg",
              "-machine",
              machine,
              "-cpu",
              cpu,
              "-smp",
              Integer.toString(smp),
              "-m",
              Integer.toString(memoryMib),
              "-nographic",
              "-monitor",
              "unix:" + monitor + ",server=on,wait=off",
              "-serial",
              "stdio"));
      for (int port = 1; port <= serialPorts; port++) {
        cmd.addAll(
            List.of(
                "-chardev",
                "socket,id=s" + port + ",path=" + serialSocket(port) + ",server=on,wait=off",
                "-serial",
                "chardev:s" + port));
      }
      cmd.add("-no-reboot");
      String device = description.nic() + ",netdev=n0" + (mac != null ? ",mac=" + mac : "");
      // Only the BIOS boot uses the NIC's option ROM (iPXE); OVMF's own PXE client must run.
      device +=
          switch (boot) {
            case BIOS_PXE -> "";
            case UEFI_PXE -> ",bootindex=0,romfile=";
            case KERNEL -> ",romfile=";
          };
      if (network != null) {
        cmd.addAll(
            List.of(
                "-netdev",
                "tap,id=n0,ifname=" + tap + ",script=no,downscript=no",
                "-device",
                device));
      } else if (userNetwork != null) {
        cmd.addAll(List.of("-netdev", "user,id=n0," + userNetwork, "-device", device));
      } else {
        cmd.addAll(List.of("-nic", "none"));
      }
      switch (boot) {
        case BIOS_PXE -> cmd.addAll(List.of("-boot", "n"));
        case UEFI_PXE -> cmd.addAll(List.of("-bios", OVMF.toString()));
        case KERNEL ->
            cmd.addAll(
                List.of(
                    "-kernel", kernel.toString(), "-initrd", initrd.toString(), "-append", append));
      }
      cmd.addAll(extra);
      return cmd;
    }

    Path serialSocket(int port) {
      return dir.resolve(name + "-ttyS" + port + ".sock");
    }

    /** Starts QEMU. */
    public Machine powerOn() throws IOException {
      Machine m = new Machine(this);
      try {
        m.start();
      } catch (IOException | RuntimeException e) {
        try {
          m.close();
        } catch (Exception suppressed) {
          e.addSuppressed(suppressed);
        }
        throw e;
      }
      if (network != null) {
        network.own(m);
      }
      return m;
    }
  }

  private void start() throws IOException {
    Files.createDirectories(spec.dir);
    Files.deleteIfExists(monitor);
    for (int port = 1; port <= spec.serialPorts; port++) {
      Files.deleteIfExists(spec.serialSocket(port));
    }
    teardown.push(
        () -> {
          Files.deleteIfExists(monitor);
          for (int port = 1; port <= spec.serialPorts; port++) {
            Files.deleteIfExists(spec.serialSocket(port));
          }
        });
    Writer log = Files.newBufferedWriter(consoleLog, StandardCharsets.UTF_8);
    teardown.push(
        () -> {
          synchronized (log) {
            log.close();
          }
        });
    poweredOn = System.nanoTime();
    qemu = new ProcessBuilder(spec.command(monitor)).redirectErrorStream(true).start();
    teardown.push(this::powerOff);
    typing = qemu.getOutputStream();
    Process p = qemu;
    Thread reader = new Thread(() -> copyLines(p, log), spec.name + "-console");
    reader.setDaemon(true);
    reader.start();
    // QEMU makes its sockets before it sets the machine up (and may still fail, on a kernel it
    // cannot load, say): running is when the monitor answers.
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (true) {
      if (!qemu.isAlive()) {
        join(reader); // QEMU's last words
        throw new IOException(
            "QEMU for " + spec.name + " did not start: " + console.toString().strip());
      }
      if (Files.exists(monitor)) {
        try {
          if (monitor("info status").contains("VM status")) {
            return;
          }
        } catch (IOException e) {
          // not listening yet, or gone: the next round tells
        }
      }
      if (System.nanoTime() > end) {
        throw new IOException("QEMU for " + spec.name + " did not answer on its monitor in 60 s");
      }
      sleep(50);
    }
  }

  private static void join(Thread reader) throws IOException {
    try {
      reader.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }

  private void copyLines(Process p, Writer log) {
    try (BufferedReader r =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line; (line = r.readLine()) != null; ) {
        String stamped = String.format("[%6.1f] %s%n", seconds(), line);
        console.append(stamped);
        synchronized (log) {
          log.write(stamped);
          log.flush();
        }
      }
    } catch (IOException e) {
      // QEMU ended, or the log was closed by close()
    }
  }

  /** This machine's name. */
  public String name() {
    return spec.name;
  }

  /** Seconds since power-on. */
  public double seconds() {
    return (System.nanoTime() - poweredOn) / 1e9;
  }

  /** Whether QEMU runs. */
  public boolean isAlive() {
    return qemu != null && qemu.isAlive();
  }

  /** The console so far, each line after {@code [seconds since power-on]}. */
  public String console() {
    return console.toString();
  }

  /** The file that has the console too (written as lines arrive). */
  public Path consoleLog() {
    return consoleLog;
  }

  /** How often {@code text} occurs on the console so far. */
  public int count(String text) {
    String all = console.toString();
    int n = 0;
    for (int i = all.indexOf(text); i >= 0; i = all.indexOf(text, i + 1)) {
      n++;
    }
    return n;
  }

  /** Types {@code line} and Enter on the console. */
  public void type(String line) throws IOException {
    typing.write((line + "\n").getBytes(StandardCharsets.UTF_8));
    typing.flush();
  }

  /** Presses key combinations ({@code ctrl-alt-f12}) on the machine's keyboard (HMP sendkey). */
  public void sendkey(String... keys) throws IOException {
    for (String k : keys) {
      if (!KEY.matcher(k).matches()) {
        throw new IllegalArgumentException('"' + k + "\" is not a QEMU key combination");
      }
      monitor("sendkey " + k);
    }
  }

  /** Presses the reset button. */
  public void reset() throws IOException {
    monitor("system_reset");
  }

  /** A connection to serial port ttyS{@code port} (1 or more); the caller closes it. */
  public SocketChannel serial(int port) throws IOException {
    if (port < 1 || port > spec.serialPorts) {
      throw new IllegalArgumentException(
          spec.name + " has serial ports 1 to " + spec.serialPorts + ", not " + port);
    }
    SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      c.connect(UnixDomainSocketAddress.of(spec.serialSocket(port)));
    } catch (IOException e) {
      c.close();
      throw e;
    }
    return c;
  }

  /**
   * Runs one HMP command and returns what it printed; waits for the monitor's next prompt, as
   * closing the connection before QEMU has read the line loses the command.
   */
  public String monitor(String command) throws IOException {
    try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      c.connect(UnixDomainSocketAddress.of(monitor));
      StringBuilder seen = new StringBuilder();
      ByteBuffer buffer = ByteBuffer.allocate(4096);
      readUntil(c, buffer, seen, () -> seen.indexOf("(qemu)") >= 0);
      c.write(ByteBuffer.wrap((command + "\n").getBytes(StandardCharsets.US_ASCII)));
      int after = seen.length();
      readUntil(c, buffer, seen, () -> seen.indexOf("(qemu)", after) >= 0);
      int end = seen.indexOf("(qemu)", after);
      return seen.substring(after, end < 0 ? seen.length() : end);
    }
  }

  private static void readUntil(
      SocketChannel c, ByteBuffer buffer, StringBuilder seen, BooleanSupplier done)
      throws IOException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!done.getAsBoolean() && System.nanoTime() < end) {
      buffer.clear();
      int n = c.read(buffer);
      if (n < 0) {
        return;
      }
      seen.append(new String(buffer.array(), 0, n, StandardCharsets.US_ASCII));
    }
  }

  /** Pulls the plug: QEMU ends (SIGTERM, then SIGKILL after 30 s). */
  public void powerOff() throws InterruptedException {
    Process p = qemu;
    if (p == null || !p.isAlive()) {
      return;
    }
    p.destroy();
    if (!p.waitFor(30, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      p.waitFor(30, TimeUnit.SECONDS);
    }
  }

  private static void sleep(long millis) throws IOException {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }

  /** Powers the machine off and removes its sockets; its console log stays. */
  @Override
  public void close() throws Exception {
    teardown.close();
  }
}
