package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.protocol.ImageFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageCacheTest {
  @TempDir Path temp;
  private final AtomicLong budget = new AtomicLong(300);

  private Path image(String name, int bytes) throws IOException {
    return Files.write(temp.resolve(name), new byte[bytes]);
  }

  private static String sha(char c) {
    return String.valueOf(c).repeat(64);
  }

  @Test
  void evictsTheLeastRecentlyUsedImageToMakeRoom() throws IOException {
    ImageCache cache = new ImageCache(temp.resolve("cache"), budget::get);
    cache.put(sha('a'), ImageFormat.SQUASHFS, image("a", 100));
    cache.put(sha('b'), ImageFormat.TAR_GZ, image("b", 100));
    cache.put(sha('c'), ImageFormat.SQUASHFS, image("c", 100));
    assertThat(cache.get(sha('a'))).isPresent(); // a is now the most recently used

    cache.put(sha('d'), ImageFormat.SQUASHFS, image("d", 100));

    assertThat(cache.list())
        .extracting(ImageCache.Entry::sha256)
        .containsExactly(sha('c'), sha('a'), sha('d'));
    assertThat(temp.resolve("cache/" + sha('b') + ".tar.gz")).doesNotExist();
    assertThat(cache.get(sha('a')).orElseThrow().file()).hasSize(100);
    assertThat(cache.totalBytes()).isEqualTo(300);
  }

  @Test
  void shrinkingBudgetEvictsOnTheNextInsertAndTooLargeImagesAreNotCached() throws IOException {
    ImageCache cache = new ImageCache(temp.resolve("cache"), budget::get);
    cache.put(sha('a'), ImageFormat.SQUASHFS, image("a", 100));
    cache.put(sha('b'), ImageFormat.SQUASHFS, image("b", 100));
    budget.set(150);

    cache.put(sha('c'), ImageFormat.SQUASHFS, image("c", 50));
    assertThat(cache.list())
        .extracting(ImageCache.Entry::sha256)
        .containsExactly(sha('b'), sha('c'));

    assertThat(cache.put(sha('d'), ImageFormat.SQUASHFS, image("d", 151))).isEmpty();
    assertThat(temp.resolve("d")).as("left to the caller").hasSize(151);
    assertThat(cache.get(sha('d'))).isEmpty();
  }

  @Test
  void findsItsImagesAgainAfterARestart() throws IOException {
    Path dir = temp.resolve("cache");
    new ImageCache(dir, budget::get).put(sha('a'), ImageFormat.TAR_ZST, image("a", 10));
    Files.writeString(dir.resolve("unrelated.txt"), "x");

    ImageCache again = new ImageCache(dir, budget::get);

    assertThat(again.get(sha('a'))).map(ImageCache.Entry::format).contains(ImageFormat.TAR_ZST);
    assertThat(again.list()).hasSize(1);
  }
}
