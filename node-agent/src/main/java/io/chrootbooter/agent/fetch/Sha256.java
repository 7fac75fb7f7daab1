package io.chrootbooter.agent.fetch;

/**
 * One SHA-256 computation (FIPS 180-4), fed while an image streams by. {@link Sha256Engine} picks
 * the implementation: OpenSSL's libcrypto when it loads, the JDK's {@code MessageDigest} otherwise.
 * Not thread-safe; {@link #close()} releases native memory and is safe to call twice.
 */
public interface Sha256 extends AutoCloseable {

  /** Adds {@code len} bytes of {@code b} from {@code off}. */
  void update(byte[] b, int off, int len);

  /** The 32-byte digest of everything added; the computation is finished. */
  byte[] digest();

  @Override
  void close();
}
