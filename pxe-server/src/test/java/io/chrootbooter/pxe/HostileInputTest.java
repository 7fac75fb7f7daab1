package io.chrootbooter.pxe;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.pxe.dhcp.DhcpMessageType;
import io.chrootbooter.pxe.dhcp.DhcpOptions;
import io.chrootbooter.pxe.dhcp.DhcpPacket;
import io.chrootbooter.pxe.tftp.TftpPacket;
import java.io.IOException;
import java.io.InputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole server on loopback (ports chosen by the kernel), the operator a stand-in HTTP server:
 * garbage on all three ports never stops it answering good requests, and unknown machines get
 * nothing.
 */
class HostileInputTest {
  static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();
  static final String MAC = "52:54:00:12:34:56";

  @TempDir Path dir;
  StandInOperator operator;
  PxeServer server;
  DatagramSocket client;

  @BeforeEach
  void setUp() throws Exception {
    operator = new StandInOperator(MAC);
    Files.writeString(dir.resolve("undionly.kpxe"), "not really iPXE");
    PxeServerConfig config =
        PxeServerConfig.parse(
            "--operator", operator.url().toString(),
            "--bind", "127.0.0.1",
            "--dhcp-port", "0",
            "--pxe-port", "0",
            "--tftp-port", "0",
            "--tftp-root", dir.toString());
    server = PxeServer.start(config);
    client = new DatagramSocket(new InetSocketAddress(LOOPBACK, 0));
  }

  @AfterEach
  void tearDown() throws Exception {
    // Closed in reverse order, null ones (a failed setUp) skipped.
    try (StandInOperator o = operator;
        PxeServer s = server;
        DatagramSocket c = client) {
      // nothing to do but close
    }
  }

  @Test
  void survivesGarbageOnEveryPortAndStillAnswers() throws Exception {
    byte[] discover = capturedDiscover();
    List<byte[]> garbage = new ArrayList<>();
    Random random = new Random(1125);
    for (int size : new int[] {0, 1, 2, 3, 4, 239, 240, 241, 300, 1472, 1473, 9000, 65000}) {
      byte[] b = new byte[size];
      random.nextBytes(b);
      garbage.add(b);
    }
    for (int cut = 0; cut < discover.length; cut += 17) {
      garbage.add(Arrays.copyOf(discover, cut));
    }
    byte[] lyingLength = discover.clone();
    lyingLength[240 + 3 + 1] = (byte) 0xff; // option 57's length byte claims 255
    garbage.add(lyingLength);
    garbage.add(new byte[] {0, 1, 'a'}); // RRQ without NULs
    garbage.add(new byte[] {0, 2, 'a', 0, 'o', 'c', 't', 'e', 't', 0}); // WRQ
    garbage.add(new byte[] {0, 3, 0, 1, 9, 9}); // stray DATA
    // From a socket of its own: the TFTP port answers the WRQ with an ERROR.
    try (DatagramSocket attacker = new DatagramSocket(new InetSocketAddress(LOOPBACK, 0))) {
      for (InetSocketAddress port :
          List.of(server.dhcpAddress(), server.pxeAddress(), server.tftpAddress())) {
        for (byte[] g : garbage) {
          attacker.send(new DatagramPacket(g, g.length, port));
        }
      }
    }

    DhcpPacket offer = exchange(discover, server.dhcpAddress());
    assertThat(offer.options().messageType()).hasValue(DhcpMessageType.OFFER);
    assertThat(offer.file()).isEqualTo(operator.url() + "/boot/" + MAC + ".ipxe");
    assertThat(offer.siaddr().getHostAddress()).isEqualTo("127.0.0.1");

    byte[] request = asRequest(discover);
    DhcpPacket ack = exchange(request, server.pxeAddress());
    assertThat(ack.options().messageType()).hasValue(DhcpMessageType.ACK);
    assertThat(ack.file()).isEqualTo(offer.file());

    assertThat(firstTftpBlock("undionly.kpxe"))
        .isEqualTo("not really iPXE".getBytes(StandardCharsets.US_ASCII));
  }

  @Test
  void unknownMachinesGetNoAnswer() throws Exception {
    byte[] unknown = capturedDiscover();
    unknown[28 + 5] = 0x01; // MAC 52:54:00:12:34:01
    unknown[4] = 0x11; // another xid
    client.send(new DatagramPacket(unknown, unknown.length, server.dhcpAddress()));
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> operator.requests.contains("/boot/52:54:00:12:34:01.ipxe"));

    byte[] known = capturedDiscover();
    DhcpPacket reply = exchange(known, server.dhcpAddress());
    // Replies come back in order on loopback: had the unknown machine been answered, exchange()
    // would have seen that reply first and failed on its xid.
    assertThat(reply.clientMac()).hasValue(MAC);
  }

  /** Sends {@code request} until a reply with its xid arrives; fails on any other reply. */
  private DhcpPacket exchange(byte[] request, InetSocketAddress to) throws Exception {
    int xid = ByteBuffer.wrap(request, 4, 4).getInt();
    AtomicReference<DhcpPacket> reply = new AtomicReference<>();
    client.setSoTimeout(500);
    await()
        .atMost(Duration.ofSeconds(15))
        .pollInterval(Duration.ofMillis(1))
        .until(
            () -> {
              client.send(new DatagramPacket(request, request.length, to));
              byte[] buf = new byte[2048];
              DatagramPacket in = new DatagramPacket(buf, buf.length);
              try {
                client.receive(in);
              } catch (SocketTimeoutException e) {
                return false;
              }
              DhcpPacket p = DhcpPacket.decode(ByteBuffer.wrap(buf, 0, in.getLength()));
              assertThat(p.xid()).as("reply xid").isEqualTo(xid);
              reply.set(p);
              return true;
            });
    return reply.get();
  }

  private byte[] firstTftpBlock(String name) throws Exception {
    byte[] rrq = new TftpPacket.ReadRequest(name, "octet", Map.of()).encode();
    AtomicReference<byte[]> data = new AtomicReference<>();
    client.setSoTimeout(2000);
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              client.send(new DatagramPacket(rrq, rrq.length, server.tftpAddress()));
              byte[] buf = new byte[2048];
              DatagramPacket in = new DatagramPacket(buf, buf.length);
              try {
                client.receive(in);
              } catch (SocketTimeoutException e) {
                return false;
              }
              TftpPacket p = TftpPacket.decode(ByteBuffer.wrap(buf, 0, in.getLength()));
              if (p instanceof TftpPacket.Data d && d.block() == 1) {
                data.set(d.data());
                byte[] ack = new TftpPacket.Ack(1).encode();
                client.send(new DatagramPacket(ack, ack.length, in.getSocketAddress()));
                return true;
              }
              return false;
            });
    return data.get();
  }

  /** The captured discover turned into the DHCPREQUEST iPXE unicasts to port 4011. */
  private static byte[] asRequest(byte[] discover) throws Exception {
    DhcpPacket d = DhcpPacket.decode(ByteBuffer.wrap(discover));
    return new DhcpPacket(
            d.op(),
            d.htype(),
            d.hlen(),
            0,
            d.xid() + 1,
            0,
            0,
            null,
            null,
            null,
            null,
            d.chaddr(),
            "",
            "",
            d.options()
                .with(DhcpOptions.MESSAGE_TYPE, new byte[] {3})
                .with(DhcpOptions.SERVER_IDENTIFIER, new byte[] {127, 0, 0, 1}))
        .encode();
  }

  static byte[] capturedDiscover() throws IOException {
    try (InputStream in =
        HostileInputTest.class.getResourceAsStream(
            "/io/chrootbooter/pxe/dhcp/ipxe-2019-discover.hex")) {
      return HexFormat.of()
          .parseHex(new String(in.readAllBytes(), StandardCharsets.US_ASCII).trim());
    }
  }
}
