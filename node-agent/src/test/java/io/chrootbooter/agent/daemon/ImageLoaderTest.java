package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.agent.unpack.ImageCache;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageLoaderTest {
  @Test
  void aRespawnedAgentRemovesThePartialDownloadsOfTheOneThatDied(@TempDir Path work)
      throws Exception {
    Path leftover = Files.write(work.resolve("download-2.partial"), new byte[4096]);
    Path other = Files.writeString(work.resolve("notes.txt"), "kept");

    new ImageLoader(work, new ImageCache(work.resolve("cache"), () -> 1 << 20));

    assertThat(leftover).doesNotExist();
    assertThat(other).exists();
  }
}
