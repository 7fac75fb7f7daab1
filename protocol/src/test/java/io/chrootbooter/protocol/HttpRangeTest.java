package io.chrootbooter.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class HttpRangeTest {
  @Test
  void requestsNameTheBytesAsRfc9110Does() {
    assertThat(HttpRange.from(0)).isEqualTo("bytes=0-");
    assertThat(HttpRange.from(1_048_576)).isEqualTo("bytes=1048576-");
    assertThat(HttpRange.between(4096, 8192)).isEqualTo("bytes=4096-8191");
  }

  @Test
  void answersAreReadWithTheirCompleteLengthOrWithout() {
    HttpRange.ContentRange r = HttpRange.parse("bytes 100-199/1000").orElseThrow();
    assertThat(r.first()).isEqualTo(100);
    assertThat(r.last()).isEqualTo(199);
    assertThat(r.complete()).isEqualTo(OptionalLong.of(1000));
    assertThat(r.startsAt(100)).isTrue();
    assertThat(r.startsAt(0)).isFalse();
    assertThat(r.covers(100, 200)).isTrue();
    assertThat(r.covers(100, 201)).isFalse();
    assertThat(HttpRange.parse("bytes 0-0/*").orElseThrow().complete()).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "bytes */1000", // an unsatisfied range is no answer to a range request
        "bytes 200-100/1000", // last before first
        "bytes 0-1000/1000", // past the end
        "items 0-1/2",
        "bytes 0-99999999999999999999/*", // beyond a long
        "bytes -1-5/10"
      })
  void malformedAnswersAreNoRange(String header) {
    assertThat(HttpRange.parse(header)).isEmpty();
  }

  @Test
  void resumesUnderAStrongValidatorOnly() {
    assertThat(HttpRange.validator("\"abc\"", "Mon, 07 Dec 2026 10:00:00 GMT")).contains("\"abc\"");
    assertThat(HttpRange.validator("W/\"abc\"", "Mon, 07 Dec 2026 10:00:00 GMT"))
        .contains("Mon, 07 Dec 2026 10:00:00 GMT");
    assertThat(HttpRange.validator("W/\"abc\"", null)).isEmpty();
    assertThat(HttpRange.validator(null, null)).isEmpty();
  }
}
