package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.protocol.DesiredState;
import java.time.Duration;
import java.util.Optional;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The agent's second check of a BootImage's {@code stop}, as it arrives on the stream. */
class StopRuleTest {

  @ParameterizedTest
  @CsvSource({
    "SIGHUP, 1",
    "SIGINT, 2",
    "SIGQUIT, 3",
    "SIGUSR1, 10",
    "SIGUSR2, 12",
    "SIGTERM, 15",
    "SIGPWR, 30",
    "SIGRTMIN+0, 34",
    "SIGRTMIN+4, 38",
    "SIGRTMIN+30, 64"
  })
  void powerOffSignalsHaveTheirLinuxNumbers(String name, int number) {
    assertThat(StopRule.of(new DesiredState.Stop(name, null)).signal())
        .isEqualTo(OptionalInt.of(number));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "SIGKILL",
        "SIGSTOP",
        "TERM",
        "15",
        "sigterm",
        "SIGRTMIN+31",
        "SIGRTMIN+04x",
        " SIGTERM",
        "SIGTERM\n",
        ""
      })
  void anythingElseIsRefusedNamingFieldValueAndRule(String name) {
    assertThatThrownBy(() -> StopRule.of(new DesiredState.Stop(name, null)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("image.stop.signal: \"")
        .hasMessageContaining("is not a power-off signal: SIGHUP, SIGINT,")
        .hasMessageEndingWith("the image is not booted")
        .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
  }

  @Test
  void gracePeriodsAreBoundedDurations() {
    assertThat(StopRule.of(new DesiredState.Stop(null, "1m30s")).grace())
        .contains(Duration.ofSeconds(90));
    assertThat(StopRule.of(new DesiredState.Stop(null, "0s")).grace()).contains(Duration.ZERO);
    assertThat(StopRule.of(new DesiredState.Stop(null, "10m")).grace())
        .contains(Duration.ofMinutes(10));
    assertThatThrownBy(() -> StopRule.of(new DesiredState.Stop(null, "10m1ms")))
        .hasMessage(
            "image.stop.gracePeriod: \"10m1ms\" is longer than the longest grace period, 10m;"
                + " the image is not booted");
    assertThatThrownBy(() -> StopRule.of(new DesiredState.Stop(null, "99999999999999999999h")))
        .hasMessageStartingWith(
            "image.stop.gracePeriod: \"99999999999999999999h\" is not a duration");
    assertThatThrownBy(() -> StopRule.of(new DesiredState.Stop(null, "-1s")))
        .hasMessageContaining("is not a duration such as 500ms, 30s or 2m");
  }

  @Test
  void unsetMeansTheInitsSignalAndTheAgentsGrace() {
    assertThat(StopRule.of(null)).isEqualTo(StopRule.DEFAULTS);
    assertThat(StopRule.of(new DesiredState.Stop(null, null)))
        .isEqualTo(new StopRule(OptionalInt.empty(), Optional.empty()));
  }
}
