package io.chrootbooter.pxe.tftp;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.chrootbooter.pxe.tftp.TftpPacket.ReadRequest;
import io.chrootbooter.pxe.tftp.TftpRoot.Found;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Hostile bytes into the TFTP codec and path confinement: only {@link MalformedTftpPacketException}
 * may escape {@link TftpPacket#decode}, and no requested name resolves to a file outside the root.
 * {@code @FuzzTest} runs its seed corpus ({@code TftpFuzzTestInputs/}) as a unit test and fuzzes
 * with {@code JAZZER_FUZZ=1}.
 */
class TftpFuzzTest {
  private static final TftpRoot ROOT = root();

  @FuzzTest(maxDuration = "60s")
  void decodeNeverThrowsAnythingElse(byte[] data) {
    check(data);
  }

  @Test
  void boundedRandomRequests() {
    Random random = new Random(20261125L);
    String[] parts = {"..", ".", "/", "a", "undionly.kpxe", "out", "\\", "\0", "%2e", "//"};
    int requests = 0;
    for (int i = 0; i < 20_000; i++) {
      byte[] data;
      if (random.nextBoolean()) {
        StringBuilder name = new StringBuilder();
        for (int p = random.nextInt(6); p >= 0; p--) {
          name.append(parts[random.nextInt(parts.length)]);
        }
        data = new ReadRequest(name.toString(), "octet", java.util.Map.of()).encode();
      } else {
        data = new byte[random.nextInt(80)];
        random.nextBytes(data);
        if (data.length > 1) {
          data[0] = 0;
          data[1] = (byte) random.nextInt(8);
        }
      }
      if (check(data)) {
        requests++;
      }
    }
    assertThat(requests).isGreaterThan(5000);
  }

  /** True if the bytes decoded to a read request. */
  static boolean check(byte[] data) {
    TftpPacket packet;
    try {
      packet = TftpPacket.decode(ByteBuffer.wrap(data));
    } catch (MalformedTftpPacketException e) {
      assertThat(e.getMessage()).isNotBlank();
      return false;
    }
    assertThat(packet.encode()).isNotEmpty();
    if (packet instanceof ReadRequest rrq && ROOT.resolve(rrq.filename()) instanceof Found found) {
      assertThat(found.file()).startsWith(ROOT.path());
      assertThat(found.file().getFileName().toString()).isNotEqualTo("secret");
      return true;
    }
    return packet instanceof ReadRequest;
  }

  /** A root with one file and a symlink to a file beside the root. */
  private static TftpRoot root() {
    try {
      Path dir = Files.createTempDirectory("tftp-fuzz");
      dir.toFile().deleteOnExit();
      Path root = Files.createDirectory(dir.resolve("root"));
      Files.writeString(root.resolve("undionly.kpxe"), "x");
      Path secret = Files.writeString(dir.resolve("secret"), "s");
      Files.createSymbolicLink(root.resolve("out"), secret);
      return new TftpRoot(root);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
