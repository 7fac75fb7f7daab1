package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.agent.unpack.RootCheck.Machine;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RootCheckTest {
  private static final Machine X86_64 = new Machine(64, 62);

  @TempDir Path temp;
  private Path root;

  @BeforeEach
  void root() throws IOException {
    root = Files.createDirectories(temp.resolve("root"));
    for (String dir : new String[] {"proc", "sys", "dev", "run", "sbin", "bin", "lib/systemd"}) {
      Files.createDirectories(root.resolve(dir));
    }
  }

  /** A minimal ELF header: class, data (little-endian), e_machine. */
  private static byte[] elf(int elfClass, int machine) {
    byte[] header = new byte[64];
    header[0] = 0x7f;
    header[1] = 'E';
    header[2] = 'L';
    header[3] = 'F';
    header[4] = (byte) elfClass;
    header[5] = 1;
    header[18] = (byte) machine;
    header[19] = (byte) (machine >> 8);
    return header;
  }

  private Path executable(String path, byte[] content) throws IOException {
    Path file = root.resolve(path);
    Files.write(file, content);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    return file;
  }

  @Test
  void acceptsANativeInitBehindAnAbsoluteSymlink() throws IOException {
    executable("lib/systemd/systemd", elf(2, 62));
    Files.createSymbolicLink(root.resolve("sbin/init"), Path.of("/lib/systemd/systemd"));

    assertThatCode(() -> RootCheck.check(root, "/sbin/init", X86_64)).doesNotThrowAnyException();
    assertThat(RootCheck.resolveInRoot(root, "/sbin/init"))
        .isEqualTo(root.resolve("lib/systemd/systemd"));
  }

  @Test
  void symlinksNeverResolveOutsideTheRoot() throws IOException {
    Files.writeString(temp.resolve("outside-init"), "not in the root");
    Files.createSymbolicLink(root.resolve("sbin/init"), Path.of("../../../../outside-init"));
    Files.createSymbolicLink(root.resolve("bin/abs"), temp.resolve("outside-init"));

    assertThat(RootCheck.resolveInRoot(root, "/sbin/init")).isEqualTo(root.resolve("outside-init"));
    assertThat(RootCheck.resolveInRoot(root, "/bin/abs").startsWith(root)).isTrue();
    assertThatThrownBy(() -> RootCheck.check(root, "/sbin/init", X86_64))
        .hasMessage("/sbin/init does not exist in the image");
  }

  @Test
  void refusesAForeignArchitectureNamingBoth() throws IOException {
    executable("sbin/init", elf(2, 183));

    assertThatThrownBy(() -> RootCheck.check(root, "/sbin/init", X86_64))
        .hasMessage("/sbin/init is an aarch64 ELF; this machine is x86_64");
  }

  @Test
  void refusesThe32BitClass() throws IOException {
    executable("sbin/init", elf(1, 62));

    assertThatThrownBy(() -> RootCheck.check(root, "/sbin/init", X86_64))
        .hasMessage("/sbin/init is a 32-bit ELF; this machine runs 64-bit x86_64");
  }

  @Test
  void refusesANonExecutableInit() throws IOException {
    Files.write(root.resolve("sbin/init"), elf(2, 62));

    assertThatThrownBy(() -> RootCheck.check(root, "/sbin/init", X86_64))
        .hasMessage("/sbin/init is not executable (mode has no x bit)");
  }

  @Test
  void followsAScriptToItsInterpreter() throws IOException {
    executable("sbin/init", "#!/bin/sh -e\necho hi\n".getBytes());

    assertThatThrownBy(() -> RootCheck.check(root, "/sbin/init", X86_64))
        .hasMessage("/bin/sh does not exist in the image");
    executable("bin/sh", elf(2, 62));
    assertThatCode(() -> RootCheck.check(root, "/sbin/init", X86_64)).doesNotThrowAnyException();
  }

  @Test
  void refusesSymlinkLoops() throws IOException {
    Files.createSymbolicLink(root.resolve("sbin/init"), Path.of("init2"));
    Files.createSymbolicLink(root.resolve("sbin/init2"), Path.of("init"));

    assertThatThrownBy(() -> RootCheck.check(root, "/sbin/init", X86_64))
        .hasMessage("/sbin/init: more than 40 symlinks (ELOOP)");
  }

  @Test
  void refusesAMountPointThatIsAFile() throws IOException {
    executable("sbin/init", elf(2, 62));
    Files.delete(root.resolve("proc"));
    Files.writeString(root.resolve("proc"), "");

    assertThatThrownBy(() -> RootCheck.check(root, "/sbin/init", X86_64))
        .hasMessage("mount point /proc is not a directory");
  }

  @Test
  void refusesAMountPointThatIsASymlinkWhereverItPoints() throws IOException {
    executable("sbin/init", elf(2, 62));
    Files.createDirectories(root.resolve("etc/run"));
    Files.delete(root.resolve("run"));
    // Resolved inside the image it would be a directory; the bootstrap would resolve it in its own.
    Files.createSymbolicLink(root.resolve("run"), Path.of("/etc/run"));

    assertThatThrownBy(() -> RootCheck.check(root, "/sbin/init", X86_64))
        .hasMessage("mount point /run is a symbolic link (to /etc/run)");
  }

  @Test
  void refusesAnInitNamedThroughDotDotOrRelative() throws IOException {
    executable("sbin/init", elf(2, 62));

    assertThatThrownBy(() -> RootCheck.check(root, "/bin/../sbin/init", X86_64))
        .hasMessageContaining("init \"/bin/../sbin/init\" has an empty, \".\" or \"..\"");
    assertThatThrownBy(() -> RootCheck.check(root, "/sbin//init", X86_64))
        .hasMessageContaining("has an empty");
    assertThatThrownBy(() -> RootCheck.check(root, "sbin/init", X86_64))
        .hasMessage("init \"sbin/init\" is not an absolute path");
    assertThatThrownBy(() -> RootCheck.check(root, "/sbin/init\n", X86_64))
        .hasMessage("init \"/sbin/init?\" holds a control character");
    assertThatCode(() -> RootCheck.check(root, "/sbin/init", X86_64)).doesNotThrowAnyException();
  }

  @Test
  void thisMachineIsRecognized() {
    assertThat(Machine.current().bits()).isIn(32, 64);
  }
}
