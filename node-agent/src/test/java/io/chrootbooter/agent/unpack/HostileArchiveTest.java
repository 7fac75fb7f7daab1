package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.agent.sys.LinuxSyscalls;
import io.chrootbooter.protocol.ImageFormat;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Archives built to escape the root. Each must be refused naming the entry, with the canary next to
 * the root untouched and nothing left where the root was.
 */
class HostileArchiveTest {
  @TempDir Path temp;
  private Path canary;
  private Path root;
  private Path outside;

  @BeforeEach
  void canary() throws IOException {
    canary = Files.writeString(temp.resolve("canary"), "canary");
    outside = Files.createDirectory(temp.resolve("outside"));
    root = temp.resolve("root");
  }

  /** One archive entry to write. */
  record Entry(String name, byte type, String link, String content) {
    static Entry file(String name, String content) {
      return new Entry(name, TarConstants.LF_NORMAL, null, content);
    }

    static Entry dir(String name) {
      return new Entry(name, TarConstants.LF_DIR, null, null);
    }

    static Entry symlink(String name, String target) {
      return new Entry(name, TarConstants.LF_SYMLINK, target, null);
    }

    static Entry hardlink(String name, String target) {
      return new Entry(name, TarConstants.LF_LINK, target, null);
    }
  }

  static byte[] tar(List<Entry> entries) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(bytes)) {
      out.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      for (Entry e : entries) {
        TarArchiveEntry entry = new TarArchiveEntry(e.name(), e.type(), true);
        if (e.link() != null) {
          entry.setLinkName(e.link());
        }
        byte[] content =
            e.content() == null ? new byte[0] : e.content().getBytes(StandardCharsets.UTF_8);
        if (e.type() == TarConstants.LF_NORMAL) {
          entry.setSize(content.length);
        }
        entry.setMode(e.type() == TarConstants.LF_DIR ? 040755 : 0100644);
        out.putArchiveEntry(entry);
        out.write(content);
        out.closeArchiveEntry();
      }
    }
    return bytes.toByteArray();
  }

  private ImageUnpacker.Result unpack(List<Entry> entries) throws IOException {
    Path image = Files.write(temp.resolve("image.tar"), tar(entries));
    try (ImageStream in = ImageSources.open(image.toString(), FetchOptions.defaults())) {
      return new ImageUnpacker(new LinuxSyscalls())
          .unpack(in, ImageFormat.TAR, Optional.empty(), root);
    }
  }

  static Stream<Arguments> hostile() {
    return Stream.of(
        Arguments.of("dot-dot", List.of(Entry.file("../canary", "pwned")), "../canary", "\"..\""),
        Arguments.of(
            "absolute name", List.of(Entry.file("CANARY", "pwned")), "CANARY", "absolute name"),
        Arguments.of(
            "dot-dot inside",
            List.of(Entry.dir("a/"), Entry.file("a/../../canary", "pwned")),
            "a/../../canary",
            "\"..\""),
        Arguments.of(
            "symlink to parent, then a file below it",
            List.of(Entry.symlink("up", ".."), Entry.file("up/canary", "pwned")),
            "up/canary",
            "symlink \"up\""),
        Arguments.of(
            "absolute symlink outside, then a file below it",
            List.of(Entry.symlink("out", "OUTSIDE"), Entry.file("out/x", "pwned")),
            "out/x",
            "symlink \"out\""),
        Arguments.of(
            "symlink chain",
            List.of(
                Entry.symlink("a", "b"), Entry.symlink("b", ".."), Entry.file("a/canary", "pwned")),
            "a/canary",
            "symlink \"a\""),
        Arguments.of(
            "directory replaced by a symlink",
            List.of(Entry.dir("d/"), Entry.symlink("d", "OUTSIDE"), Entry.file("d/x", "pwned")),
            "d/x",
            "symlink \"d\""),
        Arguments.of(
            "symlinked directory as a hard-link target's parent",
            List.of(Entry.symlink("up", ".."), Entry.hardlink("h", "up/canary")),
            "h",
            "symlink \"up\""),
        Arguments.of(
            "hard link to a parent path", List.of(Entry.hardlink("h", "../canary")), "h", "\"..\""),
        Arguments.of(
            "hard link to an absolute path",
            List.of(Entry.hardlink("h", "CANARY")),
            "h",
            "absolute"),
        Arguments.of(
            "hard link to a directory",
            List.of(Entry.dir("d/"), Entry.hardlink("h", "d")),
            "h",
            "directory"),
        Arguments.of(
            "non-empty directory replaced by a file",
            List.of(Entry.dir("d/"), Entry.file("d/x", "x"), Entry.file("d", "pwned")),
            "d",
            "non-empty directory"),
        Arguments.of(
            "file as a parent",
            List.of(Entry.file("f", "x"), Entry.file("f/x", "pwned")),
            "f/x",
            "not a directory"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hostile")
  void refusedNamingTheEntryAndNothingOutsideTouched(
      String title, List<Entry> entries, String entryName, String reason) throws IOException {
    Fixtures.assumeRoot();
    List<Entry> resolved = new ArrayList<>();
    for (Entry e : entries) {
      String link =
          e.link() == null
              ? null
              : e.link()
                  .replace("OUTSIDE", outside.toString())
                  .replace("CANARY", canary.toString());
      resolved.add(
          new Entry(e.name().replace("CANARY", canary.toString()), e.type(), link, e.content()));
    }

    assertThatThrownBy(() -> unpack(resolved))
        .isInstanceOf(HostileArchiveException.class)
        .hasMessageStartingWith(
            "archive entry \"" + entryName.replace("CANARY", canary.toString()) + "\" refused: ")
        .hasMessageContaining(reason);
    assertThat(canary).hasContent("canary");
    assertThat(outside).isEmptyDirectory();
    assertThat(root).doesNotExist();
    try (Stream<Path> left = Files.list(temp)) {
      assertThat(left)
          .extracting(p -> p.getFileName().toString())
          .containsExactlyInAnyOrder("canary", "outside", "image.tar");
    }
  }

  @Test
  void aFileOverASymlinkReplacesTheLinkInsteadOfFollowingIt() throws IOException {
    Fixtures.assumeRoot();

    unpack(
        List.of(
            Entry.symlink("s", canary.toString()),
            Entry.symlink("rel", "../canary"),
            Entry.file("s", "replaced"),
            Entry.file("rel", "replaced")));

    assertThat(canary).hasContent("canary");
    assertThat(Files.isSymbolicLink(root.resolve("s"))).isFalse();
    assertThat(root.resolve("s")).hasContent("replaced");
    assertThat(root.resolve("rel")).hasContent("replaced");
  }

  @Test
  void absoluteSymlinksAreKeptAsTheyPointInsideOnceThisIsTheRoot() throws IOException {
    Fixtures.assumeRoot();

    unpack(List.of(Entry.dir("etc/"), Entry.symlink("etc/mtab", "/proc/self/mounts")));

    assertThat(Files.readSymbolicLink(root.resolve("etc/mtab")))
        .isEqualTo(Path.of("/proc/self/mounts"));
    assertThat(Files.exists(root.resolve("etc/mtab"), LinkOption.NOFOLLOW_LINKS)).isTrue();
  }

  @Test
  void truncatedArchiveIsRefusedAndTheTreeRemoved() throws IOException {
    byte[] whole = tar(List.of(Entry.file("a", "x".repeat(100_000)), Entry.file("b", "y")));
    Path image = Files.write(temp.resolve("image.tar"), java.util.Arrays.copyOf(whole, 50_000));

    try (ImageStream in = ImageSources.open(image.toString(), FetchOptions.defaults())) {
      assertThatThrownBy(
              () ->
                  new ImageUnpacker(new LinuxSyscalls())
                      .unpack(in, ImageFormat.TAR, Optional.empty(), root))
          .isInstanceOf(IOException.class)
          .hasMessageContaining("archive entry \"a\" is truncated or corrupt at byte");
    }
    assertThat(root).doesNotExist();
  }

  @Test
  void absurdEntrySizeIsRefusedBeforeWritingNamingBothNumbers() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    TarArchiveOutputStream out = new TarArchiveOutputStream(bytes);
    out.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
    TarArchiveEntry huge = new TarArchiveEntry("huge");
    huge.setSize(1L << 50);
    out.putArchiveEntry(huge);
    out.write(new byte[4096]);
    out.flush();
    Path image = Files.write(temp.resolve("image.tar"), bytes.toByteArray());

    try (ImageStream in = ImageSources.open(image.toString(), FetchOptions.defaults())) {
      assertThatThrownBy(
              () ->
                  new ImageUnpacker(new LinuxSyscalls())
                      .unpack(in, ImageFormat.TAR, Optional.empty(), root))
          .hasMessageStartingWith(
              "archive entry \"huge\" is 1125899906842624 bytes; the filesystem of " + root)
          .hasMessageEndingWith(" bytes free");
    }
    assertThat(root).doesNotExist();
  }

  @Test
  void existingNonEmptyTargetIsRefusedAndLeftAlone() throws IOException {
    Files.createDirectory(root);
    Path mine = Files.writeString(root.resolve("mine"), "mine");

    assertThatThrownBy(() -> unpack(List.of(Entry.file("a", "x"))))
        .hasMessage(root + " is not empty; unpack needs an empty or absent directory");
    assertThat(mine).hasContent("mine");
  }

  /**
   * A PAX header whose one value is 64 MiB: commons-compress would read it all into memory (the
   * agent's heap is 48 MiB). The extractor stops once the entry's headers pass 1 MiB and names the
   * entry and the limit; nothing is written.
   */
  @Test
  void aHugePaxHeaderIsRefusedBeforeItIsRead() throws IOException {
    long value = 64L << 20;
    String prefix = " path=";
    long base = prefix.length() + value + 1; // " path=" VALUE "\n"
    long total = base + Long.toString(base + Long.toString(base).length()).length();
    String length = Long.toString(total);
    long dataSize = total;
    TarArchiveEntry pax =
        new TarArchiveEntry("PaxHeaders/big", TarConstants.LF_PAX_EXTENDED_HEADER_LC, true);
    pax.setSize(dataSize);
    byte[] header = new byte[512];
    pax.writeEntryHeader(header);
    long[] served = {0};
    java.io.InputStream data =
        new java.io.InputStream() {
          @Override
          public int read() {
            return served[0]++ < value ? 'a' : -1;
          }

          @Override
          public int read(byte[] b, int off, int len) {
            if (served[0] >= value) {
              return -1;
            }
            int n = (int) Math.min(len, value - served[0]);
            java.util.Arrays.fill(b, off, off + n, (byte) 'a');
            served[0] += n;
            return n;
          }
        };
    java.io.InputStream tar =
        new java.io.SequenceInputStream(
            java.util.Collections.enumeration(
                List.of(
                    new java.io.ByteArrayInputStream(header),
                    new java.io.ByteArrayInputStream(
                        (length + prefix).getBytes(StandardCharsets.US_ASCII)),
                    data,
                    new java.io.ByteArrayInputStream(new byte[2048]))));
    Files.createDirectory(root);
    assertThatThrownBy(() -> new TarExtractor(new LinuxSyscalls()).extract(tar, root))
        .isInstanceOf(HostileArchiveException.class)
        .hasMessage(
            "archive entry \"PaxHeaders/big\" refused: its headers (PAX or GNU long name) exceed"
                + " 1 MiB");
    assertThat(served[0]).as("bytes of the value read").isLessThan(2L << 20);
    try (Stream<Path> left = Files.list(root)) {
      assertThat(left).isEmpty();
    }
  }

  /** Many global PAX headers, each small, between entries: bounded for the whole archive. */
  @Test
  void globalPaxHeadersAreBoundedForTheWholeArchive() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (int i = 0; i < 6; i++) {
      String line = " cb.key" + i + "=" + "x".repeat(900_000) + "\n";
      int total = line.length() + Integer.toString(line.length() + 7).length();
      rawEntry(
          bytes,
          "GlobalHead." + i,
          TarConstants.LF_PAX_GLOBAL_EXTENDED_HEADER,
          (total + line).getBytes(StandardCharsets.US_ASCII));
      rawEntry(bytes, "f" + i, TarConstants.LF_NORMAL, new byte[] {'x'});
    }
    bytes.write(new byte[1024]);
    Files.createDirectory(root);
    assertThatThrownBy(
            () ->
                new TarExtractor(new LinuxSyscalls())
                    .extract(new java.io.ByteArrayInputStream(bytes.toByteArray()), root))
        .isInstanceOf(HostileArchiveException.class)
        .hasMessageContaining("global PAX headers of the archive exceed 4 MiB");
  }

  /** One entry, its header written by commons-compress and its data padded to 512 bytes. */
  private static void rawEntry(ByteArrayOutputStream out, String name, byte type, byte[] data)
      throws IOException {
    TarArchiveEntry entry = new TarArchiveEntry(name, type, true);
    entry.setSize(data.length);
    entry.setMode(0100644);
    byte[] header = new byte[512];
    entry.writeEntryHeader(header);
    out.write(header);
    out.write(data);
    out.write(new byte[(512 - data.length % 512) % 512]);
  }
}
