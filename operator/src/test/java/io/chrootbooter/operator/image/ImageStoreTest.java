package io.chrootbooter.operator.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.status.Reason;
import io.quarkus.runtime.configuration.DurationConverter;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The store's files across a crash: what a killed operator left in {@code partial/} is removed at
 * the next start, and only a committed file is ever found (and so served).
 */
class ImageStoreTest {
  private static final String SHA = "ab".repeat(32);

  static OperatorConfig config(Path store, String... more) {
    Map<String, String> values = new HashMap<>(Map.of("cb.store.path", store.toString()));
    for (int i = 0; i < more.length; i += 2) {
      values.put(more[i], more[i + 1]);
    }
    return new SmallRyeConfigBuilder()
        .withMapping(OperatorConfig.class)
        // Quarkus' duration syntax (1S), as in the defaults of OperatorConfig.
        .withConverter(Duration.class, 200, new DurationConverter())
        .withDefaultValues(values)
        .build()
        .getConfigMapping(OperatorConfig.class);
  }

  @Test
  void leftoversOfACrashAreRemovedAtStartAndCommittedImagesKept(@TempDir Path dir)
      throws IOException {
    Files.createDirectories(dir.resolve("partial"));
    Files.createDirectories(dir.resolve("sha256"));
    Path leftover = Files.write(dir.resolve("partial/0b5e-1.part"), new byte[1000]);
    Files.setLastModifiedTime(
        leftover,
        FileTime.from(Instant.now().minus(ImageStore.LEFTOVER_AGE).minus(Duration.ofMinutes(1))));
    // Another replica's download in progress, written to just now: not a leftover.
    Path inProgress = Files.write(dir.resolve("partial/77aa-1.part"), new byte[10]);
    Files.write(dir.resolve("sha256").resolve(SHA), new byte[] {1, 2, 3});

    ImageStore store = new ImageStore(config(dir));
    store.start(null);

    assertThat(leftover).doesNotExist();
    assertThat(inProgress).exists();
    assertThat(store.find(SHA)).contains(dir.resolve("sha256").resolve(SHA).toAbsolutePath());
  }

  @Test
  void aDownloadIsFoundOnlyOnceCommitted(@TempDir Path dir) throws IOException {
    ImageStore store = new ImageStore(config(dir));
    store.start(null);
    String other = "cd".repeat(32);
    Path partial = store.newPartial("uid-1");
    Files.write(partial, new byte[] {4, 5, 6});

    assertThat(store.find(other)).isEmpty();
    store.commit(partial, other);

    assertThat(partial).doesNotExist();
    assertThat(store.find(other)).isPresent();
    assertThat(Files.readAllBytes(store.find(other).orElseThrow())).containsExactly(4, 5, 6);
    assertThat(store.find("../partial/uid-1.part")).isEmpty();
    store.delete(other);
    assertThat(store.find(other)).isEmpty();
  }

  @Test
  void storeLimitRefusesAnImageThatDoesNotFit(@TempDir Path dir) throws IOException {
    ImageStore store = new ImageStore(config(dir, "cb.store.max-bytes", "1000"));
    store.start(null);
    Files.write(dir.resolve("sha256").resolve(SHA), new byte[600]);

    store.checkRoom(400);
    assertThatThrownBy(() -> store.checkRoom(401))
        .isInstanceOfSatisfying(
            MirrorFailure.class, e -> assertThat(e.reason()).isEqualTo(Reason.InsufficientSpace))
        .hasMessage(
            "the image is 401 bytes; the store holds 600 of at most 1000 bytes"
                + " (cb.store.max-bytes)");
  }
}
