package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.pivot.TestTarget;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The {@link TestTarget} images a daemon test class serves, built once for the class: the busybox
 * tree as {@code target.squashfs} and as {@code target.tar.zst}, with their SHA-256 digests. A
 * static {@code @RegisterExtension} field; the class is skipped when this host cannot run targets
 * ({@link TestTarget#assumeHost}), and the images' directory is deleted after the class, also when
 * building them failed half-way.
 */
final class TargetImages implements BeforeAllCallback, AfterAllCallback {
  private final String prefix;
  private final Map<String, String> extraInits;
  private Path dir;
  private Path squashfs;
  private Path tarZst;
  private String squashfsSha;
  private String tarZstSha;

  /** Images of the standard tree, in a temp directory named {@code PREFIX...}. */
  TargetImages(String prefix) {
    this(prefix, Map.of());
  }

  /** Images whose tree also has {@code extraInits} (script bodies by name) as /sbin/init-NAME. */
  TargetImages(String prefix, Map<String, String> extraInits) {
    this.prefix = prefix;
    this.extraInits = Map.copyOf(extraInits);
  }

  @Override
  public void beforeAll(ExtensionContext context) throws Exception {
    TestTarget.assumeHost();
    dir = Files.createTempDirectory(prefix);
    squashfs = TestTarget.build(dir, extraInits);
    tarZst = TestTarget.packTarZst(dir);
    squashfsSha = TestTarget.sha256(squashfs);
    tarZstSha = TestTarget.sha256(tarZst);
  }

  @Override
  public void afterAll(ExtensionContext context) throws Exception {
    TestTarget.deleteTree(dir);
  }

  Path squashfs() {
    return squashfs;
  }

  Path tarZst() {
    return tarZst;
  }

  String squashfsSha() {
    return squashfsSha;
  }

  String tarZstSha() {
    return tarZstSha;
  }
}
