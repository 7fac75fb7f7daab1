package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * Which SHA-256 implementation the agent hashes images with, chosen once per JVM.
 *
 * <p>Why native: the bootstrap runs the agent C1-only under QEMU's TCG (docs/architecture.md §7),
 * and C1 has no SHA-256 intrinsic: {@code MessageDigest} then hashes at ≈ 100 MB/s, where the
 * machine's SHA instructions do 1,000-1,800 MB/s and a 10 GbE link brings 1,200 MB/s. OpenSSL's
 * libcrypto (shipped in the bootstrap, 4.7 MB) runs them whatever the JIT does. The kernel's crypto
 * API through an AF_ALG socket would need no library, but kernels built without {@code
 * CONFIG_CRYPTO_USER_API_HASH} (such as this project's build hosts) refuse the socket with
 * EAFNOSUPPORT, and the benchmark must run what the machines run; libcrypto is bound through JNA,
 * which works on both runtimes the bootstrap is built with (Java 17 and 25), where the FFM API
 * would need Java 22.
 *
 * <p>{@code CB_SHA256_ENGINE} ({@code cb.sha256-engine=} on the kernel command line) is {@code
 * auto} (libcrypto, else the JDK), {@code libcrypto} (fail when it does not load) or {@code jdk}.
 */
public final class Sha256Engine {
  private static final Logger LOG = Logger.getLogger(Sha256Engine.class);

  /** The soname of OpenSSL 3's libcrypto. */
  static final String LIBCRYPTO = "libcrypto.so.3";

  /** The implementations. */
  public enum Kind {
    LIBCRYPTO,
    JDK
  }

  private static volatile Sha256Engine instance;

  private final Kind kind;
  private final String reason;

  private Sha256Engine(Kind kind, String reason) {
    this.kind = kind;
    this.reason = reason;
  }

  /** The engine of this JVM, chosen from the environment at first use. */
  public static Sha256Engine get() {
    Sha256Engine e = instance;
    if (e == null) {
      synchronized (Sha256Engine.class) {
        e = instance;
        if (e == null) {
          e = choose(System.getenv(), LIBCRYPTO, LOG::info);
          instance = e;
        }
      }
    }
    return e;
  }

  /**
   * Chooses an engine: {@code CB_SHA256_ENGINE} from {@code env}, {@code library} the libcrypto to
   * bind; {@code log} gets one line saying which engine and, for the fallback, why.
   *
   * @throws IllegalArgumentException for an unknown {@code CB_SHA256_ENGINE}
   * @throws UnsatisfiedLinkError when {@code libcrypto} is demanded and does not load
   */
  static Sha256Engine choose(Map<String, String> env, String library, Consumer<String> log) {
    String wanted = env.getOrDefault("CB_SHA256_ENGINE", "auto").toLowerCase(Locale.ROOT);
    Sha256Engine engine =
        switch (wanted) {
          case "jdk" -> new Sha256Engine(Kind.JDK, "CB_SHA256_ENGINE=jdk");
          case "libcrypto" -> {
            probe(library, LibcryptoSha256::new);
            yield new Sha256Engine(Kind.LIBCRYPTO, library);
          }
          case "auto" -> {
            try {
              probe(library, LibcryptoSha256::new);
              yield new Sha256Engine(Kind.LIBCRYPTO, library);
            } catch (LinkageError | IllegalStateException e) {
              yield new Sha256Engine(
                  Kind.JDK,
                  library + " not usable (" + oneLine(e.getMessage()) + "): MessageDigest");
            }
          }
          default ->
              throw new IllegalArgumentException(
                  "CB_SHA256_ENGINE \""
                      + wanted
                      + "\" is not one of auto, libcrypto, jdk (kernel argument cb.sha256-engine=)");
        };
    log.accept("SHA-256 by " + engine);
    return engine;
  }

  /** Binds libcrypto and hashes "abc" (FIPS 180-4 §B.1) to prove the binding works. */
  private static void probe(String library, Supplier<Sha256> create) {
    LibcryptoSha256.load(library);
    try (Sha256 sha = create.get()) {
      sha.update(new byte[] {'a', 'b', 'c'}, 0, 3);
      String hex = java.util.HexFormat.of().formatHex(sha.digest());
      if (!hex.equals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")) {
        throw new IllegalStateException("SHA-256(\"abc\") came out as " + hex);
      }
    }
  }

  /** JNA's link errors list every place it looked, one per line: the log gets one line. */
  private static String oneLine(String message) {
    return message == null ? "" : message.strip().replaceAll("\\s+", " ");
  }

  /** The implementation this engine uses. */
  public Kind kind() {
    return kind;
  }

  /**
   * The SHA-256 of a file as it is now (lower-case hex), read without following a symlink, by the
   * engine of {@link #get()}: about 1.3 GB/s with libcrypto.
   */
  public static String sha256Of(Path file) throws IOException {
    try (Sha256 sha = get().start();
        FileChannel in =
            FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
      ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
      while (in.read(buffer) >= 0) {
        buffer.flip();
        sha.update(buffer.array(), 0, buffer.limit());
        buffer.clear();
      }
      return HexFormat.of().formatHex(sha.digest());
    }
  }

  /** A new computation. */
  public Sha256 start() {
    return kind == Kind.LIBCRYPTO ? new LibcryptoSha256() : new JdkSha256();
  }

  @Override
  public String toString() {
    return kind.name().toLowerCase(Locale.ROOT) + " (" + reason + ")";
  }
}
