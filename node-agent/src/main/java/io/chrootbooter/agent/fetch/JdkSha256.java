package io.chrootbooter.agent.fetch;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * SHA-256 by the JDK's {@code MessageDigest}: the fallback. Its speed depends on the JIT: C2
 * compiles it to the CPU's SHA instructions (an intrinsic), C1 does not (≈ 100 MB/s against ≈ 1,000
 * MB/s with C2 on the same machine; docs/architecture.md §7).
 */
final class JdkSha256 implements Sha256 {
  private final MessageDigest digest;

  JdkSha256() {
    try {
      this.digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
  }

  @Override
  public void update(byte[] b, int off, int len) {
    digest.update(b, off, len);
  }

  @Override
  public byte[] digest() {
    return digest.digest();
  }

  @Override
  public void close() {
    // nothing native
  }
}
