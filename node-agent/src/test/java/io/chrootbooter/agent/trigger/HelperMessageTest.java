package io.chrootbooter.agent.trigger;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Lines from the untrusted in-target helper. */
class HelperMessageTest {
  @Test
  void parsesReturnWithReasonAndHealthy() {
    assertThat(HelperMessage.parse("return please go back"))
        .contains(new HelperMessage.Return("please go back"));
    assertThat(HelperMessage.parse("return")).contains(new HelperMessage.Return(""));
    assertThat(HelperMessage.parse("healthy\r")).contains(new HelperMessage.Healthy());
  }

  @Test
  void ignoresAnythingElse() {
    assertThat(HelperMessage.parse("reboot")).isEmpty();
    assertThat(HelperMessage.parse("returned")).isEmpty();
    assertThat(HelperMessage.parse("")).isEmpty();
  }

  @Test
  void sanitisesAndCutsTheReason() {
    assertThat(HelperMessage.parse("return a\u001b[2Jb"))
        .contains(new HelperMessage.Return("a?[2Jb"));
    HelperMessage.Return r =
        (HelperMessage.Return) HelperMessage.parse("return " + "x".repeat(500)).orElseThrow();
    assertThat(r.reason()).hasSize(HelperMessage.MAX_REASON);
  }
}
