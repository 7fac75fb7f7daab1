package io.chrootbooter.operator.token;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.security.SecureRandom;
import java.time.Instant;
import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class BootCredentialsTest {
  private static final String M1 = "52:54:00:12:34:56";
  private static final String M2 = "52:54:00:12:34:57";
  private static final String UID = "0b6f1c2e-7d4a-4f0e-9c55-2a1b3c4d5e6f";
  private static final byte[] KEY_A = filled(1);
  private static final byte[] KEY_B = filled(2);
  private static final Instant NOW = Instant.parse("2026-12-07T14:00:00Z");
  private final SecureRandom random = new SecureRandom();

  private static byte[] filled(int value) {
    byte[] key = new byte[32];
    Arrays.fill(key, (byte) value);
    return key;
  }

  @Test
  void aNonceIsRandomAndBoundToItsMac() {
    TokenKeys keys = new TokenKeys(KEY_A, Optional.empty());
    String nonce = BootCredentials.nonce(keys, M1, UID, NOW, random);
    assertThat(nonce)
        .matches("[A-Za-z0-9_-]+")
        .hasSize(BootCredentials.NONCE_CHARS)
        .isNotEqualTo(BootCredentials.nonce(keys, M1, UID, NOW, random));
    assertThat(BootCredentials.nonceIssued(keys, M1, UID, nonce)).contains(NOW);
    assertThat(BootCredentials.nonceIssued(keys, M2, UID, nonce)).isEmpty();
    assertThat(BootCredentials.nonceIssued(keys, M1, "9e1d0c2b-0000-4000-8000-000000000000", nonce))
        .as("a nonce of a deleted MachineBoot, checked for its successor of the same MAC")
        .isEmpty();
    assertThat(BootCredentials.nonceIssued(keys, M1, UID, "garbage!")).isEmpty();
    assertThat(BootCredentials.nonceIssued(keys, M1, UID, "")).isEmpty();
    assertThat(BootCredentials.nonceIssued(new TokenKeys(KEY_B, Optional.empty()), M1, UID, nonce))
        .as("a nonce of another key")
        .isEmpty();
    // One changed character anywhere (the issue time among them) breaks it.
    char[] chars = nonce.toCharArray();
    chars[30] = chars[30] == 'A' ? 'B' : 'A';
    assertThat(BootCredentials.nonceIssued(keys, M1, UID, new String(chars))).isEmpty();
  }

  @Test
  void aSessionNamesItsMachineAndIsNeverANonce() {
    TokenKeys keys = new TokenKeys(KEY_A, Optional.empty());
    byte[] id = new byte[16];
    random.nextBytes(id);
    var session = new BootCredentials.Session(M1, id, NOW.plusSeconds(3600));
    String credential = BootCredentials.session(keys, session);
    assertThat(credential).hasSize(BootCredentials.SESSION_CHARS).matches("[A-Za-z0-9_-]+");
    var parsed = BootCredentials.parseSession(keys, credential).orElseThrow();
    assertThat(parsed.mac()).isEqualTo(M1);
    assertThat(parsed.id()).isEqualTo(id);
    assertThat(parsed.expires()).isEqualTo(NOW.plusSeconds(3600));
    assertThat(parsed.idHash()).isEqualTo(session.idHash());
    assertThat(
            BootCredentials.parseSession(keys, BootCredentials.nonce(keys, M1, UID, NOW, random)))
        .isEmpty();
    assertThat(BootCredentials.nonceIssued(keys, M1, UID, credential)).isEmpty();
    assertThat(BootCredentials.parseSession(new TokenKeys(KEY_B, Optional.empty()), credential))
        .isEmpty();
    char[] chars = credential.toCharArray();
    chars[3] = chars[3] == 'A' ? 'B' : 'A'; // the MAC
    assertThat(BootCredentials.parseSession(keys, new String(chars))).isEmpty();
  }

  @Test
  void rotationKeepsOldCredentialsValidAndIssuesWithTheNewKey() {
    TokenKeys old = new TokenKeys(KEY_A, Optional.empty());
    String nonce = BootCredentials.nonce(old, M1, UID, NOW, random);
    String session =
        BootCredentials.session(old, new BootCredentials.Session(M1, new byte[16], NOW));
    TokenKeys rotated = new TokenKeys(KEY_B, Optional.of(KEY_A));
    assertThat(BootCredentials.nonceIssued(rotated, M1, UID, nonce)).contains(NOW);
    assertThat(BootCredentials.parseSession(rotated, session)).isPresent();
    TokenKeys retired = new TokenKeys(KEY_B, Optional.empty());
    assertThat(BootCredentials.nonceIssued(retired, M1, UID, nonce)).isEmpty();
    assertThat(BootCredentials.parseSession(retired, session)).isEmpty();
  }

  @Test
  void aForwardIsBoundToItsRequestAndIsNeverANonceOrASession() {
    TokenKeys keys = new TokenKeys(KEY_A, Optional.empty());
    byte[] binding =
        "http://10.0.0.5:9000\u0000ATTACH\u0000lab\u0000m1\u0000alice"
            .getBytes(java.nio.charset.StandardCharsets.UTF_8);
    Instant expires = NOW.plusSeconds(30);
    String forward = BootCredentials.forward(keys, binding, expires, random);
    assertThat(forward)
        .matches("[A-Za-z0-9_-]+")
        .isNotEqualTo(BootCredentials.forward(keys, binding, expires, random));
    assertThat(BootCredentials.forwardExpires(keys, binding, forward)).contains(expires);
    // Another replica, request, machine or user: not good.
    for (String other :
        new String[] {
          "http://10.0.0.6:9000\u0000ATTACH\u0000lab\u0000m1\u0000alice",
          "http://10.0.0.5:9000\u0000READ\u0000lab\u0000m1\u0000alice",
          "http://10.0.0.5:9000\u0000ATTACH\u0000lab\u0000m2\u0000alice",
          "http://10.0.0.5:9000\u0000ATTACH\u0000lab\u0000m1\u0000mallory"
        }) {
      assertThat(
              BootCredentials.forwardExpires(
                  keys, other.getBytes(java.nio.charset.StandardCharsets.UTF_8), forward))
          .as(other.replace('\u0000', ' '))
          .isEmpty();
    }
    assertThat(
            BootCredentials.forwardExpires(
                new TokenKeys(KEY_B, Optional.empty()), binding, forward))
        .as("a forward of another key")
        .isEmpty();
    char[] chars = forward.toCharArray();
    chars[25] = chars[25] == 'A' ? 'B' : 'A';
    assertThat(BootCredentials.forwardExpires(keys, binding, new String(chars)))
        .as("the expiry changed")
        .isEmpty();
    // A nonce has a forward's length: its first byte tells them apart, both ways.
    String nonce = BootCredentials.nonce(keys, M1, UID, NOW, random);
    assertThat(nonce).hasSize(forward.length());
    assertThat(BootCredentials.forwardExpires(keys, new byte[0], nonce)).isEmpty();
    assertThat(BootCredentials.nonceIssued(keys, M1, UID, forward)).isEmpty();
    assertThat(BootCredentials.parseSession(keys, forward)).isEmpty();
  }

  @Test
  void shortKeysAreRefused() {
    assertThatThrownBy(() -> new TokenKeys(new byte[16], Optional.empty()))
        .hasMessage("token key is 16 bytes; at least 32 are needed");
  }
}
