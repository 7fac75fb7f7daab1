package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The CLI contract: exit code, one line on stderr, nothing left in DIR. */
class UnpackCommandTest {
  @TempDir Path temp;
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private PrintStream savedErr;
  private PrintStream savedOut;

  @BeforeEach
  void captureOutput() {
    savedErr = System.err;
    savedOut = System.out;
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
  }

  @AfterEach
  void restoreOutput() {
    System.setErr(savedErr);
    System.setOut(savedOut);
  }

  private int run(String... args) {
    return new CommandLine(new UnpackCommand()).execute(args);
  }

  @Test
  void unpacksAndReportsTheDigest() throws Exception {
    Fixtures.assumeRoot();
    Path image =
        Files.write(
            temp.resolve("ok.tar"),
            HostileArchiveTest.tar(
                List.of(HostileArchiveTest.Entry.file("etc/hostname", "node\n"))));
    Path into = temp.resolve("root");

    int exit = run("--format", "tar", "--into", into.toString(), image.toString());

    assertThat(exit).isZero();
    assertThat(into.resolve("etc/hostname")).hasContent("node");
    assertThat(out.toString(StandardCharsets.UTF_8)).startsWith("unpacked " + image + " (tar, ");
  }

  @Test
  void refusalExitsNonZeroWithOneLineAndLeavesNothing() throws Exception {
    Fixtures.assumeRoot();
    Path image =
        Files.write(
            temp.resolve("evil.tar"),
            HostileArchiveTest.tar(
                List.of(
                    HostileArchiveTest.Entry.file("ok", "fine"),
                    HostileArchiveTest.Entry.symlink("up", ".."),
                    HostileArchiveTest.Entry.file("up/canary", "pwned"))));
    Path into = Files.createDirectory(temp.resolve("root"));

    int exit = run("--format", "tar", "--into", into.toString(), image.toString());

    assertThat(exit).isEqualTo(1);
    assertThat(err.toString(StandardCharsets.UTF_8))
        .isEqualTo(
            "unpack: archive entry \"up/canary\" refused: path goes through symlink \"up\"; links are"
                + " never followed"
                + System.lineSeparator());
    assertThat(into).isEmptyDirectory();
    assertThat(temp.resolve("canary")).doesNotExist();
  }

  @Test
  void badArgumentsAreOneLineToo() {
    assertThat(run("--format", "zip", "--into", temp.resolve("x").toString(), "nowhere"))
        .isEqualTo(1);
    assertThat(err.toString(StandardCharsets.UTF_8))
        .isEqualTo(
            "unpack: format \"zip\" is not one of squashfs, tar, tar.gz, tar.xz, tar.zst"
                + System.lineSeparator());
  }
}
