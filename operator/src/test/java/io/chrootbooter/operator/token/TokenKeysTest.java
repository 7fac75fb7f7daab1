package io.chrootbooter.operator.token;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class TokenKeysTest {
  private static final byte[] KEY_A = filled(1);
  private static final byte[] KEY_B = filled(2);

  private static byte[] filled(int value) {
    byte[] key = new byte[32];
    Arrays.fill(key, (byte) value);
    return key;
  }

  @Test
  void tokenIsBoundToItsMac() {
    TokenKeys keys = new TokenKeys(KEY_A, Optional.empty());
    String token = keys.issue("52:54:00:12:34:56");
    assertThat(token).matches("[A-Za-z0-9_-]{43}");
    assertThat(keys.verify("52:54:00:12:34:56", token)).isTrue();
    assertThat(keys.verify("52:54:00:12:34:57", token)).isFalse();
    assertThat(keys.verify("52:54:00:12:34:56", "garbage!")).isFalse();
    assertThat(keys.verify("52:54:00:12:34:56", "")).isFalse();
  }

  @Test
  void rotationKeepsOldTokensValidAndIssuesWithTheNewKey() {
    String old = new TokenKeys(KEY_A, Optional.empty()).issue("52:54:00:12:34:56");
    TokenKeys rotated = new TokenKeys(KEY_B, Optional.of(KEY_A));
    assertThat(rotated.verify("52:54:00:12:34:56", old)).isTrue();
    assertThat(rotated.issue("52:54:00:12:34:56")).isNotEqualTo(old);
    TokenKeys retired = new TokenKeys(KEY_B, Optional.empty());
    assertThat(retired.verify("52:54:00:12:34:56", old)).isFalse();
  }

  @Test
  void shortKeysAreRefused() {
    assertThatThrownBy(() -> new TokenKeys(new byte[16], Optional.empty()))
        .hasMessage("token key is 16 bytes; at least 32 are needed");
  }
}
