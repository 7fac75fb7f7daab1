package io.chrootbooter.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Go-style durations, as the CRD schema and the agent read them. */
class GoDurationTest {

  @Test
  void partsAddUp() {
    assertThat(GoDuration.tryParse("1h30m")).contains(Duration.ofMinutes(90));
    assertThat(GoDuration.tryParse("1m30s")).contains(Duration.ofSeconds(90));
    assertThat(GoDuration.tryParse("250ms")).contains(Duration.ofMillis(250));
    assertThat(GoDuration.tryParse("0s")).contains(Duration.ZERO);
    assertThat(GoDuration.tryParse("999999h")).contains(Duration.ofHours(999999));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "soon", "1.5s", "-1s", "10", "1d", "1000000s", " 1s", "1s\n"})
  void anythingElseIsNone(String text) {
    assertThat(GoDuration.tryParse(text)).isEmpty();
  }

  @Test
  void theErrorNamesFieldValueAndForm() {
    assertThatThrownBy(() -> GoDuration.parse("--grace", "1.5s"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("--grace: \"1.5s\" is not a duration such as 500ms, 90s, 5m or 1h30m");
    assertThat(GoDuration.tryParse(null)).isEmpty();
  }

  @Test
  void formatsAsGoWritesAndReadsBack() {
    assertThat(GoDuration.format(Duration.ofMillis(2500))).isEqualTo("2500ms");
    assertThat(GoDuration.format(Duration.ofSeconds(15))).isEqualTo("15s");
    assertThat(GoDuration.format(Duration.ofSeconds(3723))).isEqualTo("1h2m3s");
    assertThat(GoDuration.format(Duration.ofMinutes(90))).isEqualTo("1h30m");
    assertThat(GoDuration.format(Duration.ofHours(2))).isEqualTo("2h");
    assertThat(GoDuration.format(Duration.ZERO)).isEqualTo("0s");
    assertThat(GoDuration.format(Duration.ofSeconds(-3))).isEqualTo("0s");
    for (Duration d :
        new Duration[] {
          Duration.ofMillis(1), Duration.ofSeconds(59), Duration.ofSeconds(61), Duration.ofDays(3)
        }) {
      assertThat(GoDuration.tryParse(GoDuration.format(d))).contains(d);
    }
  }
}
