package io.chrootbooter.pxe.tftp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.chrootbooter.pxe.tftp.TftpPacket.Ack;
import io.chrootbooter.pxe.tftp.TftpPacket.Data;
import io.chrootbooter.pxe.tftp.TftpPacket.Error;
import io.chrootbooter.pxe.tftp.TftpPacket.OptionAck;
import io.chrootbooter.pxe.tftp.TftpPacket.ReadRequest;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The TFTP server against curl (a real client) and against a raw client for the corner cases. */
class TftpServerTest {
  static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();
  static final Path DEBIAN_IPXE = Path.of("/usr/lib/ipxe");

  @TempDir Path dir;
  Path rootDir;
  byte[] blob;
  TftpServer server;

  @BeforeAll
  static void curlSpeaksTftp() throws Exception {
    Process p = new ProcessBuilder("curl", "-V").redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assumeTrue(
        p.waitFor() == 0 && out.contains("tftp"),
        "curl with TFTP support is needed (Debian package curl)");
  }

  @BeforeEach
  void setUp() throws Exception {
    rootDir = Files.createDirectory(dir.resolve("root"));
    blob = new byte[3 * 512 + 100];
    new Random(7).nextBytes(blob);
    Files.write(rootDir.resolve("blob.bin"), blob);
    Files.write(rootDir.resolve("exact.bin"), new byte[1024]);
    Files.writeString(dir.resolve("secret"), "secret");
    Files.createSymbolicLink(rootDir.resolve("escape"), dir.resolve("secret"));
    server = start(rootDir, TftpServer.Settings.DEFAULTS);
  }

  @AfterEach
  void tearDown() {
    server.close();
  }

  @Test
  void curlFetchesDebiansIpxeBinariesByteForByte() throws Exception {
    assumeTrue(
        Files.isRegularFile(DEBIAN_IPXE.resolve("undionly.kpxe")),
        "Debian package ipxe is needed for /usr/lib/ipxe/undionly.kpxe");
    try (TftpServer debian = start(DEBIAN_IPXE, TftpServer.Settings.DEFAULTS)) {
      for (String name : List.of("undionly.kpxe", "snponly.efi")) {
        Path out = dir.resolve(name);
        assertThat(curl(debian, name, out)).isZero();
        assertThat(Files.mismatch(out, DEBIAN_IPXE.resolve(name))).isEqualTo(-1L);
      }
    }
  }

  @Test
  void curlNegotiatesBlksize() throws Exception {
    for (String blksize : List.of("8", "1428", "9000")) {
      Path out = dir.resolve("blob-" + blksize);
      assertThat(curl(server, "blob.bin", out, "--tftp-blksize", blksize)).isZero();
      assertThat(Files.readAllBytes(out)).isEqualTo(blob);
    }
  }

  @Test
  void fileOfWholeBlocksEndsWithAnEmptyBlock() throws Exception {
    Path out = dir.resolve("exact");
    assertThat(curl(server, "exact.bin", out)).isZero();
    assertThat(Files.size(out)).isEqualTo(1024);
  }

  @Test
  void blockNumbersWrapAroundForLargeFiles() throws Exception {
    // 65,536 blocks of 8 bytes and then some: block 65535 is followed by block 0.
    byte[] big = new byte[8 * 65_540 + 3];
    new Random(9).nextBytes(big);
    Files.write(rootDir.resolve("big.bin"), big);
    Path out = dir.resolve("big");
    assertThat(curl(server, "big.bin", out, "--tftp-blksize", "8")).isZero();
    assertThat(Files.readAllBytes(out)).isEqualTo(big);
  }

  @Test
  void curlIsRefusedPathsOutsideTheRoot() throws Exception {
    Path out = dir.resolve("stolen");
    // curl exit 69 = CURLE_REMOTE_ACCESS_DENIED (TFTP error 2), 68 = CURLE_TFTP_NOTFOUND.
    assertThat(curl(server, "../secret", out, "--path-as-is")).isEqualTo(69);
    assertThat(curl(server, "/" + dir.resolve("secret"), out)).isEqualTo(69);
    assertThat(curl(server, "escape", out)).isEqualTo(69);
    assertThat(curl(server, "missing.bin", out)).isEqualTo(68);
    assertThat(out).doesNotExist();
  }

  @Test
  void uploadsAreRefusedAndNothingIsWritten() throws Exception {
    Path upload = Files.writeString(dir.resolve("upload.txt"), "hello");
    Process p =
        new ProcessBuilder("curl", "-sS", "-T", upload.toString(), url(server, "upload.txt"))
            .redirectErrorStream(true)
            .start();
    p.getInputStream().readAllBytes();
    assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).isEqualTo(69);
    assertThat(rootDir.resolve("upload.txt")).doesNotExist();
  }

  @Test
  void retransmitsAnUnacknowledgedBlock() throws Exception {
    try (DatagramSocket client = client()) {
      send(client, server.address(), new ReadRequest("blob.bin", "octet", Map.of()));
      Received first = receive(client);
      assertThat(first.packet()).isEqualTo(new Data(1, java.util.Arrays.copyOf(blob, 512)));
      // No ACK: the same block comes again from the same transfer ID after the timeout.
      Received again = receive(client);
      assertThat(again.packet()).isEqualTo(first.packet());
      assertThat(again.from()).isEqualTo(first.from());
      send(client, first.from(), new Ack(1));
      assertThat(receive(client).packet())
          .isInstanceOfSatisfying(Data.class, d -> assertThat(d.block()).isEqualTo(2));
    }
  }

  @Test
  void answersOptionsWithAnOackAndAwaitsAck0() throws Exception {
    try (DatagramSocket client = client()) {
      send(
          client,
          server.address(),
          new ReadRequest("blob.bin", "octet", Map.of("blksize", "1000", "tsize", "0")));
      Received oack = receive(client);
      assertThat(oack.packet())
          .isEqualTo(
              new OptionAck(Map.of("blksize", "1000", "tsize", Integer.toString(blob.length))));
      send(client, oack.from(), new Ack(0));
      assertThat(receive(client).packet())
          .isEqualTo(new Data(1, java.util.Arrays.copyOf(blob, 1000)));
      send(client, oack.from(), new TftpPacket.Error(0, "test done"));
    }
  }

  @Test
  void limitsConcurrentTransfers() throws Exception {
    try (TftpServer one = start(rootDir, TftpServer.Settings.DEFAULTS.withMaxTransfers(1));
        DatagramSocket first = client();
        DatagramSocket second = client()) {
      send(first, one.address(), new ReadRequest("blob.bin", "octet", Map.of()));
      assertThat(receive(first).packet()).isInstanceOf(Data.class);
      send(second, one.address(), new ReadRequest("blob.bin", "octet", Map.of()));
      assertThat(receive(second).packet())
          .isEqualTo(new Error(0, "busy: 1 transfers running; try again"));
    }
  }

  /**
   * A client on the machine network asks for the longest timeout 64 times and never acknowledges:
   * it gets {@code maxPerClient} transfers and an ERROR at once for the rest, and a machine at
   * another address is still served within a second.
   */
  @Test
  void oneClientCannotHoldTheServerHostage() throws Exception {
    List<DatagramSocket> attacker = new java.util.ArrayList<>();
    try (DatagramSocket machine = new DatagramSocket(new InetSocketAddress("127.0.0.2", 0))) {
      machine.setSoTimeout(5000);
      int busy = 0;
      for (int i = 0; i < 64; i++) {
        DatagramSocket s = client();
        attacker.add(s);
        send(s, server.address(), new ReadRequest("blob.bin", "octet", Map.of("timeout", "255")));
      }
      for (DatagramSocket s : attacker) {
        // A granted transfer starts with DATA 1 (the 255 s timeout is not acknowledged: no OACK).
        TftpPacket first = receive(s).packet();
        if (first instanceof Error e) {
          assertThat(e.message()).isEqualTo("busy: 4 transfers to this address; try again");
          busy++;
        } else {
          assertThat(first).isInstanceOf(Data.class);
        }
      }
      assertThat(busy).isEqualTo(64 - TftpServer.Settings.DEFAULTS.maxPerClient());

      long start = System.nanoTime();
      send(machine, server.address(), new ReadRequest("blob.bin", "octet", Map.of()));
      assertThat(receive(machine).packet())
          .isEqualTo(new Data(1, java.util.Arrays.copyOf(blob, 512)));
      assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(1000);
    } finally {
      attacker.forEach(DatagramSocket::close);
    }
  }

  @Test
  void aTransferEndsAfterItsLifetimeHoweverSlowItsClient() throws Exception {
    TftpServer.Settings oneSecond = new TftpServer.Settings(32, 4, 512, 1, 5, 100, 1);
    try (TftpServer slow = start(rootDir, oneSecond);
        DatagramSocket client = client()) {
      send(client, slow.address(), new ReadRequest("blob.bin", "octet", Map.of()));
      Received first = receive(client);
      assertThat(first.packet()).isInstanceOf(Data.class);
      // Never acknowledged: the server resends block 1 each second; with 100 retries allowed it
      // would go on for 100 s, but the transfer's lifetime ends it after 1 s.
      long start = System.nanoTime();
      int resent = 0;
      client.setSoTimeout(3000);
      try {
        while (true) {
          receive(client);
          resent++;
        }
      } catch (java.net.SocketTimeoutException quiet) {
        // the server stopped sending
      }
      assertThat(resent).isLessThanOrEqualTo(2);
      assertThat(TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start)).isLessThan(6);
    }
  }

  @Test
  void refusesNetasciiMode() throws Exception {
    try (DatagramSocket client = client()) {
      send(client, server.address(), new ReadRequest("blob.bin", "netascii", Map.of()));
      assertThat(receive(client).packet())
          .isEqualTo(new Error(4, "mode \"netascii\" is not served; only octet"));
    }
  }

  record Received(TftpPacket packet, InetSocketAddress from) {}

  static TftpServer start(Path root, TftpServer.Settings settings) throws IOException {
    return TftpServer.start(new TftpRoot(root), new InetSocketAddress(LOOPBACK, 0), settings);
  }

  static DatagramSocket client() throws IOException {
    DatagramSocket s = new DatagramSocket(new InetSocketAddress(LOOPBACK, 0));
    s.setSoTimeout(5000);
    return s;
  }

  static void send(DatagramSocket s, InetSocketAddress to, TftpPacket packet) throws IOException {
    byte[] b = packet.encode();
    s.send(new DatagramPacket(b, b.length, to));
  }

  static Received receive(DatagramSocket s) throws Exception {
    byte[] buf = new byte[70000];
    DatagramPacket p = new DatagramPacket(buf, buf.length);
    s.receive(p);
    return new Received(
        TftpPacket.decode(ByteBuffer.wrap(buf, 0, p.getLength())),
        (InetSocketAddress) p.getSocketAddress());
  }

  static String url(TftpServer server, String name) {
    return "tftp://127.0.0.1:" + server.address().getPort() + "/" + name;
  }

  static int curl(TftpServer server, String name, Path out, String... extra) throws Exception {
    List<String> cmd = new java.util.ArrayList<>(List.of("curl", "-sS", "--max-time", "60"));
    cmd.addAll(List.of(extra));
    cmd.addAll(List.of("-o", out.toString(), url(server, name)));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    p.getInputStream().readAllBytes();
    assertThat(p.waitFor(70, TimeUnit.SECONDS)).as("curl finished").isTrue();
    return p.exitValue();
  }
}
