package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.protocol.ImageFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A cache whose budget is what it holds plus the headroom it is given (as the daemon's is). */
class ImageCacheHeadroomTest {
  @TempDir Path temp;

  private Path image(String name, int bytes) throws IOException {
    return Files.write(temp.resolve(name), new byte[bytes]);
  }

  @Test
  void theCacheKeepsWhatItHoldsAndTakesTheHeadroomBeyond() throws IOException {
    AtomicLong headroom = new AtomicLong(150);
    ImageCache cache = ImageCache.withHeadroom(temp.resolve("cache"), headroom::get);
    String a = "a".repeat(64);
    String b = "b".repeat(64);
    String c = "c".repeat(64);
    assertThat(cache.put(a, ImageFormat.SQUASHFS, image("a", 100))).isPresent();
    // The free space shrank by what the cache took: what it holds still counts as its own.
    headroom.set(100);
    assertThat(cache.put(b, ImageFormat.SQUASHFS, image("b", 100))).isPresent();
    assertThat(cache.totalBytes()).isEqualTo(200);
    // No headroom left: an image fits only by evicting the least recently used.
    headroom.set(0);
    assertThat(cache.put(c, ImageFormat.SQUASHFS, image("c", 100))).isPresent();
    assertThat(cache.list()).extracting(ImageCache.Entry::sha256).containsExactly(b, c);
    // Larger than what it holds plus the headroom: not cached; the file stays the caller's.
    assertThat(cache.put("d".repeat(64), ImageFormat.SQUASHFS, image("d", 300))).isEmpty();
    assertThat(temp.resolve("d")).hasSize(300);
    assertThat(cache.list()).extracting(ImageCache.Entry::sha256).containsExactly(b, c);
  }
}
