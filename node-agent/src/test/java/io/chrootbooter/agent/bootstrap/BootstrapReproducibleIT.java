package io.chrootbooter.agent.bootstrap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Builds the bootstrap a second time from the same inputs and compares its digests with the build
 * in target/bootstrap (SHA256SUMS of initramfs.img, vmlinuz, vmlinux). Needs the bootstrap profile;
 * takes about a minute. {@code src/bootstrap/check-reproducible.sh} does the same from scratch (two
 * builds) and names the files that differ.
 */
class BootstrapReproducibleIT {

  @Test
  void secondBuildHasTheSameDigests() throws Exception {
    BootstrapImage image = BootstrapImage.require();
    assumeTrue(
        !Boolean.getBoolean("cb.bootstrap.skipReproducible"),
        "-Dcb.bootstrap.skipReproducible=true");
    Path again = BootstrapImage.MODULE.resolve("target/bootstrap-again");
    Path log = BootstrapImage.MODULE.resolve("target/bootstrap-again.log");
    ProcessBuilder pb =
        new ProcessBuilder(
                "bash",
                BootstrapImage.MODULE.resolve("src/bootstrap/build.sh").toString(),
                "--app",
                BootstrapImage.MODULE.resolve("target/quarkus-app").toString(),
                "--out",
                again.toString(),
                "--compression",
                image.buildInfo().getProperty("compression"))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile());
    pb.environment().put("SOURCE_DATE_EPOCH", image.buildInfo().getProperty("source_date_epoch"));
    Process build = pb.start();
    try {
      assertThat(build.waitFor(15, TimeUnit.MINUTES)).as("second build within 15 min").isTrue();
      assertThat(build.exitValue()).as("second build's exit status; log: " + log).isZero();
    } finally {
      build.destroyForcibly();
    }
    assertThat(Files.readString(again.resolve("SHA256SUMS")))
        .as("digests of the second build (first: target/bootstrap/SHA256SUMS)")
        .isEqualTo(Files.readString(image.dir().resolve("SHA256SUMS")));
  }
}
