package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LinuxSyscallsTest {
  @TempDir Path temp;
  private final Syscalls syscalls = new LinuxSyscalls();

  @Test
  void errorsNameTheCallItsArgumentsAndTheErrno() {
    Path missing = temp.resolve("missing/null");

    assertThatThrownBy(() -> syscalls.mknod(missing, 020666, 1, 3))
        .isInstanceOf(SyscallException.class)
        .hasMessage("mknod(\"" + missing + "\", 020666, 0x103): ENOENT");
    assertThatThrownBy(() -> syscalls.lchown(missing, 1, 2))
        .hasMessage("lchown(\"" + missing + "\", 1, 2): ENOENT");
    assertThatThrownBy(() -> syscalls.lsetxattr(temp, "bogus.name", new byte[] {1}))
        .hasMessage("lsetxattr(\"" + temp + "\", \"bogus.name\", <1 bytes>): EOPNOTSUPP");
    assertThatThrownBy(() -> syscalls.lutimes(missing, Instant.EPOCH, Instant.EPOCH))
        .hasMessageStartingWith("utimensat(AT_FDCWD, \"" + missing + "\"")
        .hasMessageEndingWith("AT_SYMLINK_NOFOLLOW): ENOENT");
  }

  @Test
  void absentOnlyWhenNothingIsThereNotEvenADanglingSymlink() throws Exception {
    Path file = java.nio.file.Files.writeString(temp.resolve("file"), "x");
    Path dangling =
        java.nio.file.Files.createSymbolicLink(temp.resolve("dangling"), Path.of("/nowhere/x"));

    assertThat(syscalls.absent(temp.resolve("missing"))).isTrue();
    assertThat(syscalls.absent(file)).isFalse();
    assertThat(syscalls.absent(temp)).isFalse();
    assertThat(syscalls.absent(dangling)).as("a dangling symlink is there").isFalse();
    assertThat(syscalls.absent(file.resolve("below")))
        .as("ENOTDIR is not ENOENT: the caller asks lstat")
        .isFalse();
  }

  /** How a sparse file gets its trailing hole: the size grows, no block is allocated. */
  @Test
  void truncateExtendsWithAHoleAndNeverFollowsASymlink() throws Exception {
    Path file = java.nio.file.Files.writeString(temp.resolve("file"), "x");
    Path link = java.nio.file.Files.createSymbolicLink(temp.resolve("link"), file);

    syscalls.truncate(file, 10L << 30);

    assertThat(java.nio.file.Files.size(file)).isEqualTo(10L << 30);
    assertThat((Long) java.nio.file.Files.getAttribute(file, "unix:size")).isEqualTo(10L << 30);
    assertThatThrownBy(() -> syscalls.truncate(link, 1))
        .isInstanceOf(SyscallException.class)
        .hasMessage("open(\"" + link + "\", O_WRONLY|O_NOFOLLOW|O_CLOEXEC): ELOOP");
    assertThat(java.nio.file.Files.size(file)).isEqualTo(10L << 30);
    Process stat = new ProcessBuilder("stat", "-c", "%b", file.toString()).start();
    long blocks = Long.parseLong(new String(stat.getInputStream().readAllBytes()).trim());
    assertThat(blocks).as("512-byte blocks of a 10 GiB file with one byte").isLessThan(64);
  }

  @Test
  void makedevMatchesGlibc() {
    assertThat(LinuxSyscalls.makedev(1, 3)).isEqualTo(0x103);
    assertThat(LinuxSyscalls.makedev(259, 65536)).isEqualTo(0x10010300L);
    assertThat(Errno.name(1)).isEqualTo("EPERM");
    assertThat(Errno.name(4000)).isEqualTo("errno 4000");
  }
}
