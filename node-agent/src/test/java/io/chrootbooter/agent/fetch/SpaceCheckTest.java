package io.chrootbooter.agent.fetch;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SpaceCheckTest {
  @TempDir Path temp;

  @Test
  void refusesAnImageLargerThanTheFreeSpaceNamingBothNumbers() throws IOException {
    long free = Files.getFileStore(temp).getUsableSpace();

    assertThatThrownBy(() -> SpaceCheck.requireRoom(free + (1L << 30), temp))
        .isInstanceOf(SpaceCheck.InsufficientSpaceException.class)
        .hasMessageStartingWith("image needs " + (free + (1L << 30)) + " bytes")
        .hasMessageContaining(temp + " (")
        .hasMessageContaining(" bytes (");
  }

  @Test
  void refusesAnImageLargerThanMemAvailableOnTmpfs() throws IOException {
    Path shm = Path.of("/dev/shm");
    org.junit.jupiter.api.Assumptions.assumeTrue(
        Files.isDirectory(shm) && Files.getFileStore(shm).type().equals("tmpfs"),
        "/dev/shm is not a tmpfs here");
    Path meminfo =
        Files.writeString(temp.resolve("meminfo"), "MemTotal: 4000 kB\nMemAvailable:    1000 kB\n");

    assertThatThrownBy(() -> SpaceCheck.requireRoom(2_000_000, shm, meminfo))
        .hasMessage(
            "image needs 2000000 bytes (1.9 MiB) of RAM for /dev/shm (tmpfs) but MemAvailable is"
                + " 1024000 bytes (1.0 MiB)");
    assertThatCode(() -> SpaceCheck.requireRoom(1_000_000, shm, meminfo))
        .doesNotThrowAnyException();
  }
}
