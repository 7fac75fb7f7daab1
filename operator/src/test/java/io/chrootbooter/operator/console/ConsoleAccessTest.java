package io.chrootbooter.operator.console;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** What counts as a bearer credential before anything goes to the API server. */
class ConsoleAccessTest {
  @Test
  void onlyABearerTokenOfPrintableCharactersIsSentForReview() {
    assertThat(ConsoleAccess.bearer("Bearer abc.def-ghi_123")).hasValue("abc.def-ghi_123");
    assertThat(ConsoleAccess.bearer("bearer   abc")).hasValue("abc");
    assertThat(ConsoleAccess.bearer(null)).isEmpty();
    assertThat(ConsoleAccess.bearer("")).isEmpty();
    assertThat(ConsoleAccess.bearer("Bearer")).isEmpty();
    assertThat(ConsoleAccess.bearer("Basic dXNlcjpwYXNz")).isEmpty();
    assertThat(ConsoleAccess.bearer("Bearer a b")).isEmpty();
    assertThat(ConsoleAccess.bearer("Bearer abc\u0000def")).isEmpty();
    assertThat(ConsoleAccess.bearer("Bearer t\u00e9st")).isEmpty();
    assertThat(ConsoleAccess.bearer("Bearer " + "x".repeat(20_000))).isEmpty();
  }

  @Test
  void theCacheTimeIsAtMostTenSeconds() {
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> new ConsoleAccess(null, java.time.Duration.ofSeconds(11)))
        .hasMessageContaining("cb.console.auth-cache must be between 0s and 10s");
  }
}
