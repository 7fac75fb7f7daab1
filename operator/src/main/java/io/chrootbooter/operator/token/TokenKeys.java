package io.chrootbooter.operator.token;

import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.Optional;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The HMAC keys machine tokens are made with: the current key issues, the current and the previous
 * key verify, so a key can be rotated without cutting off machines that booted with a token of the
 * old one.
 *
 * <p>A token is {@code base64url(HMAC-SHA256(key, mac))} without padding, where {@code mac} is the
 * lower-case colon form: it binds the token to one machine.
 */
public record TokenKeys(byte[] current, Optional<byte[]> previous) {
  private static final String ALGORITHM = "HmacSHA256";
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

  /** The token of the machine with this MAC (lower-case colon form). */
  public String issue(String mac) {
    return Base64.getUrlEncoder().withoutPadding().encodeToString(hmac(current, mac));
  }

  /** Whether {@code token} was issued for {@code mac} with the current or the previous key. */
  public boolean verify(String mac, String token) {
    byte[] presented;
    try {
      presented = Base64.getUrlDecoder().decode(token);
    } catch (IllegalArgumentException e) {
      return false;
    }
    boolean ok = MessageDigest.isEqual(hmac(current, mac), presented);
    // Both keys are always checked, so the time taken does not tell which one matched.
    boolean okPrevious =
        previous.map(key -> MessageDigest.isEqual(hmac(key, mac), presented)).orElse(false);
    return ok | okPrevious;
  }

  private static byte[] hmac(byte[] key, String mac) {
    try {
      Mac hmac = Mac.getInstance(ALGORITHM);
      hmac.init(new SecretKeySpec(key, ALGORITHM));
      return hmac.doFinal(mac.getBytes(StandardCharsets.US_ASCII));
    } catch (NoSuchAlgorithmException | InvalidKeyException e) {
      throw new IllegalStateException("HmacSHA256 is part of every Java runtime", e);
    }
  }
}
