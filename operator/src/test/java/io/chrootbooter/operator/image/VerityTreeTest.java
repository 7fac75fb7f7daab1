package io.chrootbooter.operator.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The operator's dm-verity trees against cryptsetup's {@code veritysetup} (Debian: cryptsetup-bin),
 * which checks and writes trees in user space: no device is needed.
 */
class VerityTreeTest {
  @TempDir Path dir;

  @BeforeAll
  static void veritysetupPresent() throws Exception {
    Assumptions.assumeTrue(
        run(List.of("sh", "-c", "command -v veritysetup")).exit == 0,
        "veritysetup is not installed (Debian: apt-get install cryptsetup-bin)");
  }

  record Run(int exit, String output) {}

  static Run run(List<String> command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    return new Run(p.waitFor(), out);
  }

  /** A real squashfs image over a few MB of random files: two hash levels. */
  private Path squashfs() throws Exception {
    Assumptions.assumeTrue(
        run(List.of("sh", "-c", "command -v mksquashfs")).exit == 0,
        "mksquashfs is not installed (Debian: squashfs-tools)");
    Path tree = Files.createDirectories(dir.resolve("tree/sbin"));
    Files.writeString(tree.resolve("init"), "#!/bin/sh\necho hello\n");
    byte[] blob = new byte[3 * 1024 * 1024 + 123];
    new Random(24).nextBytes(blob);
    Files.write(tree.resolve("blob"), blob);
    Path image = dir.resolve("image.squashfs");
    Run r =
        run(
            List.of(
                "mksquashfs",
                dir.resolve("tree").toString(),
                image.toString(),
                "-noappend",
                "-quiet"));
    assertThat(r.exit).as(r.output).isZero();
    return image;
  }

  /** Random bytes of {@code blocks} whole 4 KiB blocks. */
  private Path blocks(long blocks) throws IOException {
    byte[] bytes = new byte[(int) (blocks * VerityTree.BLOCK)];
    new Random(blocks).nextBytes(bytes);
    return Files.write(dir.resolve("data-" + blocks), bytes);
  }

  private static String rootHashOf(String veritysetupOutput) {
    Matcher m = Pattern.compile("Root hash:\\s+([0-9a-f]{64})").matcher(veritysetupOutput);
    assertThat(m.find()).as(veritysetupOutput).isTrue();
    return m.group(1);
  }

  @Test
  void aTreeTheOperatorMakesVerifiesWithVeritysetupAndFailsOnAChangedBlock() throws Exception {
    for (Path image : List.of(squashfs(), blocks(128 * 128 + 5))) {
      Path tree = dir.resolve(image.getFileName() + ".verity");
      VerityTree.Header header = VerityTree.create(image, VerityTree.newSalt(), tree);
      assertThat(Files.size(tree)).isEqualTo(header.treeBytes());

      Run ok =
          run(
              List.of(
                  "veritysetup",
                  "verify",
                  image.toString(),
                  tree.toString(),
                  header.rootHashHex()));
      assertThat(ok.exit).as(ok.output).isZero();

      byte[] bytes = Files.readAllBytes(image);
      bytes[5 * VerityTree.BLOCK + 17] ^= 1;
      Path changed = Files.write(dir.resolve("changed"), bytes);
      Run bad =
          run(
              List.of(
                  "veritysetup",
                  "verify",
                  changed.toString(),
                  tree.toString(),
                  header.rootHashHex()));
      assertThat(bad.exit).as(bad.output).isNotZero();
      assertThatThrownBy(() -> VerityTree.verify(changed, tree))
          .isInstanceOf(VerityTree.InvalidTreeException.class)
          .hasMessageContaining("level 0 does not match");
    }
  }

  @Test
  void aTreeVeritysetupMakesIsReadWithTheSameRootHashAsTheOperatorsForTheSameSalt()
      throws Exception {
    // 3 levels: more than 128 * 128 data blocks.
    for (Path image : List.of(squashfs(), blocks(128 * 128 + 5), blocks(2))) {
      byte[] salt = new byte[32];
      new Random(7).nextBytes(salt);
      Path theirs = dir.resolve(image.getFileName() + ".theirs");
      Run format =
          run(
              List.of(
                  "veritysetup",
                  "format",
                  "--salt=" + HexFormat.of().formatHex(salt),
                  image.toString(),
                  theirs.toString()));
      assertThat(format.exit).as(format.output).isZero();
      String root = rootHashOf(format.output);

      VerityTree.Header read = VerityTree.read(theirs);
      assertThat(read.rootHashHex()).isEqualTo(root);
      assertThat(read.salt()).isEqualTo(salt);
      assertThat(read.dataBlocks()).isEqualTo(Files.size(image) / VerityTree.BLOCK);
      assertThat(VerityTree.verify(image, theirs).rootHashHex()).isEqualTo(root);

      Path ours = dir.resolve(image.getFileName() + ".ours");
      VerityTree.Header made = VerityTree.create(image, salt, ours);
      assertThat(made.rootHashHex()).isEqualTo(root);
      // Byte for byte past the superblock (whose UUID is random).
      byte[] a = Files.readAllBytes(theirs);
      byte[] b = Files.readAllBytes(ours);
      assertThat(b.length).isEqualTo(a.length);
      assertThat(Arrays.copyOfRange(b, VerityTree.BLOCK, b.length))
          .isEqualTo(Arrays.copyOfRange(a, VerityTree.BLOCK, a.length));
    }
  }

  @Test
  void anImageNotAWholeNumberOfBlocksIsHashedAsIfPaddedWithZeros() throws Exception {
    byte[] bytes = new byte[10 * VerityTree.BLOCK + 100];
    new Random(3).nextBytes(bytes);
    Path image = Files.write(dir.resolve("odd"), bytes);
    Path padded = Files.write(dir.resolve("padded"), Arrays.copyOf(bytes, 11 * VerityTree.BLOCK));
    VerityTree.Header header = VerityTree.create(image, VerityTree.newSalt(), dir.resolve("t"));
    assertThat(header.dataBlocks()).isEqualTo(11);
    Run ok =
        run(
            List.of(
                "veritysetup",
                "verify",
                padded.toString(),
                dir.resolve("t").toString(),
                header.rootHashHex()));
    assertThat(ok.exit).as(ok.output).isZero();
  }

  @Test
  void malformedTreesAreRefusedWithTheirDefectNamed() throws Exception {
    Path image = blocks(300);
    Path tree = dir.resolve("tree");
    VerityTree.create(image, VerityTree.newSalt(), tree);
    byte[] good = Files.readAllBytes(tree);

    List<Object[]> cases = new ArrayList<>();
    cases.add(new Object[] {new byte[100], "the tree ends early"});
    cases.add(new Object[] {new byte[4096], "has no verity superblock"});
    byte[] truncated = Arrays.copyOf(good, good.length - 4096);
    cases.add(new Object[] {truncated, "a tree over 300 blocks needs"});
    byte[] md5 = good.clone();
    System.arraycopy("md5\0\0\0".getBytes(StandardCharsets.US_ASCII), 0, md5, 32, 6);
    cases.add(new Object[] {md5, "expected sha256 with 4096-byte blocks"});
    byte[] type0 = good.clone();
    type0[12] = 0;
    cases.add(new Object[] {type0, "hash type 0"});
    byte[] hugeSalt = good.clone();
    hugeSalt[80] = (byte) 0xff;
    hugeSalt[81] = (byte) 0xff;
    cases.add(new Object[] {hugeSalt, "65535-byte salt"});
    for (Object[] c : cases) {
      Path bad = Files.write(dir.resolve("bad"), (byte[]) c[0]);
      assertThatThrownBy(() -> VerityTree.read(bad))
          .isInstanceOf(VerityTree.InvalidTreeException.class)
          .hasMessageContaining((String) c[1]);
    }
    byte[] otherTop = good.clone();
    otherTop[4096 + 3] ^= 1;
    Path changed = Files.write(dir.resolve("changed"), otherTop);
    assertThat(VerityTree.read(changed).rootHashHex())
        .isNotEqualTo(VerityTree.read(tree).rootHashHex());
    assertThatThrownBy(() -> VerityTree.verify(image, changed))
        .isInstanceOf(VerityTree.InvalidTreeException.class);
  }
}
