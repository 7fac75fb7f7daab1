package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.protocol.DesiredState;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Which serial port a desired state's {@code returnTriggers.serial} asks the agent to watch. */
class TriggersTest {
  private static final Path DEV = Path.of("/dev");
  private static final Triggers.Serial CB_SERIAL =
      new Triggers.Serial(DEV.resolve("ttyAMA0"), "RETURN_TO_BOOTSTRAP", 9600);

  private static Optional<Triggers.Serial> serialOf(
      Optional<Triggers.Serial> commandLine, Boolean enabled, String device) {
    return new Triggers(null, Path.of("/bin/busybox"), DEV, commandLine)
        .serialOf(new DesiredState.Serial(enabled, device, "GO_BACK"), 9600);
  }

  @Test
  void offInTheSpecIsOffWhateverTheCommandLineSays() {
    assertThat(serialOf(Optional.of(CB_SERIAL), false, null)).isEmpty();
    assertThat(serialOf(Optional.of(CB_SERIAL), false, "ttyS1")).isEmpty();
  }

  @Test
  void onWithoutAPortTakesTheCommandLinesPortElseTtyS1() {
    assertThat(serialOf(Optional.of(CB_SERIAL), null, null))
        .contains(new Triggers.Serial(DEV.resolve("ttyAMA0"), "GO_BACK", 9600));
    assertThat(serialOf(Optional.empty(), true, null))
        .contains(new Triggers.Serial(DEV.resolve("ttyS1"), "GO_BACK", 9600));
  }

  @Test
  void aNamedPortWinsAndAHostileNameWatchesNothing() {
    assertThat(serialOf(Optional.of(CB_SERIAL), true, "ttyS2"))
        .contains(new Triggers.Serial(DEV.resolve("ttyS2"), "GO_BACK", 9600));
    assertThat(serialOf(Optional.of(CB_SERIAL), true, "../sda")).isEmpty();
    assertThat(serialOf(Optional.empty(), true, "ttyS1\n")).isEmpty();
  }
}
