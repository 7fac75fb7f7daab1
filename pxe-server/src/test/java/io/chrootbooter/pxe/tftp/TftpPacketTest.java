package io.chrootbooter.pxe.tftp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.pxe.tftp.TftpPacket.Ack;
import io.chrootbooter.pxe.tftp.TftpPacket.Data;
import io.chrootbooter.pxe.tftp.TftpPacket.Error;
import io.chrootbooter.pxe.tftp.TftpPacket.OptionAck;
import io.chrootbooter.pxe.tftp.TftpPacket.ReadRequest;
import io.chrootbooter.pxe.tftp.TftpPacket.WriteRequest;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class TftpPacketTest {

  static Stream<Arguments> packets() {
    return Stream.of(
        // What iPXE 2019 sends for its first stage: RRQ with blksize 1432 and tsize 0.
        Arguments.of(
            "0001"
                + hex("undionly.kpxe")
                + "00"
                + hex("octet")
                + "00"
                + hex("blksize")
                + "00"
                + hex("1432")
                + "00"
                + hex("tsize")
                + "00"
                + hex("0")
                + "00",
            new ReadRequest("undionly.kpxe", "octet", Map.of("blksize", "1432", "tsize", "0"))),
        Arguments.of(
            "0002" + hex("x") + "00" + hex("octet") + "00",
            new WriteRequest("x", "octet", Map.of())),
        Arguments.of("00030001cafe", new Data(1, new byte[] {(byte) 0xca, (byte) 0xfe})),
        Arguments.of("0003ffff", new Data(65535, new byte[0])),
        Arguments.of("00040000", new Ack(0)),
        Arguments.of("00050001" + hex("File not found") + "00", new Error(1, "File not found")),
        Arguments.of(
            "0006"
                + hex("blksize")
                + "00"
                + hex("1428")
                + "00"
                + hex("tsize")
                + "00"
                + hex("74213")
                + "00",
            new OptionAck(Map.of("blksize", "1428", "tsize", "74213"))));
  }

  @ParameterizedTest
  @MethodSource("packets")
  void decodesAndEncodesTheRfcLayout(String wire, TftpPacket packet) throws Exception {
    byte[] bytes = HexFormat.of().parseHex(wire);
    assertThat(TftpPacket.decode(ByteBuffer.wrap(bytes))).isEqualTo(packet);
    assertThat(TftpPacket.decode(ByteBuffer.wrap(packet.encode()))).isEqualTo(packet);
  }

  @Test
  void optionNamesAndModeAreCaseInsensitive() throws Exception {
    byte[] rrq =
        HexFormat.of()
            .parseHex(
                "0001"
                    + hex("a")
                    + "00"
                    + hex("OCTET")
                    + "00"
                    + hex("BlkSize")
                    + "00"
                    + hex("8")
                    + "00");
    assertThat(TftpPacket.decode(ByteBuffer.wrap(rrq)))
        .isEqualTo(new ReadRequest("a", "octet", Map.of("blksize", "8")));
  }

  static Stream<Arguments> malformed() {
    return Stream.of(
        Arguments.of("00", "TFTP packet is 1 bytes; minimum is 2"),
        Arguments.of("0009", "TFTP opcode is 9; expected 1 (RRQ) to 6 (OACK)"),
        Arguments.of("000400", "TFTP ACK is 3 bytes; expected 4"),
        Arguments.of("0004000100", "TFTP ACK is 5 bytes; expected 4"),
        Arguments.of("000300", "TFTP DATA is 3 bytes; minimum is 4"),
        Arguments.of("000500", "TFTP ERROR is 3 bytes; minimum is 4"),
        Arguments.of("0001" + hex("a") + "00", "TFTP RRQ has 1 strings; needs filename and mode"),
        Arguments.of(
            "0001" + hex("a") + "00" + hex("octet"),
            "TFTP RRQ ends with 5 bytes that are not NUL-terminated at offset 4"),
        Arguments.of(
            "0001" + hex("a") + "00" + hex("octet") + "00" + hex("blksize") + "00",
            "TFTP RRQ option \"blksize\" has no value"));
  }

  @ParameterizedTest
  @MethodSource("malformed")
  void rejectsWithSizesAndValues(String wire, String message) {
    assertThatThrownBy(() -> TftpPacket.decode(ByteBuffer.wrap(HexFormat.of().parseHex(wire))))
        .isInstanceOf(MalformedTftpPacketException.class)
        .hasMessage(message);
  }

  @Test
  void rejectsOversizedPackets() {
    assertThatThrownBy(() -> TftpPacket.decode(ByteBuffer.allocate(TftpPacket.MAX_SIZE + 1)))
        .isInstanceOf(MalformedTftpPacketException.class)
        .hasMessage("TFTP packet is 65469 bytes; maximum is 65468");
  }

  @Test
  void negotiatesBlksizeTsizeTimeoutAndIgnoresTheRest() {
    TftpNegotiation n =
        TftpNegotiation.negotiate(
            Map.of("blksize", "8192", "tsize", "0", "timeout", "3", "windowsize", "16"),
            74213,
            1468,
            1,
            5);
    assertThat(n.blockSize()).isEqualTo(1468);
    assertThat(n.timeoutSeconds()).isEqualTo(3);
    assertThat(n.acknowledged())
        .isEqualTo(Map.of("blksize", "1468", "tsize", "74213", "timeout", "3"));

    TftpNegotiation plain =
        TftpNegotiation.negotiate(
            Map.of("blksize", "7", "timeout", "0", "tsize", "x"), 10, 1468, 1, 5);
    assertThat(plain.acknowledged()).isEmpty();
    assertThat(plain.blockSize()).isEqualTo(512);
    assertThat(plain.timeoutSeconds()).isEqualTo(1);
  }

  @Test
  void aTimeoutAboveTheCapIsNotGranted() {
    TftpNegotiation atCap = TftpNegotiation.negotiate(Map.of("timeout", "5"), 10, 1468, 1, 5);
    assertThat(atCap.timeoutSeconds()).isEqualTo(5);
    assertThat(atCap.acknowledged()).isEqualTo(Map.of("timeout", "5"));

    TftpNegotiation greedy = TftpNegotiation.negotiate(Map.of("timeout", "255"), 10, 1468, 1, 5);
    assertThat(greedy.timeoutSeconds()).isEqualTo(1);
    assertThat(greedy.acknowledged()).isEmpty();
  }

  static String hex(String s) {
    return HexFormat.of().formatHex(s.getBytes(StandardCharsets.US_ASCII));
  }
}
