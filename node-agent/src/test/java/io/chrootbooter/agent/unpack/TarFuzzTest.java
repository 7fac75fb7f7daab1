package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.agent.sys.LinuxSyscalls;
import io.chrootbooter.protocol.ImageFormat;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;

/**
 * The tar extraction path against inputs a fuzzer (Jazzer) makes: raw bytes declared as any tar
 * format, and archives built from the fuzzer's choices of entry names, link targets, types, modes,
 * owners, devices, contents and xattrs, where names and targets come from an alphabet of the tricks
 * that matter ({@code ..}, absolute paths, the canary's own path, empty and doubled slashes). Each
 * input is unpacked by the real {@link ImageUnpacker} into a fresh directory next to a canary
 * directory. Invariants:
 *
 * <ul>
 *   <li>only {@link IOException} escapes ({@link HostileArchiveException} for a refusal, others for
 *       a corrupt or truncated image), with a message; anything else is a finding;
 *   <li>nothing outside the root is written: the canary directory and its file keep their content,
 *       mode, owner, mtime and link count (so no symlink or hard link out of the root was
 *       followed), and the parent holds nothing new;
 *   <li>after a refusal or error the root is gone.
 * </ul>
 *
 * <p>Runs in the {@code tar-fuzz} surefire execution of {@code mvn verify} only: the seed corpus in
 * {@code TarFuzzTestInputs/} (hostile and legitimate archives, and what the fuzzer found), then
 * fuzzing for a bounded time ({@code JAZZER_FUZZ=1}); {@code mvn -pl node-agent test-compile
 * surefire:test@tar-fuzz} runs it alone. Findings land next to the seeds as {@code crash-*}.
 * Everything happens in a tmpfs mounted {@code nodev,nosuid} in the test JVM's private mount
 * namespace: the device nodes an archive makes cannot be opened, and nothing the fuzzer makes
 * touches the disk.
 */
class TarFuzzTest {
  private static final String CANARY_TEXT = "canary\n";
  private static Path parent;
  private static Path canaryDir;
  private static Path canaryFile;
  private static Map<String, String> canaryBefore;

  /** Name components the fuzzer picks from; CANARY stands for the canary's absolute path. */
  private static final List<String> COMPONENTS =
      List.of(
          "a",
          "b",
          "c",
          "..",
          ".",
          "",
          "etc",
          "dev",
          "a/b",
          "../canary",
          "CANARY",
          "CANARY/x",
          "/",
          "//",
          "x".repeat(120),
          "\u00e9",
          "sbin/init");

  private static final byte[] TYPES = {
    TarConstants.LF_NORMAL,
    TarConstants.LF_DIR,
    TarConstants.LF_SYMLINK,
    TarConstants.LF_LINK,
    TarConstants.LF_FIFO,
    TarConstants.LF_CHR,
    TarConstants.LF_BLK,
    TarConstants.LF_CONTIG,
    (byte) 'V',
  };

  private static final List<ImageFormat> FORMATS =
      List.of(ImageFormat.TAR, ImageFormat.TAR_GZ, ImageFormat.TAR_XZ, ImageFormat.TAR_ZST);

  @BeforeAll
  static void scratch() throws Exception {
    Fixtures.assumeRoot();
    Assumptions.assumeTrue(
        "private".equals(System.getenv("CB_TEST_MOUNT_NAMESPACE")),
        "the test JVM is not in a private mount namespace (needs unshare from util-linux, as"
            + " root): the fuzzer's tmpfs would be visible to the host");
    parent = Files.createTempDirectory("cb-tar-fuzz");
    Mounts.mount("tmpfs", "size=256m,mode=0755,nodev,nosuid", "cb-tar-fuzz", parent);
    canaryDir = Files.createDirectory(parent.resolve("canary"));
    canaryFile = Files.writeString(canaryDir.resolve("file"), CANARY_TEXT);
    canaryBefore = snapshot();
  }

  @AfterAll
  static void removeScratch() throws IOException {
    if (parent != null) {
      Mounts.umount(parent);
      Files.delete(parent);
    }
  }

  @FuzzTest(maxDuration = "30s")
  void extractionStaysInsideItsRoot(FuzzedDataProvider data) throws Exception {
    Path root = parent.resolve("root");
    Path image = parent.resolve("image");
    ImageFormat declared;
    byte[] bytes;
    if (data.consumeBoolean()) {
      declared = data.consumeBoolean() ? ImageFormat.TAR_GZ : ImageFormat.TAR;
      try {
        bytes = archive(data, declared);
      } catch (IllegalArgumentException | IOException e) {
        return; // commons-compress would not write these entries: not an input to test
      }
    } else {
      declared = FORMATS.get(data.consumeInt(0, FORMATS.size() - 1));
      bytes = data.consumeRemainingAsBytes();
    }
    Files.write(image, bytes);
    boolean refused = false;
    try (ImageStream in = ImageSources.open(image.toString(), FetchOptions.defaults())) {
      new ImageUnpacker(new LinuxSyscalls()).unpack(in, declared, Optional.empty(), root);
    } catch (IOException e) {
      // HostileArchiveException (a refusal), or a corrupt, truncated or mis-declared image.
      assertThat(e.getMessage())
          .as(() -> "the message of " + stackTrace(e))
          .isNotBlank()
          .doesNotEndWith(": null");
      refused = true;
    }
    try {
      assertThat(snapshot()).as("the canary next to the root").isEqualTo(canaryBefore);
      try (Stream<Path> left = Files.list(parent)) {
        Set<String> names = left.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
        assertThat(names)
            .as("the parent of the root")
            .isSubsetOf("canary", "image", "root")
            .contains("canary", "image");
      }
      if (refused) {
        assertThat(root).as("the root after a refusal").doesNotExist();
      } else {
        assertThat(Files.isDirectory(root, LinkOption.NOFOLLOW_LINKS)).isTrue();
      }
    } finally {
      if (Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
        Trees.deleteContents(root);
        Files.delete(root);
      }
      Files.delete(image);
    }
  }

  /** An archive of up to 8 entries, each chosen by the fuzzer. */
  private static byte[] archive(FuzzedDataProvider data, ImageFormat format) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    OutputStream sink = format == ImageFormat.TAR_GZ ? new GZIPOutputStream(bytes) : bytes;
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(sink)) {
      out.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      out.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      int count = data.consumeInt(1, 8);
      for (int i = 0; i < count; i++) {
        byte type = TYPES[data.consumeInt(0, TYPES.length - 1)];
        String name = path(data);
        if (type == TarConstants.LF_DIR && data.consumeBoolean()) {
          name = name + "/";
        }
        TarArchiveEntry entry = new TarArchiveEntry(name, type, true);
        if (type == TarConstants.LF_SYMLINK || type == TarConstants.LF_LINK) {
          entry.setLinkName(path(data));
        }
        if (type == TarConstants.LF_CHR || type == TarConstants.LF_BLK) {
          entry.setDevMajor(data.consumeInt(0, 300));
          entry.setDevMinor(data.consumeInt(0, 300));
        }
        entry.setMode(data.consumeInt(0, 07777));
        entry.setUserId(data.pickValue(new long[] {0, 1, 1000, 65534, 4294967294L}));
        entry.setGroupId(data.pickValue(new long[] {0, 5, 1000, 65534}));
        entry.setModTime(data.consumeLong(0, 4_102_444_800_000L));
        if (data.consumeBoolean()) {
          entry.addPaxHeader(
              "SCHILY.xattr."
                  + data.pickValue(
                      List.of(
                          "user.comment",
                          "security.capability",
                          "trusted.x",
                          "system.posix_acl_access")),
              data.consumeString(16));
        }
        byte[] content =
            (type == TarConstants.LF_NORMAL || type == TarConstants.LF_CONTIG)
                    && !entry.isDirectory()
                ? data.consumeBytes(data.consumeInt(0, 4096))
                : new byte[0];
        entry.setSize(content.length);
        out.putArchiveEntry(entry);
        out.write(content);
        out.closeArchiveEntry();
      }
    }
    return bytes.toByteArray();
  }

  /** A path of 1 to 4 components from {@link #COMPONENTS}, or now and then a raw string. */
  private static String path(FuzzedDataProvider data) {
    if (data.consumeInt(0, 7) == 0) {
      return data.consumeString(64);
    }
    int n = data.consumeInt(1, 4);
    StringBuilder path = new StringBuilder();
    for (int i = 0; i < n; i++) {
      if (i > 0) {
        path.append('/');
      }
      path.append(data.pickValue(COMPONENTS));
    }
    return path.toString().replace("CANARY", canaryFile.toString());
  }

  /** What a write through a link would change: content, mode, owner, mtime and link count. */
  private static Map<String, String> snapshot() throws IOException {
    Map<String, String> state = new TreeMap<>();
    try (Stream<Path> walk = Files.walk(canaryDir)) {
      for (Path p : walk.toList()) {
        Map<String, Object> a = Files.readAttributes(p, "unix:*", LinkOption.NOFOLLOW_LINKS);
        state.put(
            canaryDir.relativize(p).toString(),
            String.format(
                "mode=%o uid=%s gid=%s nlink=%s mtime=%s%s",
                (Integer) a.get("mode"),
                a.get("uid"),
                a.get("gid"),
                a.get("nlink"),
                a.get("lastModifiedTime"),
                Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)
                    ? " " + new String(Files.readAllBytes(p), StandardCharsets.UTF_8)
                    : ""));
      }
    }
    assertThat(state.get("file")).endsWith(CANARY_TEXT);
    return state;
  }

  private static String stackTrace(Throwable e) {
    java.io.StringWriter w = new java.io.StringWriter();
    e.printStackTrace(new java.io.PrintWriter(w));
    return w.toString();
  }
}
