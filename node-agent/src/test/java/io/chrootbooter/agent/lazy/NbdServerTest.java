package io.chrootbooter.agent.lazy;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.OperatorCredential;
import io.chrootbooter.protocol.Backoff;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's NBD server and its HTTP-backed blocks, read by libnbd's {@code nbdcopy} and {@code
 * nbdinfo} (Debian: libnbd-bin) — a real NBD client, in user space, so no kernel module is needed —
 * from an image served on 127.0.0.1 with ranges, an ETag and a session.
 */
class NbdServerTest {
  private static final String SESSION = "Bearer s3ss10n";
  private static final String SHA = "c0ffee".repeat(10) + "abcd";

  @TempDir Path dir;
  private byte[] image;
  private RangeServer http;
  private HttpBlocks blocks;
  private NbdServer nbd;

  @BeforeAll
  static void libnbdPresent() throws Exception {
    Assumptions.assumeTrue(
        run(List.of("sh", "-c", "command -v nbdcopy && command -v nbdinfo")).exit == 0,
        "nbdcopy/nbdinfo are not installed (Debian: apt-get install libnbd-bin)");
  }

  record Run(int exit, String output) {}

  static Run run(List<String> command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    return new Run(p.waitFor(), out);
  }

  @BeforeEach
  void serve() throws Exception {
    image = new byte[3 * 1024 * 1024 + 100]; // not a whole number of 4 KiB blocks
    new Random(24).nextBytes(image);
    http = new RangeServer(image, SHA, SESSION);
    URI url = URI.create(http.url());
    OperatorCredential.use(url, () -> SESSION);
    long size = (image.length + 4095L) / 4096 * 4096;
    FetchOptions options =
        new FetchOptions(
            new Backoff(2, Duration.ofMillis(50), Duration.ofMillis(100)),
            Duration.ofSeconds(5),
            new CancelSignal(),
            p -> {},
            1000);
    blocks = new HttpBlocks(url, SHA, size, image.length, dir.resolve("blocks"), options);
    nbd = NbdServer.start(dir.resolve("nbd.sock"), "lazy", blocks, 4);
  }

  @AfterEach
  void stop() throws Exception {
    try {
      if (nbd != null) {
        nbd.close();
      }
      if (blocks != null) {
        blocks.close();
      }
    } finally {
      if (http != null) {
        http.close();
      }
      OperatorCredential.clear();
    }
  }

  private String uri() {
    return "nbd+unix:///lazy?socket=" + nbd.socket();
  }

  private Run copy(Path out) throws Exception {
    Files.deleteIfExists(out);
    Files.createFile(out);
    return run(List.of("nbdcopy", uri(), out.toString()));
  }

  @Test
  void aServedImageReadsByteForByteAndEachPieceCrossesTheNetworkOnce() throws Exception {
    Run info = run(List.of("nbdinfo", uri()));
    assertThat(info.exit).as(info.output).isZero();
    assertThat(info.output).contains("export-size: " + (image.length + 4095L) / 4096 * 4096);
    assertThat(info.output).containsPattern("is_read_only: true");

    Path out = dir.resolve("out");
    Run r = copy(out);
    assertThat(r.exit).as(r.output).isZero();
    byte[] padded = Arrays.copyOf(image, (int) ((image.length + 4095L) / 4096 * 4096));
    assertThat(Files.readAllBytes(out)).isEqualTo(padded);
    int pieces = (padded.length + HttpBlocks.CHUNK - 1) / HttpBlocks.CHUNK;
    assertThat(http.ranges()).isEqualTo(pieces);
    assertThat(blocks.complete()).isTrue();
    assertThat(blocks.fetchedBytes()).isEqualTo(image.length);

    // All local now: the network is not needed any more.
    http.down(true);
    r = copy(out);
    assertThat(r.exit).as(r.output).isZero();
    assertThat(Files.readAllBytes(out)).isEqualTo(padded);
    assertThat(http.ranges()).isEqualTo(pieces);
  }

  @Test
  void prefetchMakesTheImageLocal() throws Exception {
    assertThat(blocks.complete()).isFalse();
    blocks.prefetch();
    assertThat(blocks.complete()).isTrue();
    http.down(true);
    Path out = dir.resolve("out");
    Run r = copy(out);
    assertThat(r.exit).as(r.output).isZero();
    assertThat(Arrays.copyOf(Files.readAllBytes(out), image.length)).isEqualTo(image);
  }

  @Test
  void aPieceThatCannotBeHadIsAnIoErrorAndIsFetchedOnTheNextRead() throws Exception {
    http.down(true);
    Path out = dir.resolve("out");
    long started = System.nanoTime();
    Run r = copy(out);
    assertThat(r.exit).as(r.output).isNotZero();
    assertThat(r.output).containsIgnoringCase("Input/output error");
    assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(20));
    http.down(false);
    r = copy(out);
    assertThat(r.exit).as(r.output).isZero();
    assertThat(Arrays.copyOf(Files.readAllBytes(out), image.length)).isEqualTo(image);
  }

  @Test
  void anImageServedUnderAnotherDigestOrWithoutTheSessionIsNeverRead() throws Exception {
    OperatorCredential.use(URI.create(http.url()), () -> "Bearer wrong");
    Run r = copy(dir.resolve("out"));
    assertThat(r.exit).as(r.output).isNotZero();
    assertThat(http.ranges()).isZero();
  }

  /** A client of our own for what libnbd never sends. */
  private SocketChannel handshake() throws IOException {
    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
    ch.connect(UnixDomainSocketAddress.of(nbd.socket()));
    ByteBuffer hello = read(ch, 18);
    assertThat(hello.getLong()).isEqualTo(NbdServer.NBDMAGIC);
    assertThat(hello.getLong()).isEqualTo(NbdServer.IHAVEOPT);
    write(ch, ByteBuffer.allocate(4).putInt(3).flip());
    byte[] name = "lazy".getBytes(StandardCharsets.UTF_8);
    write(
        ch,
        ByteBuffer.allocate(16 + name.length)
            .putLong(NbdServer.IHAVEOPT)
            .putInt(NbdServer.OPT_EXPORT_NAME)
            .putInt(name.length)
            .put(name)
            .flip());
    ByteBuffer export = read(ch, 10);
    assertThat(export.getLong()).isEqualTo((image.length + 4095L) / 4096 * 4096);
    return ch;
  }

  private static int request(SocketChannel ch, int type, long offset, int length)
      throws IOException {
    write(
        ch,
        ByteBuffer.allocate(28)
            .putInt(NbdServer.REQUEST_MAGIC)
            .putShort((short) 0)
            .putShort((short) type)
            .putLong(77)
            .putLong(offset)
            .putInt(length)
            .flip());
    if (type == NbdServer.CMD_WRITE) {
      write(ch, ByteBuffer.allocate(length));
    }
    ByteBuffer reply = read(ch, 16);
    assertThat(reply.getInt()).isEqualTo(NbdServer.SIMPLE_REPLY_MAGIC);
    int error = reply.getInt();
    assertThat(reply.getLong()).isEqualTo(77);
    if (error == 0 && type == NbdServer.CMD_READ) {
      read(ch, length);
    }
    return error;
  }

  @Test
  void hostileRequestsGetErrorsOrADisconnectAndHarmNothing() throws Exception {
    try (SocketChannel ch = handshake()) {
      long size = (image.length + 4095L) / 4096 * 4096;
      assertThat(request(ch, NbdServer.CMD_READ, size - 4096, 8192)).isEqualTo(NbdServer.EINVAL);
      assertThat(request(ch, NbdServer.CMD_READ, Long.MAX_VALUE - 10, 4096))
          .isEqualTo(NbdServer.EINVAL);
      assertThat(request(ch, NbdServer.CMD_READ, 0, -1)).isEqualTo(NbdServer.EINVAL);
      assertThat(request(ch, NbdServer.CMD_WRITE, 0, 4096)).isEqualTo(NbdServer.EPERM);
      assertThat(request(ch, 99, 0, 0)).isEqualTo(NbdServer.EINVAL);
      assertThat(request(ch, NbdServer.CMD_READ, 4096, 4096)).isZero();
      // A request without its magic ends the connection.
      write(ch, ByteBuffer.allocate(28));
      assertThat(ch.read(ByteBuffer.allocate(1))).isEqualTo(-1);
    }
    try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      ch.connect(UnixDomainSocketAddress.of(nbd.socket()));
      read(ch, 18);
      write(ch, ByteBuffer.allocate(4).putInt(3).flip());
      write(
          ch,
          ByteBuffer.allocate(16)
              .putLong(NbdServer.IHAVEOPT)
              .putInt(NbdServer.OPT_GO)
              .putInt(Integer.MAX_VALUE)
              .flip());
      assertThat(ch.read(ByteBuffer.allocate(1))).isEqualTo(-1);
    }
    // The server serves on.
    Run r = copy(dir.resolve("out"));
    assertThat(r.exit).as(r.output).isZero();
  }

  @Test
  void closingRemovesTheSocketAndTheCachedBlocks() throws Exception {
    Run r = copy(dir.resolve("out"));
    assertThat(r.exit).as(r.output).isZero();
    Path socket = nbd.socket();
    assertThat(socket).exists();
    assertThat(dir.resolve("blocks")).exists();
    nbd.close();
    blocks.close();
    assertThat(socket).doesNotExist();
    assertThat(dir.resolve("blocks")).doesNotExist();
    nbd = null;
    blocks = null;
  }

  private static ByteBuffer read(SocketChannel ch, int n) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(n);
    while (b.hasRemaining()) {
      if (ch.read(b) < 0) {
        throw new IOException("closed after " + b.position() + " of " + n + " bytes");
      }
    }
    return b.flip();
  }

  private static void write(SocketChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }
}
