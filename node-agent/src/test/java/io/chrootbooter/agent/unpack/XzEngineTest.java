package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZ;
import org.tukaani.xz.XZOutputStream;

/**
 * liblzma and tukaani decode the same .xz data to the same bytes, fail on the same broken data, and
 * the fallback to tukaani is announced in one line.
 */
class XzEngineTest {
  private static final int BUF = LiblzmaInputStream.BUFFER;

  /** Sizes around the decoders' buffers, check types, several blocks and streams, padding. */
  static Stream<Arguments> inputs() throws IOException {
    List<Arguments> cases = new ArrayList<>();
    for (int size : new int[] {0, 1, 4095, 65_536, BUF - 1, BUF, BUF + 1, 3 * BUF + 17}) {
      cases.add(Arguments.of("random " + size, xz(random(size, size), XZ.CHECK_CRC64, 1)));
      cases.add(Arguments.of("text " + size, xz(text(size), XZ.CHECK_CRC64, 1)));
    }
    byte[] mixed = mixed(5 << 20);
    cases.add(Arguments.of("check none", xz(mixed, XZ.CHECK_NONE, 1)));
    cases.add(Arguments.of("check crc32", xz(mixed, XZ.CHECK_CRC32, 1)));
    cases.add(Arguments.of("check sha256", xz(mixed, XZ.CHECK_SHA256, 1)));
    cases.add(Arguments.of("seven blocks", xz(mixed, XZ.CHECK_CRC64, 7)));
    byte[] one = xz(text(70_000), XZ.CHECK_CRC32, 1);
    byte[] two = xz(random(BUF + 5, 2), XZ.CHECK_SHA256, 2);
    cases.add(Arguments.of("two streams", concat(one, two)));
    cases.add(Arguments.of("two streams, padding", concat(one, new byte[8], two, new byte[4])));
    cases.add(
        Arguments.of("two empty streams", concat(xz(new byte[0], 4, 1), xz(new byte[0], 0, 1))));
    return cases.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("inputs")
  void liblzmaAndTukaaniDecodeTheSameBytes(String name, byte[] compressed) throws IOException {
    byte[] expected = decode(tukaani(), compressed, 1 << 16);
    for (XzEngine engine : engines()) {
      // Whole reads, then reads of odd sizes (1 byte up to more than a buffer).
      assertThat(decode(engine, compressed, 1 << 20)).as(engine + ", " + name).isEqualTo(expected);
      assertThat(decode(engine, compressed, -1)).as(engine + " in pieces").isEqualTo(expected);
    }
  }

  @Test
  void bothDecodeWhatTheyAreGiven() throws IOException {
    byte[] data = mixed(3 << 20);
    for (XzEngine engine : engines()) {
      assertThat(decode(engine, xz(data, XZ.CHECK_CRC64, 2), 1 << 16)).isEqualTo(data);
    }
  }

  @Test
  void aStreamOfSixtyFourMebibytesDecodesAlike() throws Exception {
    // Streamed through both decoders from one compressed copy; compared by digest.
    byte[] data = mixed(64 << 20);
    byte[] compressed = xz(data, XZ.CHECK_CRC64, 1);
    String expected = sha256(new ByteArrayInputStream(data));
    for (XzEngine engine : engines()) {
      try (InputStream in = engine.open(new ByteArrayInputStream(compressed))) {
        assertThat(sha256(in)).as(engine.toString()).isEqualTo(expected);
      }
    }
  }

  /**
   * What {@code xz -T2} writes (blocks with their sizes in the headers, which liblzma's threaded
   * decoder decodes on several threads), decoded by both; a flipped bit in one block still fails.
   */
  @Test
  void blocksFromXzsThreadedEncoderDecodeAlike() throws Exception {
    byte[] data = mixed(12 << 20);
    byte[] compressed;
    Path plain = Files.createTempFile("cb-xz-", ".bin");
    try {
      Files.write(plain, data);
      Process xz =
          new ProcessBuilder("xz", "-T2", "--block-size=1MiB", "-3", "-c")
              .redirectInput(plain.toFile())
              .redirectError(ProcessBuilder.Redirect.DISCARD)
              .start();
      compressed = xz.getInputStream().readAllBytes();
      Assumptions.assumeTrue(xz.waitFor() == 0, "xz -T2 failed");
    } catch (IOException e) {
      Assumptions.abort("xz (xz-utils) is not installed: " + e.getMessage());
      return;
    } finally {
      Files.deleteIfExists(plain);
    }
    String expected = sha256(new ByteArrayInputStream(data));
    for (XzEngine engine : engines()) {
      try (InputStream in = engine.open(new ByteArrayInputStream(compressed))) {
        assertThat(sha256(in)).as(engine.toString()).isEqualTo(expected);
      }
    }
    byte[] flipped = compressed.clone();
    flipped[compressed.length / 3] ^= 0x10;
    for (XzEngine engine : engines()) {
      assertThatThrownBy(() -> decode(engine, flipped, 1 << 16))
          .as(engine.toString())
          .isInstanceOf(IOException.class);
    }
  }

  /**
   * Broken data fails in both decoders, never with bytes made up; liblzma names the cause (tukaani
   * throws some without a message, which ImageUnpacker names).
   */
  static Stream<Arguments> broken() throws IOException {
    byte[] good = xz(mixed(1 << 20), XZ.CHECK_CRC64, 1);
    byte[] flipped = good.clone();
    flipped[good.length / 2] ^= 0x40;
    byte[] badCheck = good.clone();
    badCheck[good.length - 13] ^= 1; // inside the last block's CRC64
    return Stream.of(
        Arguments.of("cut in the header", Arrays.copyOf(good, 7)),
        Arguments.of("cut in the middle", Arrays.copyOf(good, good.length / 2)),
        Arguments.of("cut before the footer", Arrays.copyOf(good, good.length - 5)),
        Arguments.of("a flipped bit", flipped),
        Arguments.of("a wrong check", badCheck),
        Arguments.of("not xz", "this is not an xz stream at all".getBytes()),
        Arguments.of("garbage after the stream", concat(good, "tail".getBytes())),
        Arguments.of("padding not a multiple of 4", concat(good, new byte[3])),
        Arguments.of("a 1 GiB dictionary", withDictionary(good, 36)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("broken")
  void brokenDataFailsInBoth(String name, byte[] compressed) {
    for (XzEngine engine : engines()) {
      assertThatThrownBy(() -> decode(engine, compressed, 1 << 16))
          .as(engine + ", " + name)
          .isInstanceOf(IOException.class);
    }
    assertThatThrownBy(() -> decode(liblzma(), compressed, 1 << 16))
        .satisfies(e -> assertThat(e.getMessage()).startsWith("xz data"));
  }

  @Test
  void aDictionaryAboveTheLimitSaysSo() throws IOException {
    byte[] huge = withDictionary(xz(text(1000), XZ.CHECK_CRC64, 1), 36);
    assertThatThrownBy(() -> decode(liblzma(), huge, 4096))
        .hasMessageContaining("needs more than 256 MiB of memory, the limit");
    assertThatThrownBy(() -> decode(tukaani(), huge, 4096))
        .hasMessageContaining("KiB of memory would be needed");
  }

  @Test
  void missingLiblzmaFallsBackToTukaaniAndSaysWhyInOneLine() {
    List<String> log = new ArrayList<>();
    XzEngine e = XzEngine.choose(Map.of(), "liblzma-missing.so.0", log::add);
    assertThat(e.kind()).isEqualTo(XzEngine.Kind.TUKAANI);
    assertThat(log)
        .singleElement()
        .asString()
        .startsWith("xz by tukaani (liblzma-missing.so.0 not usable (")
        .doesNotContain("\n");
  }

  @Test
  void demandedLiblzmaThatIsMissingFails() {
    assertThatThrownBy(
            () ->
                XzEngine.choose(Map.of("CB_XZ_ENGINE", "liblzma"), "liblzma-missing.so.0", s -> {}))
        .isInstanceOf(UnsatisfiedLinkError.class);
    assertThatThrownBy(() -> XzEngine.choose(Map.of("CB_XZ_ENGINE", "7z"), "x", s -> {}))
        .hasMessage(
            "CB_XZ_ENGINE \"7z\" is not one of auto, liblzma, tukaani (kernel argument"
                + " cb.xz-engine=)");
  }

  @Test
  void theAgentUsesLiblzmaWhereItIsInstalledAndSaysWhichVersion() {
    List<String> log = new ArrayList<>();
    XzEngine e = XzEngine.choose(Map.of(), LiblzmaInputStream.LIBLZMA, log::add);
    assertThat(e.kind()).isEqualTo(XzEngine.Kind.LIBLZMA);
    assertThat(log)
        .singleElement()
        .asString()
        .matches("xz by liblzma \\(liblzma\\.so\\.5 5\\.\\S+\\)");
    assertThat(XzEngine.get().kind()).isEqualTo(XzEngine.Kind.LIBLZMA);
  }

  @Test
  void closingTwiceAndReadingAfterCloseAreSafe() throws IOException {
    InputStream in = liblzma().open(new ByteArrayInputStream(xz(text(10_000), XZ.CHECK_CRC64, 1)));
    assertThat(in.read()).isNotNegative();
    in.close();
    in.close();
    assertThatThrownBy(in::read).isInstanceOf(IOException.class).hasMessage("xz stream closed");
  }

  private static List<XzEngine> engines() {
    return List.of(liblzma(), tukaani());
  }

  private static XzEngine liblzma() {
    XzEngine e;
    try {
      e = XzEngine.choose(Map.of("CB_XZ_ENGINE", "liblzma"), LiblzmaInputStream.LIBLZMA, s -> {});
    } catch (UnsatisfiedLinkError missing) {
      Assumptions.abort("liblzma.so.5 does not load here (apt-get install liblzma5): " + missing);
      throw missing;
    }
    assertThat(e.kind()).isEqualTo(XzEngine.Kind.LIBLZMA);
    return e;
  }

  private static XzEngine tukaani() {
    return XzEngine.choose(Map.of("CB_XZ_ENGINE", "tukaani"), "-", s -> {});
  }

  /** Decodes all of {@code compressed}; reads of {@code chunk} bytes, or of odd sizes when -1. */
  private static byte[] decode(XzEngine engine, byte[] compressed, int chunk) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (InputStream in = engine.open(new ByteArrayInputStream(compressed))) {
      byte[] b = new byte[BUF + 100];
      for (int i = 0; ; i++) {
        int want = chunk > 0 ? Math.min(chunk, b.length) : 1 + (i * 7919) % (BUF + 99);
        int n = in.read(b, 0, want);
        if (n < 0) {
          break;
        }
        assertThat(n).isBetween(1, want);
        out.write(b, 0, n);
      }
      assertThat(in.read()).isEqualTo(-1);
    }
    return out.toByteArray();
  }

  private static byte[] xz(byte[] data, int check, int blocks) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (XZOutputStream z = new XZOutputStream(out, new LZMA2Options(1), check)) {
      int per = Math.max(1, (data.length + blocks - 1) / blocks);
      for (int off = 0; off < data.length; off += per) {
        z.write(data, off, Math.min(per, data.length - off));
        if (off + per < data.length) {
          z.endBlock();
        }
      }
    }
    return out.toByteArray();
  }

  /** {@code good} with its first block's LZMA2 dictionary property set to {@code prop}. */
  private static byte[] withDictionary(byte[] good, int prop) {
    byte[] b = good.clone();
    // Stream header (12 bytes), then the block header: size byte, flags, filter id 0x21, props
    // size 1, the dictionary property, padding, CRC32 of everything before it.
    int size = ((b[12] & 0xff) + 1) * 4;
    assertThat(b[14]).isEqualTo((byte) 0x21);
    b[16] = (byte) prop;
    CRC32 crc = new CRC32();
    crc.update(b, 12, size - 4);
    ByteBuffer.wrap(b, 12 + size - 4, 4)
        .order(java.nio.ByteOrder.LITTLE_ENDIAN)
        .putInt((int) crc.getValue());
    return b;
  }

  private static byte[] random(int size, long seed) {
    byte[] b = new byte[size];
    new Random(seed).nextBytes(b);
    return b;
  }

  private static byte[] text(int size) {
    byte[] b = new byte[size];
    byte[] line = "the quick brown fox jumps over the lazy dog 0123456789\n".getBytes();
    for (int i = 0; i < size; i++) {
      b[i] = line[i % line.length];
    }
    return b;
  }

  /** Runs of text and of random bytes: some matches, some literals. */
  private static byte[] mixed(int size) {
    byte[] b = text(size);
    Random r = new Random(size);
    for (int off = 0; off < size; off += 40_000) {
      byte[] noise = new byte[Math.min(9_000, size - off)];
      r.nextBytes(noise);
      System.arraycopy(noise, 0, b, off, noise.length);
    }
    return b;
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.writeBytes(p);
    }
    return out.toByteArray();
  }

  private static String sha256(InputStream in) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    byte[] b = new byte[1 << 16];
    int n;
    while ((n = in.read(b)) >= 0) {
      md.update(b, 0, n);
    }
    return HexFormat.of().formatHex(md.digest());
  }
}
