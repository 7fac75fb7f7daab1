package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the launcher leaves when the agent's JVM ended abnormally, read once by the next run. */
class PreviousRunTest {
  @TempDir Path dir;

  @Test
  void theLaunchersNoteIsReadOnceAndRemoved() throws Exception {
    Path note =
        Files.writeString(
            dir.resolve("agent-exit"), "ran out of heap memory (-Xmx48m) and was restarted\n");
    assertThat(Daemon.previousRun(note))
        .contains("ran out of heap memory (-Xmx48m) and was restarted");
    assertThat(note).doesNotExist();
    assertThat(Daemon.previousRun(note)).isEmpty();
  }

  @Test
  void aSymlinkOrAnEmptyNoteSaysNothing() throws Exception {
    Path target = Files.writeString(dir.resolve("elsewhere"), "forged");
    Path link = Files.createSymbolicLink(dir.resolve("agent-exit"), target);
    assertThat(Daemon.previousRun(link)).isEmpty();
    assertThat(target).hasContent("forged");
    Path empty = Files.writeString(dir.resolve("empty"), " \n");
    assertThat(Daemon.previousRun(empty)).isEmpty();
  }

  /**
   * The launcher's reading of the exit status: a JVM with -XX:+ExitOnOutOfMemoryError that exhausts
   * its heap ends with status 3.
   */
  @Test
  void aJvmThatExhaustsItsHeapExitsWithStatus3() throws Exception {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    Path source =
        Files.writeString(
            dir.resolve("Hog.java"),
            "public class Hog { public static void main(String[] a) {"
                + " java.util.List<long[]> l = new java.util.ArrayList<>();"
                + " while (true) l.add(new long[1 << 20]); } }");
    Process p =
        new ProcessBuilder(
                java.toString(), "-XX:+ExitOnOutOfMemoryError", "-Xmx16m", source.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes());
    assertThat(p.waitFor()).as(out).isEqualTo(3);
  }
}
