package io.chrootbooter.agent.bootstrap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Builds the commit checked out here twice, each from a clean clone at a different path, the second
 * after {@code mvn clean}, and expects the same initramfs.img, vmlinuz and vmlinux ({@code
 * src/bootstrap/check-reproducible.sh}, which names the files and jar entries that differ when they
 * do). agent-cache.img, the class archive, is not compared: the JDK's dumps are not reproducible.
 * Needs the bootstrap profile, root, git and Maven; takes a few minutes on 2 cores. {@code
 * -Dcb.bootstrap.skipReproducible=true} skips it; {@code -Dcb.repro.mvnArgs=-o} builds the clones
 * offline.
 */
class BootstrapReproducibleIT {

  @Test
  void twoCleanClonesBuildTheSameBootstrap() throws Exception {
    BootstrapImage.require();
    assumeTrue(
        !Boolean.getBoolean("cb.bootstrap.skipReproducible"),
        "-Dcb.bootstrap.skipReproducible=true");
    assumeTrue("root".equals(System.getProperty("user.name")), "the bootstrap build needs root");
    Path root = BootstrapImage.MODULE.getParent();
    assumeTrue(Files.exists(root.resolve(".git")), root + " is not a git checkout");
    Path log = BootstrapImage.MODULE.resolve("target/bootstrap-reproducible.log");
    ProcessBuilder pb =
        new ProcessBuilder(
                "bash",
                BootstrapImage.MODULE.resolve("src/bootstrap/check-reproducible.sh").toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile());
    pb.environment().put("CB_REPRO_MVN_ARGS", System.getProperty("cb.repro.mvnArgs", ""));
    pb.environment().remove("SOURCE_DATE_EPOCH");
    Process check = pb.start();
    try {
      assertThat(check.waitFor(40, TimeUnit.MINUTES)).as("both builds within 40 min").isTrue();
    } finally {
      check.destroyForcibly();
    }
    String out = Files.readString(log);
    System.out.print(out);
    assertThat(check.exitValue())
        .as("check-reproducible.sh's exit status (0: the same bytes); its output:\n" + out)
        .isZero();
  }
}
