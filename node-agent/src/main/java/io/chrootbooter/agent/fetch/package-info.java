/**
 * Getting image bytes: streamed HTTP(S) with the JDK client, SHA-256 while streaming, resume with
 * Range/If-Range, retries with jittered exponential backoff, stall detection, cancellation,
 * progress events, and the room-to-fit check. Nothing here parses images.
 *
 * <p>SHA-256 is computed by OpenSSL's libcrypto, bound here by hand through JNA ({@link
 * io.chrootbooter.agent.fetch.LibcryptoSha256}), rather than by the JDK's {@code MessageDigest}:
 * under QEMU's TCG the bootstrap runs the JVM C1 only, and C1 compiles no SHA-256 intrinsic (≈ 100
 * MB/s, where libcrypto uses the CPU's SHA instructions whatever the JIT does). The Java security
 * providers with native digests (Conscrypt, Amazon Corretto Crypto Provider) each bring a crypto
 * library and a JNI build of their own into the initramfs; the system's libcrypto and the JNA the
 * agent already uses need six EVP functions bound. {@code MessageDigest} stays the fallback ({@link
 * io.chrootbooter.agent.fetch.Sha256Engine}).
 */
package io.chrootbooter.agent.fetch;
