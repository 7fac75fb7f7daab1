package io.chrootbooter.agent.fetch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The native SHA-256 and the JDK's fallback give the same digests; the fallback is announced. */
class Sha256EngineTest {
  private static final HexFormat HEX = HexFormat.of();

  /** Lengths around SHA-256's 64-byte block and its 55/56-byte padding edge, and the slice. */
  static Stream<Arguments> inputs() {
    int[] lengths = {
      0,
      1,
      3,
      55,
      56,
      63,
      64,
      65,
      127,
      128,
      129,
      1000,
      4096,
      LibcryptoSha256.SLICE - 1,
      LibcryptoSha256.SLICE,
      LibcryptoSha256.SLICE + 1,
      3 * LibcryptoSha256.SLICE + 17
    };
    return java.util.Arrays.stream(lengths).mapToObj(Arguments::of);
  }

  @ParameterizedTest
  @MethodSource("inputs")
  void libcryptoAndJdkAgreeWithMessageDigest(int length) throws Exception {
    byte[] data = new byte[length + 7];
    new Random(length).nextBytes(data);
    String expected = HEX.formatHex(md(data, 3, length));
    for (Sha256Engine engine : engines()) {
      // Whole, then in odd pieces at an offset: the slices must not lose or repeat a byte.
      try (Sha256 sha = engine.start()) {
        sha.update(data, 3, length);
        assertThat(HEX.formatHex(sha.digest()))
            .as(engine + ", length " + length)
            .isEqualTo(expected);
      }
      try (Sha256 sha = engine.start()) {
        int off = 3;
        int left = length;
        while (left > 0) {
          int n = Math.min(left, 1 + (left * 7 + 13) % 70_001);
          sha.update(data, off, n);
          off += n;
          left -= n;
        }
        assertThat(HEX.formatHex(sha.digest())).as(engine + " in pieces").isEqualTo(expected);
      }
    }
  }

  @Test
  void knownAnswers() {
    // FIPS 180-4 examples (NIST CSRC "SHA256.pdf") and the empty message.
    Map<String, String> vectors =
        Map.of(
            "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    for (Sha256Engine engine : engines()) {
      vectors.forEach(
          (message, digest) -> {
            try (Sha256 sha = engine.start()) {
              byte[] b = message.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
              sha.update(b, 0, b.length);
              assertThat(HEX.formatHex(sha.digest()))
                  .as(engine + " \"" + message + "\"")
                  .isEqualTo(digest);
            }
          });
    }
  }

  @Test
  void multiMebibyteStreamsInOddChunksAgree() throws Exception {
    byte[] data = new byte[(9 << 20) + 5];
    new Random(9).nextBytes(data);
    String expected = HEX.formatHex(md(data, 0, data.length));
    // Chunks below, at and across SHA-256's block, the 64 KiB reads and the native slice.
    int[] chunks = {1, 7, 55, 64, 65, 4093, 65_537, LibcryptoSha256.SLICE + 3, 1_000_003};
    for (Sha256Engine engine : engines()) {
      for (int first = 0; first < chunks.length; first++) {
        try (Sha256 sha = engine.start()) {
          int off = 0;
          for (int i = first; off < data.length; i++) {
            int n = Math.min(chunks[i % chunks.length], data.length - off);
            sha.update(data, off, n);
            off += n;
          }
          assertThat(HEX.formatHex(sha.digest()))
              .as(engine + ", chunks from " + chunks[first])
              .isEqualTo(expected);
        }
      }
    }
  }

  @Test
  void oneGibibyteStreamsToTheSameDigest() throws Exception {
    byte[] chunk = new byte[1 << 20];
    new Random(1).nextBytes(chunk);
    MessageDigest reference = MessageDigest.getInstance("SHA-256");
    Sha256Engine engine = libcrypto();
    try (Sha256 sha = engine.start()) {
      for (int i = 0; i < 1024; i++) {
        chunk[i] ^= (byte) i; // a different MiB each time
        sha.update(chunk, 0, chunk.length);
        reference.update(chunk, 0, chunk.length);
      }
      assertThat(HEX.formatHex(sha.digest())).isEqualTo(HEX.formatHex(reference.digest()));
    }
  }

  @Test
  void fallsBackToTheJdkAndSaysSoOnceWhenLibcryptoIsMissing() {
    List<String> log = new ArrayList<>();
    Sha256Engine engine = Sha256Engine.choose(Map.of(), "libcrypto-missing.so.0", log::add);
    assertThat(engine.kind()).isEqualTo(Sha256Engine.Kind.JDK);
    try (Sha256 a = engine.start();
        Sha256 b = engine.start()) {
      a.update(new byte[1], 0, 1);
      assertThat(HEX.formatHex(a.digest()))
          .isEqualTo("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
      assertThat(HEX.formatHex(b.digest()))
          .isEqualTo("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
    assertThat(log)
        .singleElement()
        .asString()
        .startsWith("SHA-256 by jdk (libcrypto-missing.so.0 not usable (")
        .doesNotContain("\n");
  }

  @Test
  void demandedLibcryptoThatIsMissingFails() {
    assertThatThrownBy(
            () ->
                Sha256Engine.choose(
                    Map.of("CB_SHA256_ENGINE", "libcrypto"), "libcrypto-missing.so.0", s -> {}))
        .isInstanceOf(UnsatisfiedLinkError.class);
    assertThatThrownBy(() -> Sha256Engine.choose(Map.of("CB_SHA256_ENGINE", "gpu"), "x", s -> {}))
        .hasMessage(
            "CB_SHA256_ENGINE \"gpu\" is not one of auto, libcrypto, jdk (kernel argument"
                + " cb.sha256-engine=)");
  }

  @Test
  void theAgentUsesLibcryptoWhereItIsInstalled() {
    assertThat(Sha256Engine.get().kind()).isEqualTo(Sha256Engine.Kind.LIBCRYPTO);
  }

  private static List<Sha256Engine> engines() {
    return List.of(
        libcrypto(), Sha256Engine.choose(Map.of("CB_SHA256_ENGINE", "jdk"), "-", s -> {}));
  }

  private static Sha256Engine libcrypto() {
    Sha256Engine e =
        Sha256Engine.choose(
            Map.of("CB_SHA256_ENGINE", "libcrypto"), Sha256Engine.LIBCRYPTO, s -> {});
    assertThat(e.kind()).isEqualTo(Sha256Engine.Kind.LIBCRYPTO);
    return e;
  }

  private static byte[] md(byte[] data, int off, int len) throws Exception {
    MessageDigest m = MessageDigest.getInstance("SHA-256");
    m.update(data, off, len);
    return m.digest();
  }
}
