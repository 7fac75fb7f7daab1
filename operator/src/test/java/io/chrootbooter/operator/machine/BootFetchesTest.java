package io.chrootbooter.operator.machine;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.protocol.Timeline;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/**
 * The operator's steps of a machine's boot: only what came from the address its script went to,
 * soon after, is the machine's; a boot takes the newest network boot before its agent started.
 */
class BootFetchesTest {
  private static final String MAC = "52:54:00:12:34:56";
  private static final Instant T = Instant.parse("2026-03-01T10:00:00Z");
  private final BootFetches fetches = new BootFetches();

  @Test
  void theKernelAndInitramfsFromTheScriptsAddressAreTheBootsFirstSteps() {
    fetches.scriptServed(MAC, "10.0.0.5", T);
    assertThat(
            fetches.fileServed(
                MAC, "10.0.0.5", "vmlinuz", T.plusMillis(200), T.plusMillis(700), 8L << 20))
        .isTrue();
    assertThat(
            fetches.fileServed(
                MAC, "10.0.0.5", "initramfs", T.plusMillis(800), T.plusMillis(2800), 64L << 20))
        .isTrue();

    assertThat(fetches.stepsBefore(MAC, T.plusSeconds(10)))
        .containsExactly(
            new Timeline.Step(Timeline.SCRIPT_SERVED, T.toString(), 0.2, null),
            new Timeline.Step(
                Timeline.KERNEL_SERVED, T.plusMillis(200).toString(), 0.6, "8.00 MiB at 16.8 MB/s"),
            new Timeline.Step(
                Timeline.INITRAMFS_SERVED,
                T.plusMillis(800).toString(),
                9.2,
                "64.0 MiB at 33.6 MB/s"));
    assertThat(fetches.stepsBefore(MAC, T.minusSeconds(1)))
        .as("an agent that started before the script")
        .isEmpty();
    assertThat(fetches.stepsBefore(MAC, T.plusSeconds(31 * 60)))
        .as("an agent that started half an hour later")
        .isEmpty();
  }

  @Test
  void aRequestFromElsewhereOrLaterOrForAnotherFileIsNobodys() {
    fetches.scriptServed(MAC, "10.0.0.5", T);
    assertThat(
            fetches.fileServed(MAC, "10.0.0.66", "vmlinuz", T.plusSeconds(1), T.plusSeconds(2), 1))
        .as("another address naming the machine")
        .isFalse();
    assertThat(
            fetches.fileServed(
                MAC, "10.0.0.5", "vmlinuz", T.plusSeconds(11 * 60), T.plusSeconds(11 * 60), 1))
        .as("long after the script")
        .isFalse();
    assertThat(fetches.fileServed(MAC, "10.0.0.5", "agent-cache", T, T.plusSeconds(1), 1))
        .isFalse();
    assertThat(
            fetches.fileServed("52:54:00:00:00:01", "10.0.0.5", "vmlinuz", T, T.plusSeconds(1), 1))
        .as("a machine whose script was not served")
        .isFalse();
    assertThat(fetches.stepsBefore(MAC, T.plusSeconds(5)))
        .extracting(Timeline.Step::name)
        .containsExactly(Timeline.SCRIPT_SERVED);
  }

  @Test
  void aBootTakesTheNewestNetworkBootBeforeItsAgentStarted() {
    fetches.scriptServed(MAC, "10.0.0.5", T);
    fetches.scriptServed(MAC, "10.0.0.5", T.plusSeconds(600));
    assertThat(fetches.stepsBefore(MAC, T.plusSeconds(60)).get(0).at()).isEqualTo(T.toString());
    assertThat(fetches.stepsBefore(MAC, T.plusSeconds(660)).get(0).at())
        .isEqualTo(T.plusSeconds(600).toString());
  }
}
