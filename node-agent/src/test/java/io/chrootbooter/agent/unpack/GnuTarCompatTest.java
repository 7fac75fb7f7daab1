package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.protocol.ImageFormat;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Archives GNU tar 1.34 extracts: sparse files in every format it writes, with offsets beyond 4
 * GiB; a GNU incremental archive; a V7 archive; headers written by hand with odd but valid fields.
 * Each is extracted by GNU tar ({@code --numeric-owner}, as root) and by the agent, and the trees
 * must agree: {@code find -printf '%P %y %m %U %G %s'}, the SHA-256 of every regular file, and for
 * sparse files the allocated blocks ({@code %b}) within a small tolerance. What GNU tar reports as
 * an error stays refused.
 */
class GnuTarCompatTest {
  /** 512-byte blocks a sparse file may differ by: filesystems allocate a little around data. */
  private static final long BLOCK_TOLERANCE = 64;

  @TempDir Path temp;
  private Path source;

  @BeforeEach
  void tools() throws IOException {
    Fixtures.assumeRoot();
    Fixtures.assumeTool("tar", "tar");
    Fixtures.assumeTool("python3", "python3");
    source = Files.createDirectory(temp.resolve("source"));
  }

  /** A 5 GiB file with data below and beyond 4 GiB and at its last byte, and two plain files. */
  private void sparseSource() throws Exception {
    sh(
        source,
        "truncate -s 5G sparse.img",
        "printf 'head' | dd of=sparse.img bs=1 seek=4096 conv=notrunc status=none",
        "head -c 100000 /dev/urandom | dd of=sparse.img bs=1M seek=4500 conv=notrunc status=none",
        "printf 'Z' | dd of=sparse.img bs=1 seek=5368709119 conv=notrunc status=none",
        "truncate -s 6G trailing-hole.img",
        "printf 'data' | dd of=trailing-hole.img bs=1M seek=4200 conv=notrunc status=none",
        "printf 'plain\\n' > plain && chown 1000:1000 plain && chmod 640 plain",
        "mkdir -p dir/sub && chmod 750 dir/sub");
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({"gnu,", "oldgnu,", "posix,0.0", "posix,0.1", "posix,1.0"})
  void sparseFilesBeyondFourGibAreExtractedAsGnuTarDoes(String format, String version)
      throws Exception {
    sparseSource();
    Path image = temp.resolve("image.tar");
    sh(
        source,
        "tar --numeric-owner --sparse --format="
            + format
            + (version == null ? "" : " --sparse-version=" + version)
            + " -cf "
            + image
            + " .");
    assertThat(Files.size(image)).as("the archive holds only the data").isLessThan(1 << 20);

    compareWithGnuTar(image, ImageFormat.TAR);
  }

  @Test
  void bsdtarSparseArchiveIsExtractedAsGnuTarDoes() throws Exception {
    Fixtures.assumeTool("bsdtar", "libarchive-tools");
    sparseSource();
    Path image = temp.resolve("image.tar");
    sh(source, "bsdtar --format=pax --numeric-owner -cf " + image + " .");

    compareWithGnuTar(image, ImageFormat.TAR);
  }

  /**
   * A lastlog(8)-like file: 300 GB apparent size, a few records. More than the free space of most
   * test machines' disks: the space check must count the data, and the holes must stay holes.
   */
  @Test
  void aLastlogOfThreeHundredGigabytesTakesOnlyItsRecords() throws Exception {
    sh(
        source,
        "mkdir -p var/log",
        "truncate -s 300GB var/log/lastlog",
        "printf 'root-login' | dd of=var/log/lastlog bs=1 seek=0 conv=notrunc status=none",
        "printf 'user-login' | dd of=var/log/lastlog bs=1 seek=292000 conv=notrunc status=none",
        "printf 'far-login' | dd of=var/log/lastlog bs=1 seek=292000000000 conv=notrunc"
            + " status=none");
    Path image = temp.resolve("image.tar.gz");
    sh(source, "tar --numeric-owner --sparse --format=posix -czf " + image + " .");

    Path ours = compareWithGnuTar(image, ImageFormat.TAR_GZ);

    Path lastlog = ours.resolve("var/log/lastlog");
    assertThat(Files.size(lastlog)).isEqualTo(300_000_000_000L);
    assertThat(blocks(lastlog)).as("512-byte blocks allocated to the 300 GB file").isLessThan(256);
  }

  /** GNU incremental format: dump directories ({@code D}) and an old GNU sparse file. */
  @Test
  void gnuIncrementalArchiveWithASparseFileIsExtracted() throws Exception {
    sh(
        source,
        "mkdir -p data/dir",
        "truncate -s 512M data/dir/sparse",
        "printf 'middle' | dd of=data/dir/sparse bs=1M seek=256 conv=notrunc status=none",
        "printf 'x' > data/file");
    Path image = temp.resolve("image.tar");
    sh(
        source,
        "tar --numeric-owner --sparse --format=gnu --listed-incremental="
            + temp.resolve("snapshot")
            + " -cf "
            + image
            + " data");
    assertThat(new String(Files.readAllBytes(image), StandardCharsets.ISO_8859_1))
        .as("the archive has dump directories")
        .contains("Ysparse");

    Path ours = compareWithGnuTar(image, ImageFormat.TAR);
    assertThat(blocks(ours.resolve("data/dir/sparse"))).isLessThan(256);
  }

  @Test
  void v7ArchiveIsExtractedWhenDeclaredTar() throws Exception {
    sh(
        source,
        "mkdir -p etc bin",
        "printf 'node\\n' > etc/hostname && chown 7:8 etc/hostname",
        "printf '#!/bin/sh\\n' > bin/sh && chmod 755 bin/sh",
        "ln bin/sh bin/ash",
        "ln -s sh bin/dash");
    Path image = temp.resolve("image.tar");
    sh(source, "tar --numeric-owner --format=v7 -cf " + image + " etc bin");
    byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(image), 512);
    assertThat(ImageFormat.sniff(head)).as("sniffed without a declared format").isEmpty();

    compareWithGnuTar(image, ImageFormat.TAR);
  }

  @Test
  void aFileWithNoTarHeaderIsStillNotATarWhenDeclaredTar() throws Exception {
    Path image =
        Files.write(
            temp.resolve("image.tar"),
            "not a tar at all".repeat(100).getBytes(StandardCharsets.US_ASCII));

    assertThatThrownBy(() -> unpack(image, ImageFormat.TAR, temp.resolve("ours")))
        .hasMessageStartingWith(image + " is not a squashfs, tar");
  }

  /**
   * GNU tar extracts each of these; for an out-of-range pax mtime it reports an error (exit code 2)
   * and goes on with the header's mtime, which the agent logs as a warning.
   */
  @ParameterizedTest(name = "{0}")
  @CsvSource({
    "nul-owner.tar,0",
    "base256.tar,0",
    "lenient-octal.tar,0",
    "pax-mtime.tar,2",
    "pax-at-end.tar,0",
    "longname-nul.tar,0",
    "global-uid.tar,0",
    "sparse-beyond-size.tar,0",
    "sparse-short-map.tar,0"
  })
  void craftedHeadersAreReadAsGnuTarReadsThem(String archive, int gnuExitCode) throws Exception {
    compareWithGnuTar(crafted(archive), ImageFormat.TAR, gnuExitCode);
  }

  @Test
  void paxTimesAreReadToTheNanosecondOrIgnoredWithTheHeaderTimeKept() throws Exception {
    Path ours = temp.resolve("ours");
    unpack(crafted("pax-mtime.tar"), ImageFormat.TAR, ours);

    assertThat(Files.getLastModifiedTime(ours.resolve("fraction")).toInstant())
        .isEqualTo(java.time.Instant.ofEpochSecond(1700000000L, 123456789));
    assertThat(Files.getLastModifiedTime(ours.resolve("out-of-range")).toMillis())
        .as("out of range: the header's mtime")
        .isEqualTo(1600000000_000L);
    assertThat(Files.getLastModifiedTime(ours.resolve("malformed")).toMillis())
        .as("text after the number: GNU tar reads the number")
        .isEqualTo(12_000L);
  }

  @Test
  void aFieldGnuTarRejectsIsRefusedNamingTheEntryAndTheField() throws Exception {
    Path image = crafted("bad-uid.tar");
    assertThat(gnuTar(image, temp.resolve("gnu")).exitCode).isEqualTo(2);

    assertThatThrownBy(() -> unpack(image, ImageFormat.TAR, temp.resolve("ours")))
        .isInstanceOf(HostileArchiveException.class)
        .hasMessage(
            "archive entry \"bad-uid\" refused: its uid field \"12x4\\x00\\x00\\x00\\x00\" is not a"
                + " number");
    assertThat(temp.resolve("ours")).doesNotExist();
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "sparse-long-map.tar|archive entry \"long\" refused: its sparse map holds 600 bytes of data"
            + " but the archive holds 4",
        "sparse-huge-map.tar|archive entry \"huge-map\" refused: its sparse map exceeds 1 MiB",
        "sparse-endless-extensions.tar|archive entry \"endless\" refused: its sparse map exceeds 1"
            + " MiB"
      })
  void aSparseMapThatDoesNotFitItsDataOrItsBoundIsRefused(String archive, String message)
      throws Exception {
    assertThatThrownBy(() -> unpack(crafted(archive), ImageFormat.TAR, temp.resolve("ours")))
        .isInstanceOf(HostileArchiveException.class)
        .hasMessage(message);
    assertThat(temp.resolve("ours")).doesNotExist();
  }

  /** GNU tar applies a global pax path to every later entry, and refuses its "..": so does this. */
  @Test
  void aGlobalPaxPathWithDotDotIsRefusedAsGnuTarRefusesIt() throws Exception {
    Path image = crafted("global-dotdot.tar");
    Result gnu = gnuTar(image, temp.resolve("gnu"));
    assertThat(gnu.exitCode).isEqualTo(2);
    assertThat(gnu.output).contains("../evil: Member name contains '..'");

    assertThatThrownBy(() -> unpack(image, ImageFormat.TAR, temp.resolve("ours")))
        .isInstanceOf(HostileArchiveException.class)
        .hasMessage("archive entry \"../evil\" refused: name has a \"..\" component");
    assertThat(temp.resolve("evil")).doesNotExist();
  }

  // ---------------------------------------------------------------------------------------------

  private Path crafted(String name) throws Exception {
    Fixtures.assumeTool("python3", "python3");
    Path dir = temp.resolve("crafted");
    if (!Files.isDirectory(dir)) {
      Files.createDirectory(dir);
      Path script = temp.resolve("crafted-tars.py");
      try (InputStream in = getClass().getResourceAsStream("crafted-tars.py")) {
        Files.copy(in, script);
      }
      Fixtures.run(temp, "python3", script.toString(), dir.toString());
    }
    return dir.resolve(name);
  }

  /** Extracts with GNU tar and the agent and compares; returns the agent's tree. */
  private Path compareWithGnuTar(Path image, ImageFormat format) throws Exception {
    return compareWithGnuTar(image, format, 0);
  }

  private Path compareWithGnuTar(Path image, ImageFormat format, int gnuExitCode) throws Exception {
    Path gnu = temp.resolve("gnu");
    Result result = gnuTar(image, gnu);
    assertThat(result.exitCode)
        .as("GNU tar's exit code; output: %s", result.output)
        .isEqualTo(gnuExitCode);
    Path ours = temp.resolve("ours");
    unpack(image, format, ours);

    assertThat(find(ours)).isEqualTo(find(gnu));
    Map<String, String> ourHashes = hashes(ours);
    assertThat(ourHashes).isEqualTo(hashes(gnu));
    for (String file : ourHashes.keySet()) {
      long gnuBlocks = blocks(gnu.resolve(file));
      assertThat(blocks(ours.resolve(file)))
          .as("512-byte blocks of %s (GNU tar: %d)", file, gnuBlocks)
          .isBetween(Math.max(0, gnuBlocks - BLOCK_TOLERANCE), gnuBlocks + BLOCK_TOLERANCE);
    }
    return ours;
  }

  private void unpack(Path image, ImageFormat format, Path into) throws IOException {
    try (ImageStream in = ImageSources.open(image.toString(), FetchOptions.defaults())) {
      new ImageUnpacker(new LinuxSyscalls()).unpack(in, format, Optional.empty(), into);
    }
  }

  private record Result(int exitCode, String output) {}

  private static Result gnuTar(Path image, Path into) throws Exception {
    Files.createDirectories(into);
    Process p =
        new ProcessBuilder(
                "tar", "--numeric-owner", "-xpf", image.toString(), "-C", into.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
    return new Result(p.exitValue(), out);
  }

  /** {@code find -printf '%P %y %m %U %G %s'} without the root, sizes of directories left out. */
  private static List<String> find(Path root) throws Exception {
    List<String> lines = new ArrayList<>();
    for (String line :
        Fixtures.run(root, "find", ".", "-mindepth", "1", "-printf", "%P %y %m %U %G %s\\n")
            .split("\n")) {
      // A directory's size is how its filesystem lays out entries, not what the archive says.
      lines.add(line.matches(".* d \\d+ \\d+ \\d+ \\d+") ? line.replaceFirst(" \\d+$", "") : line);
    }
    return lines.stream().sorted().toList();
  }

  /**
   * A SHA-256 of each regular file's contents, by relative path: {@code tree-digest.py} reads only
   * the data regions, so a 300 GB sparse file takes no time.
   */
  private Map<String, String> hashes(Path root) throws Exception {
    Path script = temp.resolve("tree-digest.py");
    if (!Files.exists(script)) {
      try (InputStream in = getClass().getResourceAsStream("tree-digest.py")) {
        Files.copy(in, script);
      }
    }
    Map<String, String> result = new TreeMap<>();
    for (String line : Fixtures.run(root, "python3", script.toString(), ".").split("\n")) {
      if (!line.isBlank()) {
        result.put(
            line.substring(0, line.lastIndexOf(' ')), line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return result;
  }

  private static long blocks(Path file) throws Exception {
    return Long.parseLong(
        Fixtures.run(file.getParent(), "stat", "-c", "%b", file.toString()).trim());
  }

  private static void sh(Path dir, String... lines) throws Exception {
    List<String> script = new ArrayList<>(List.of("set -e"));
    script.addAll(List.of(lines));
    Fixtures.run(dir, "sh", "-c", String.join("\n", script));
  }
}
