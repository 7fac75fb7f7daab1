package io.chrootbooter.agent.trigger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The serial magic line: only a whole line that is exactly the magic string fires. */
class MagicLineMatcherTest {
  @ParameterizedTest(name = "[{index}] {0} -> {1}")
  @CsvSource(
      delimiter = '|',
      value = {
        "RETURN_TO_BOOTSTRAP\\n|true",
        "RETURN_TO_BOOTSTRAP\\r\\n|true",
        "garbage\\nRETURN_TO_BOOTSTRAP\\r|true",
        "RETURN_TO_BOOTSTRAP|false",
        "RETURN_TO_BOOT\\n|false",
        "xRETURN_TO_BOOTSTRAP\\n|false",
        "RETURN_TO_BOOTSTRAPx\\n|false",
        "RETURN_TO_BOOTSTRAP RETURN_TO_BOOTSTRAP\\n|false",
        "login: RETURN_TO_BOOTSTRAP\\n|false",
        "return_to_bootstrap\\n|false",
      })
  void matchesWholeLinesOnly(String input, boolean fires) {
    byte[] bytes = input.replace("\\n", "\n").replace("\\r", "\r").getBytes(StandardCharsets.UTF_8);
    assertThat(new MagicLineMatcher("RETURN_TO_BOOTSTRAP").accept(bytes, 0, bytes.length))
        .isEqualTo(fires);
  }

  @Test
  void matchesAcrossChunksOneByteAtATime() {
    MagicLineMatcher matcher = new MagicLineMatcher("GO");
    byte[] bytes = "noise\nGO\n".getBytes(StandardCharsets.US_ASCII);
    int fired = 0;
    for (int i = 0; i < bytes.length; i++) {
      fired += matcher.accept(bytes, i, 1) ? 1 : 0;
    }
    assertThat(fired).isEqualTo(1);
  }

  @Test
  void rejectsAMultiLineMagicString() {
    assertThatThrownBy(() -> new MagicLineMatcher("A\nB"))
        .hasMessage("magic string \"A\nB\" must be non-empty and on one line");
  }
}
