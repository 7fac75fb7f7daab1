package io.chrootbooter.e2e.lab;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ./lab up} notices at once when a service it started dies: the image server (busybox httpd)
 * is killed as soon as it starts, and {@code up} must stop within seconds, name the service, show
 * its log and take the lab down — not wait out the operator's mirroring timeout on a closed port,
 * as a lab whose busybox was missing once did for 300 s.
 */
class LabDeadServiceTest {
  /** What the issue allows from the death of a service to the end of {@code up}. */
  private static final Duration NOTICED_WITHIN = Duration.ofSeconds(30);

  @TempDir Path dir;

  @Test
  void upStopsNamingTheDeadServiceWithItsLogAndTakesTheLabDown() throws Exception {
    Path repository = Path.of(System.getProperty("cb.repo.dir", "..")).toAbsolutePath().normalize();
    assumeTrue(
        Files.isExecutable(repository.resolve("lab")),
        "no lab script in " + repository + " (set -Dcb.repo.dir)");
    Optional<String> missing = LabPrerequisites.missing(repository);
    assumeTrue(missing.isEmpty(), () -> "the lab cannot run here: " + missing.orElse(""));

    Path pidFile = dir.resolve("state/pids/images.pid");
    Process up = Lab.start(repository, dir, "--machines", "1", "--no-debian");
    try {
      Awaitility.await("the image server's pid file, or the end of ./lab up")
          .atMost(Duration.ofMinutes(10))
          .pollInterval(Duration.ofMillis(50))
          .until(() -> pidOf(pidFile).isPresent() || !up.isAlive());
      assertThat(up.isAlive())
          .as("./lab up still runs when the image server starts:\n%s", output())
          .isTrue();
      long pid = pidOf(pidFile).orElseThrow();
      ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
      Instant killed = Instant.now();

      boolean ended = up.waitFor(NOTICED_WITHIN.toSeconds() + 60, TimeUnit.SECONDS);
      Duration took = Duration.between(killed, Instant.now());
      String output = output();
      assertThat(ended)
          .as("./lab up still runs %s after its image server died:\n%s", took, output)
          .isTrue();
      assertThat(up.exitValue()).as("./lab up's exit status:\n%s", output).isNotZero();
      assertThat(took)
          .as("from the kill to the end of ./lab up:\n%s", output)
          .isLessThan(NOTICED_WITHIN);
      assertThat(output)
          .as("./lab up names the dead service, how it ended and its log, then takes the lab down")
          .contains("lab: the image server (busybox httpd) (images) has died")
          .contains("killed by signal 9")
          .contains("----- logs/images.log")
          .contains("lab: up failed; taking the lab down");
      assertThat(dir.resolve("state"))
          .as("the lab's state folder after the failed up")
          .doesNotExist();
      assertThat(netnsList())
          .as("network namespaces after the failed up")
          .doesNotContain(Lab.name());
    } finally {
      up.destroyForcibly().waitFor();
      Lab.downAfter(repository, dir);
    }
  }

  private static Optional<Long> pidOf(Path pidFile) {
    try {
      String text = Files.readString(pidFile).trim();
      return text.matches("[0-9]+") ? Optional.of(Long.parseLong(text)) : Optional.empty();
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  private String output() throws IOException {
    Path log = dir.resolve("lab-up.log");
    return Files.exists(log) ? Lab.clean(Files.readString(log, StandardCharsets.ISO_8859_1)) : "";
  }

  private static List<String> netnsList() throws IOException, InterruptedException {
    Process p = new ProcessBuilder("ip", "netns", "list").redirectErrorStream(true).start();
    String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor();
    return text.lines().map(line -> line.split(" ")[0]).toList();
  }
}
