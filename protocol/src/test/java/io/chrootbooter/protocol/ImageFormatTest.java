package io.chrootbooter.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/** Formats by name, by URL ending and by their first bytes. */
class ImageFormatTest {

  @ParameterizedTest
  @CsvSource({
    "http://m/debian.squashfs, squashfs",
    "http://m/debian.sqfs, squashfs",
    "http://m/debian.sfs, squashfs",
    "http://m/debian.img, squashfs",
    "http://m/root.tar, tar",
    "http://m/root.tar.gz, tar.gz",
    "http://m/root.TGZ, tar.gz",
    "http://m/root.tar.xz, tar.xz",
    "http://m/root.txz, tar.xz",
    "http://m/busybox.tar.zst?x=1, tar.zst",
    "http://m/busybox.tzst#top, tar.zst",
    "http://m/busybox.tar.zstd, tar.zst"
  })
  void theUrlsEndingNamesTheFormat(String url, String format) {
    assertThat(ImageFormat.fromUrl(url)).contains(ImageFormat.parse(format));
  }

  @Test
  void anUnknownEndingNamesNone() {
    assertThat(ImageFormat.fromUrl("http://m/root")).isEmpty();
    assertThat(ImageFormat.fromUrl("http://m/root.zip")).isEmpty();
    assertThat(ImageFormat.fromUrl("http://m/root.tar/?x=.gz.zip")).isEmpty();
  }

  @ParameterizedTest
  @EnumSource(ImageFormat.class)
  void everySuffixNamesItsFormatAndEveryNameParses(ImageFormat format) {
    assertThat(format.suffixes()).isNotEmpty();
    for (String suffix : format.suffixes()) {
      assertThat(ImageFormat.fromUrl("https://m/a" + suffix)).contains(format);
    }
    assertThat(ImageFormat.parse(format.value())).isEqualTo(format);
    assertThat(ImageFormat.sniff(header(format))).contains(format);
  }

  @Test
  void anUnknownNameIsRefusedNamingTheAcceptedOnes() {
    assertThatThrownBy(() -> ImageFormat.parse("zip"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("format \"zip\" is not one of squashfs, tar, tar.gz, tar.xz, tar.zst");
  }

  /** A V7 header: no magic, only a checksum; a tar when the caller says so, never by itself. */
  @Test
  void aV7HeaderIsATarOnlyWhenDeclaredTar() {
    byte[] v7 = new byte[1024];
    byte[] name = "etc/hostname".getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(name, 0, v7, 0, name.length);
    for (String[] field : new String[][] {{"100", "0000644\0"}, {"124", "00000000005\0"}}) {
      byte[] value = field[1].getBytes(StandardCharsets.US_ASCII);
      System.arraycopy(value, 0, v7, Integer.parseInt(field[0]), value.length);
    }
    Arrays.fill(v7, 148, 156, (byte) ' ');
    int sum = 0;
    for (int i = 0; i < 512; i++) {
      sum += v7[i] & 0xff;
    }
    byte[] checksum = String.format("%06o\0 ", sum).getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(checksum, 0, v7, 148, 8);

    assertThat(ImageFormat.sniff(v7)).isEmpty();
    assertThat(ImageFormat.sniff(v7, v7.length, ImageFormat.TAR)).contains(ImageFormat.TAR);
    assertThat(ImageFormat.sniff(v7, v7.length, ImageFormat.TAR_GZ)).isEmpty();
    assertThat(ImageFormat.sniff(v7, 511, ImageFormat.TAR)).as("cut short").isEmpty();
    v7[0] ^= 1;
    assertThat(ImageFormat.sniff(v7, v7.length, ImageFormat.TAR)).as("bad checksum").isEmpty();
    assertThat(ImageFormat.sniff(new byte[1024], 1024, ImageFormat.TAR)).as("zeros").isEmpty();
  }

  @Test
  void bytesOfNoFormatAreNone() {
    assertThat(ImageFormat.sniff(new byte[0])).isEmpty();
    assertThat(ImageFormat.sniff("PK\3\4".getBytes(StandardCharsets.US_ASCII))).isEmpty();
    byte[] shortTar = Arrays.copyOf(header(ImageFormat.TAR), 261);
    assertThat(ImageFormat.sniff(shortTar)).isEmpty();
    assertThat(ImageFormat.describe(new byte[] {0x1f, (byte) 0x8b, 8}, 3))
        .isEqualTo("first bytes 1f8b08");
    assertThat(ImageFormat.describe(new byte[0], 0)).isEqualTo("an empty file");
  }

  /** The first bytes of an image of {@code format}. */
  static byte[] header(ImageFormat format) {
    byte[] head = new byte[ImageFormat.SNIFF_BYTES];
    int[] magic =
        switch (format) {
          case SQUASHFS -> new int[] {'h', 's', 'q', 's'};
          case TAR -> new int[0];
          case TAR_GZ -> new int[] {0x1f, 0x8b, 0x08};
          case TAR_XZ -> new int[] {0xfd, '7', 'z', 'X', 'Z', 0x00};
          case TAR_ZST -> new int[] {0x28, 0xb5, 0x2f, 0xfd};
        };
    for (int i = 0; i < magic.length; i++) {
      head[i] = (byte) magic[i];
    }
    if (format == ImageFormat.TAR) {
      System.arraycopy("ustar\0".getBytes(StandardCharsets.US_ASCII), 0, head, 257, 6);
    }
    return head;
  }
}
