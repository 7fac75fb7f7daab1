package io.chrootbooter.agent.build;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two builds whose recorders numbered the same keys differently give the same jar after {@link
 * ProxyKeys}, and the classes in it still agree on their keys.
 */
class ProxyKeysTest {
  @TempDir Path dir;

  /** Stands in for a recorded class that writes two values under proxy keys. */
  public static final class WritesKeys {
    public static final String FIRST = "proxykey7";
    public static final String SECOND = "proxykey3";
    public static final String OTHER = "proxykey3x"; // not a key: left alone
  }

  /** Stands in for a recorded class that reads one of them. */
  public static final class ReadsKey {
    public static final String READ = "proxykey3";
  }

  private static byte[] classBytes(Class<?> c) throws IOException {
    String resource = c.getName().replace('.', '/') + ".class";
    try (InputStream in = c.getClassLoader().getResourceAsStream(resource)) {
      return in.readAllBytes();
    }
  }

  private Path jar(String name, Map<String, String> renames) throws IOException {
    Path jar = dir.resolve(name);
    try (ZipOutputStream out = new ZipOutputStream(Files.newOutputStream(jar))) {
      // The reader first: the canonical numbers must not depend on the jar's entry order.
      for (Class<?> c : new Class<?>[] {ReadsKey.class, WritesKeys.class}) {
        ZipEntry entry = new ZipEntry(c.getName().replace('.', '/') + ".class");
        entry.setTime(315532800000L);
        out.putNextEntry(entry);
        out.write(ProxyKeys.rename(classBytes(c), renames));
        out.closeEntry();
      }
    }
    return jar;
  }

  @Test
  void twoNumberingsOfTheSameKeysGiveTheSameJar() throws Exception {
    Path first = jar("first.jar", Map.of());
    Path second = jar("second.jar", Map.of("proxykey7", "proxykey21", "proxykey3", "proxykey20"));
    assertThat(Files.readAllBytes(first)).isNotEqualTo(Files.readAllBytes(second));

    assertThat(ProxyKeys.canonicalise(first, dir.resolve("first.out"))).isEqualTo(2);
    assertThat(ProxyKeys.canonicalise(second, dir.resolve("second.out"))).isEqualTo(2);
    assertThat(Files.readAllBytes(dir.resolve("first.out")))
        .isEqualTo(Files.readAllBytes(dir.resolve("second.out")));

    try (URLClassLoader loader =
        new URLClassLoader(new URL[] {dir.resolve("second.out").toUri().toURL()}, null)) {
      Class<?> writes = loader.loadClass(WritesKeys.class.getName());
      Class<?> reads = loader.loadClass(ReadsKey.class.getName());
      String second3 = (String) writes.getDeclaredField("SECOND").get(null);
      assertThat(second3).matches("proxykey[01]");
      assertThat(reads.getDeclaredField("READ").get(null)).isEqualTo(second3);
      assertThat(writes.getDeclaredField("FIRST").get(null))
          .isNotEqualTo(second3)
          .asString()
          .matches("proxykey[01]");
      assertThat(writes.getDeclaredField("OTHER").get(null)).isEqualTo("proxykey3x");
    }
  }

  @Test
  void aFileThatIsNoClassFileIsRefused() {
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> ProxyKeys.rename(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, Map.of()))
        .isInstanceOf(IOException.class)
        .hasMessage("not a class file");
  }
}
