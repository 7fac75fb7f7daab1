package io.chrootbooter.operator.token;

import java.util.Optional;

/**
 * The HMAC keys boot nonces and sessions are made with ({@link BootCredentials}): the current key
 * issues, the current and the previous key verify, so a key can be rotated without cutting off
 * machines that enrolled with the old one.
 */
public record TokenKeys(byte[] current, Optional<byte[]> previous) {
  private static final int MIN_KEY_BYTES = 32;

  public TokenKeys {
    if (current == null || current.length < MIN_KEY_BYTES) {
      throw new IllegalArgumentException(
          "token key is "
              + (current == null ? 0 : current.length)
              + " bytes; at least "
              + MIN_KEY_BYTES
              + " are needed");
    }
    current = current.clone();
    previous = previous.map(byte[]::clone);
  }
}
