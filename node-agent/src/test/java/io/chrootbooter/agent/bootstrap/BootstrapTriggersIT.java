package io.chrootbooter.agent.bootstrap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.net.httpserver.HttpServer;
import io.chrootbooter.agent.pivot.TestTarget;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The bootstrap as a machine runs it, in QEMU (TCG): the kernel command line's {@code cb.image=}
 * loads a busybox image over the VM's own network (QEMU user networking, isolated, with one forward
 * to a loopback HTTP server), the image's init runs as PID 1 of its namespace on the serial
 * console, and each trigger brings the machine back to the bootstrap without a reboot: Ctrl+Alt+F12
 * through QEMU's monitor (real keyboard events in the guest), the magic string on the second serial
 * port, and {@code /.bootstrap-return} run inside the target. Between them the console's {@code
 * status} and {@code resume} are typed on the serial line, and {@code load} boots a tar.zst image.
 * Needs the bootstrap profile and qemu-system-x86_64; skips otherwise.
 */
class BootstrapTriggersIT {
  private static final Duration BOOT = Duration.ofSeconds(480);
  private static final Duration STEP = Duration.ofSeconds(120);
  private static final Pattern BACK =
      Pattern.compile("back in the bootstrap \\((\\w+)[^,]*, (\\d+) ms\\)");
  private static final String INIT =
      """
      #!/bin/sh
      # The test image's init: says it is up, reports healthy, and runs the return helper
      # when "helper" is typed on its console (the console is the target's while it runs).
      trap 'echo "vm init: bye"; exit 0' TERM USR2
      echo "TARGET UP $(cat /etc/marker) as PID $$"
      /.bootstrap-return --healthy
      while :; do
        if read -r line; then
          [ "$line" = helper ] && /.bootstrap-return asked from inside
        else
          sleep 1
        fi
      done
      """;

  private final StringBuffer console = new StringBuffer();
  private Path dir;
  private HttpServer images;
  private Process qemu;
  private OutputStream typing;

  @BeforeEach
  void setUp() throws Exception {
    dir = Files.createTempDirectory("cb-triggers-it");
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (qemu != null) {
        qemu.destroyForcibly();
        qemu.waitFor(30, TimeUnit.SECONDS);
      }
      if (images != null) {
        images.stop(0);
      }
      Path log = BootstrapImage.MODULE.resolve("target/bootstrap-triggers-console.log");
      Files.writeString(log, console.toString());
      System.out.println("bootstrap triggers test: serial console in " + log);
    } finally {
      try (Stream<Path> walk = Files.walk(dir)) {
        for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
  }

  @Test
  void everyTriggerReturnsToTheBootstrapWithoutAReboot() throws Exception {
    BootstrapImage image = BootstrapImage.require();
    assumeTrue(onPath("qemu-system-x86_64"), "qemu-system-x86_64 is not on the PATH");
    assumeTrue(onPath("mksquashfs"), "mksquashfs is not on the PATH (squashfs-tools)");
    TestTarget.build(dir);
    Path tree = dir.resolve("tree");
    // init-vm for cb.init=; the same as /sbin/init for the console's load (which has no --init).
    for (String name : List.of("sbin/init-vm", "sbin/init")) {
      Path init = tree.resolve(name);
      Files.writeString(init, INIT);
      Files.setPosixFilePermissions(init, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
    Path squashfs = dir.resolve("vm.squashfs");
    TestTarget.run("mksquashfs", tree.toString(), squashfs.toString(), "-quiet", "-noappend");
    Path tarZst = dir.resolve("vm.tar.zst");
    TestTarget.run("tar", "--zstd", "-cf", tarZst.toString(), "-C", tree.toString(), ".");
    String sha = TestTarget.run("sha256sum", squashfs.toString()).split(" ")[0];
    int port = serve(Map.of("/vm.squashfs", squashfs, "/vm.tar.zst", tarZst));

    Path monitor = dir.resolve("monitor.sock");
    Path ttyS1 = dir.resolve("ttyS1.sock");
    List<String> cmd =
        List.of(
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-cpu",
            "qemu64,+rdrand",
            "-smp",
            "2",
            "-m",
            "1024",
            "-nographic",
            "-monitor",
            "unix:" + monitor + ",server=on,wait=off",
            "-serial",
            "stdio",
            "-chardev",
            "socket,id=s1,path=" + ttyS1 + ",server=on,wait=off",
            "-serial",
            "chardev:s1",
            "-no-reboot",
            "-netdev",
            // One busybox nc per connection: a guestfwd to a tcp: chardev connects only once.
            "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:"
                + TestTarget.BUSYBOX
                + " nc 127.0.0.1 "
                + port,
            "-device",
            "virtio-net-pci,netdev=n0,romfile=",
            "-kernel",
            image.kernel().toString(),
            "-initrd",
            image.initramfs().toString(),
            "-append",
            "console=ttyS0 quiet panic=-1 cb.image=http://10.0.2.100/vm.squashfs cb.sha256="
                + sha
                + " cb.init=/sbin/init-vm cb.serial=ttyS1");
    long t0 = System.nanoTime();
    qemu = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    typing = qemu.getOutputStream();
    Thread reader = new Thread(() -> copyLines(qemu, console, t0), "qemu-serial");
    reader.setDaemon(true);
    reader.start();
    List<String> figures = new ArrayList<>();
    try {
      awaitCount("TARGET UP " + TestTarget.MARKER + " as PID 1", 1, BOOT);
      figures.add(
          String.format(
              "standalone boot to the image's init %.1f s", (System.nanoTime() - t0) / 1e9));

      monitorCommand(monitor, "sendkey ctrl-alt-f12");
      figures.add("hotkey return " + awaitReturn("Hotkey", 1) + " ms");
      assertThat(console.toString()).contains("console override: type 'resume'");
      type("status");
      awaitCount("phase: ConsoleOverride", 1, STEP);
      awaitCount("last return: Hotkey", 1, STEP);
      type("resume");
      awaitCount("TARGET UP", 2, STEP);

      try (SocketChannel serial = SocketChannel.open(StandardProtocolFamily.UNIX)) {
        serial.connect(UnixDomainSocketAddress.of(ttyS1));
        serial.write(ByteBuffer.wrap("noise RETURN_TO_BOOT\n".getBytes(StandardCharsets.US_ASCII)));
        Thread.sleep(2000);
        assertThat(count("back in the bootstrap (Serial"))
            .as("a partial line does nothing")
            .isZero();
        serial.write(ByteBuffer.wrap("RETURN_TO_BOOTSTRAP\n".getBytes(StandardCharsets.US_ASCII)));
        figures.add("serial return " + awaitReturn("Serial", 1) + " ms");
      }
      type("resume");
      awaitCount("TARGET UP", 3, STEP);

      type("helper");
      figures.add("helper return " + awaitReturn("Helper", 1) + " ms");
      assertThat(console.toString()).contains("Helper: asked from inside");

      type("load http://10.0.2.100/vm.tar.zst --format tar.zst");
      awaitCount("TARGET UP", 4, STEP);
      assertThat(count("chrootbooter: bootstrap ready")).as("no reboot happened").isEqualTo(1);
      System.out.println("bootstrap triggers test: " + String.join("; ", figures));
    } catch (AssertionError | RuntimeException e) {
      System.out.println("---- serial console ----\n" + console + "\n---- end ----");
      throw e;
    }
  }

  /** Waits for the {@code n}-th return by {@code trigger}; its duration in ms. */
  private long awaitReturn(String trigger, int n) {
    awaitCount("back in the bootstrap (" + trigger, n, STEP);
    Matcher m = BACK.matcher(console);
    long ms = -1;
    while (m.find()) {
      if (m.group(1).equals(trigger)) {
        ms = Long.parseLong(m.group(2));
      }
    }
    return ms;
  }

  private void awaitCount(String text, int n, Duration timeout) {
    await(text)
        .atMost(timeout)
        .pollInterval(Duration.ofMillis(200))
        .until(() -> count(text) >= n || !qemu.isAlive());
    assertThat(count(text))
        .as("occurrences of \"%s\" on the serial console", text)
        .isGreaterThanOrEqualTo(n);
  }

  private int count(String text) {
    String all = console.toString();
    int n = 0;
    for (int i = all.indexOf(text); i >= 0; i = all.indexOf(text, i + 1)) {
      n++;
    }
    return n;
  }

  private void type(String line) throws IOException {
    typing.write((line + "\n").getBytes(StandardCharsets.US_ASCII));
    typing.flush();
  }

  /**
   * Runs one HMP command and waits for the monitor's next prompt: closing the connection before
   * QEMU has read the line loses the command.
   */
  private static void monitorCommand(Path monitor, String command) throws IOException {
    try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      c.connect(UnixDomainSocketAddress.of(monitor));
      StringBuilder seen = new StringBuilder();
      ByteBuffer buffer = ByteBuffer.allocate(4096);
      readUntil(c, buffer, seen, () -> seen.indexOf("(qemu)") >= 0);
      c.write(ByteBuffer.wrap((command + "\n").getBytes(StandardCharsets.US_ASCII)));
      int after = seen.length();
      readUntil(c, buffer, seen, () -> seen.indexOf("(qemu)", after) >= 0);
    }
  }

  private static void readUntil(
      SocketChannel c,
      ByteBuffer buffer,
      StringBuilder seen,
      java.util.function.BooleanSupplier done)
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

  private int serve(Map<String, Path> files) throws IOException {
    Map<String, Path> byPath = new ConcurrentHashMap<>(files);
    images = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    images.createContext(
        "/",
        exchange -> {
          Path file = byPath.get(exchange.getRequestURI().getPath());
          if (file == null) {
            exchange.sendResponseHeaders(404, -1);
          } else {
            exchange.sendResponseHeaders(200, Files.size(file));
            try (OutputStream out = exchange.getResponseBody()) {
              Files.copy(file, out);
            }
          }
          exchange.close();
        });
    images.start();
    return images.getAddress().getPort();
  }

  private static void copyLines(Process p, StringBuffer into, long t0) {
    try (BufferedReader r =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line; (line = r.readLine()) != null; ) {
        into.append(String.format("[%6.1f] %s%n", (System.nanoTime() - t0) / 1e9, line));
      }
    } catch (IOException e) {
      // QEMU ended
    }
  }

  private static boolean onPath(String exe) {
    for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (Files.isExecutable(Path.of(d, exe))) {
        return true;
      }
    }
    return false;
  }
}
