package io.chrootbooter.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The {@code ~.} escape as ssh users know it, keystroke chunk by keystroke chunk. */
class EscapeFilterTest {

  private static EscapeFilter.Result type(EscapeFilter f, String keys) {
    byte[] b = keys.getBytes(StandardCharsets.UTF_8);
    return f.filter(b, b.length);
  }

  private static String sent(EscapeFilter.Result r) {
    return new String(r.send(), StandardCharsets.UTF_8);
  }

  @Test
  void tildeDotDetachesOnlyAtTheStartOfALine() {
    EscapeFilter f = new EscapeFilter();
    EscapeFilter.Result r = type(f, "ls ~.\r");
    assertThat(sent(r)).isEqualTo("ls ~.\r");
    assertThat(r.detach()).isFalse();
    r = type(f, "~.rest");
    assertThat(r.detach()).isTrue();
    assertThat(sent(r)).isEmpty();
  }

  @Test
  void theFirstKeystrokeIsAtTheStartOfALine() {
    assertThat(type(new EscapeFilter(), "~.").detach()).isTrue();
  }

  @Test
  void theEscapeMaySpanTwoReads() {
    EscapeFilter f = new EscapeFilter();
    EscapeFilter.Result first = type(f, "date\n~");
    assertThat(sent(first)).isEqualTo("date\n");
    assertThat(first.detach()).isFalse();
    assertThat(type(f, ".").detach()).isTrue();
  }

  @Test
  void doubleTildeSendsOneAndOtherKeysPassWithTheTilde() {
    EscapeFilter f = new EscapeFilter();
    assertThat(sent(type(f, "~~.\r"))).isEqualTo("~.\r");
    assertThat(sent(type(f, "~/bin\r"))).isEqualTo("~/bin\r");
  }

  @Test
  void tildeQuestionMarkAsksForHelpAndStillAllowsADetach() {
    EscapeFilter f = new EscapeFilter();
    EscapeFilter.Result r = type(f, "~?");
    assertThat(r.help()).isTrue();
    assertThat(sent(r)).isEmpty();
    assertThat(type(f, "~.").detach()).isTrue();
  }
}
