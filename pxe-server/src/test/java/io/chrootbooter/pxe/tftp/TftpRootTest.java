package io.chrootbooter.pxe.tftp;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.pxe.tftp.TftpPacket.Error;
import io.chrootbooter.pxe.tftp.TftpRoot.Found;
import io.chrootbooter.pxe.tftp.TftpRoot.Refused;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class TftpRootTest {
  @TempDir Path dir;
  TftpRoot root;

  @BeforeEach
  void setUp() throws Exception {
    Path r = Files.createDirectory(dir.resolve("root"));
    Files.writeString(r.resolve("undionly.kpxe"), "bios");
    Files.createDirectory(r.resolve("efi"));
    Files.writeString(r.resolve("efi/snponly.efi"), "efi");
    Files.createSymbolicLink(r.resolve("alias.kpxe"), r.resolve("undionly.kpxe"));
    Files.writeString(dir.resolve("secret"), "secret");
    Files.createSymbolicLink(r.resolve("escape"), dir.resolve("secret"));
    Files.createSymbolicLink(r.resolve("up"), dir);
    root = new TftpRoot(r);
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "undionly.kpxe   | undionly.kpxe",
        "efi/snponly.efi | snponly.efi",
        "./undionly.kpxe | undionly.kpxe",
        "alias.kpxe      | undionly.kpxe",
      })
  void servesFilesUnderTheRoot(String name, String realName) {
    assertThat(root.resolve(name))
        .isInstanceOfSatisfying(
            Found.class,
            f -> {
              assertThat(f.file()).startsWith(root.path());
              assertThat(f.file().getFileName()).hasToString(realName);
            });
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "../secret          | 2 | \"..\" in \"../secret\" refused",
        "efi/../../secret   | 2 | \"..\" in \"efi/../../secret\" refused",
        "/etc/passwd        | 2 | absolute path \"/etc/passwd\" refused",
        "escape             | 2 | \"escape\" links outside the TFTP root; refused",
        "up/secret          | 2 | \"up/secret\" links outside the TFTP root; refused",
        "efi\\snponly.efi   | 2 | file name has character 0x5c; refused",
        "missing.efi        | 1 | \"missing.efi\" not found",
        "efi                | 1 | \"efi\" is not a readable file",
      })
  void refusesWithAnErrorPacket(String name, int code, String message) {
    assertThat(root.resolve(name)).isEqualTo(new Refused(new Error(code, message)));
  }

  @Test
  void refusesControlCharactersAndEmptyNames() {
    assertThat(root.resolve("a\nb")).isInstanceOf(Refused.class);
    assertThat(root.resolve("")).isEqualTo(new Refused(new Error(1, "empty file name")));
  }
}
