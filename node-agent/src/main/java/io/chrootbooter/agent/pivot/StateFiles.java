package io.chrootbooter.agent.pivot;

import io.chrootbooter.protocol.MachinePhase;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.Optional;

/**
 * The bootstrap state in {@code /var/run/bootstrap/} (docs/architecture.md §4) so humans and
 * scripts can read it: {@code current_phase}, {@code pid_in_target} (the target init's PID as the
 * bootstrap sees it; empty outside {@code Running}), {@code last_image_url} and {@code boot_time}
 * (ISO-8601 of the last target start). Each file is one line, replaced atomically (write, then
 * rename).
 */
public final class StateFiles {
  /** Where the state lives on a real machine. */
  public static final Path DEFAULT_DIR = Path.of("/var/run/bootstrap");

  private final Path dir;

  public StateFiles(Path dir) {
    this.dir = dir;
  }

  /** The directory holding the files. */
  public Path dir() {
    return dir;
  }

  public void phase(MachinePhase phase) throws IOException {
    write("current_phase", phase.name());
  }

  /** Records a started target: its init's PID, image and start time. */
  public void running(long pid, String imageUrl, Instant bootTime) throws IOException {
    write("pid_in_target", Long.toString(pid));
    write("last_image_url", imageUrl);
    write("boot_time", bootTime.toString());
    phase(MachinePhase.Running);
  }

  /** Clears {@code pid_in_target}: no target runs. */
  public void noTarget() throws IOException {
    write("pid_in_target", "");
  }

  /** The value of one state file, without its newline; empty when the file does not exist. */
  public Optional<String> read(String name) throws IOException {
    Path file = dir.resolve(name);
    if (!Files.exists(file)) {
      return Optional.empty();
    }
    return Optional.of(Files.readString(file, StandardCharsets.UTF_8).strip());
  }

  private void write(String name, String value) throws IOException {
    Files.createDirectories(dir);
    Path tmp = dir.resolve("." + name + ".tmp");
    Files.writeString(tmp, value + "\n", StandardCharsets.UTF_8);
    Files.move(tmp, dir.resolve(name), StandardCopyOption.ATOMIC_MOVE);
  }
}
