package io.chrootbooter.agent.unpack;

import java.io.IOException;
import java.io.InputStream;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import org.jboss.logging.Logger;
import org.tukaani.xz.XZInputStream;

/**
 * Which .xz decoder the agent unpacks {@code tar.xz} images with, chosen once per JVM: XZ Utils'
 * liblzma (shipped in the bootstrap, bound with JNA by {@link LiblzmaInputStream}), else tukaani's
 * pure-Java {@code XZInputStream}. Under QEMU's TCG the agent runs C1 only, and tukaani's decoder
 * then runs C1's code; liblzma runs the same C code whatever the JIT does (bench/download.sh
 * compares both).
 *
 * <p>{@code CB_XZ_ENGINE} ({@code cb.xz-engine=} on the kernel command line) is {@code auto}
 * (liblzma, else tukaani, logged once with the reason), {@code liblzma} (fail when it does not
 * load) or {@code tukaani}.
 */
public final class XzEngine {
  private static final Logger LOG = Logger.getLogger(XzEngine.class);

  /**
   * The most memory either decoder may use: {@code xz -9} needs 65 MiB; a stream whose dictionary
   * needs more fails with a message instead of taking the machine's memory (liblzma) or the agent's
   * heap (tukaani).
   */
  static final long MEMORY_LIMIT = 256L << 20;

  /** The decoders. */
  public enum Kind {
    LIBLZMA,
    TUKAANI
  }

  private static volatile XzEngine instance;

  private final Kind kind;
  private final String reason;

  private XzEngine(Kind kind, String reason) {
    this.kind = kind;
    this.reason = reason;
  }

  /** The engine of this JVM, chosen from the environment at first use. */
  public static XzEngine get() {
    XzEngine e = instance;
    if (e == null) {
      synchronized (XzEngine.class) {
        e = instance;
        if (e == null) {
          e = choose(System.getenv(), LiblzmaInputStream.LIBLZMA, LOG::info);
          instance = e;
        }
      }
    }
    return e;
  }

  /**
   * Chooses a decoder: {@code CB_XZ_ENGINE} from {@code env}, {@code library} the liblzma to bind;
   * {@code log} gets one line saying which decoder and, for the fallback, why.
   *
   * @throws IllegalArgumentException for an unknown {@code CB_XZ_ENGINE}
   * @throws UnsatisfiedLinkError when {@code liblzma} is demanded and does not load
   * @throws IllegalStateException when {@code liblzma} is demanded and does not decode
   */
  static XzEngine choose(Map<String, String> env, String library, Consumer<String> log) {
    String wanted = env.getOrDefault("CB_XZ_ENGINE", "auto").toLowerCase(Locale.ROOT);
    XzEngine engine =
        switch (wanted) {
          case "tukaani" -> new XzEngine(Kind.TUKAANI, "CB_XZ_ENGINE=tukaani");
          case "liblzma" -> new XzEngine(Kind.LIBLZMA, library + " " + probe(library));
          case "auto" -> {
            try {
              yield new XzEngine(Kind.LIBLZMA, library + " " + probe(library));
            } catch (LinkageError | IllegalStateException e) {
              yield new XzEngine(
                  Kind.TUKAANI,
                  library + " not usable (" + oneLine(e.getMessage()) + "): the Java decoder");
            }
          }
          default ->
              throw new IllegalArgumentException(
                  "CB_XZ_ENGINE \""
                      + wanted
                      + "\" is not one of auto, liblzma, tukaani (kernel argument cb.xz-engine=)");
        };
    log.accept("xz by " + engine);
    return engine;
  }

  /** Binds liblzma and decodes an empty .xz stream to prove the binding works; its version. */
  private static String probe(String library) {
    String version = LiblzmaInputStream.load(library);
    // `xz -c < /dev/null`: the 32 bytes of an empty stream (CRC64).
    byte[] empty =
        java.util.HexFormat.of()
            .parseHex("fd377a585a000004e6d6b446000000001cdf44211fb6f37d010000000004595a");
    try (InputStream in =
        new LiblzmaInputStream(new java.io.ByteArrayInputStream(empty), MEMORY_LIMIT)) {
      if (in.read() != -1) {
        throw new IllegalStateException("an empty .xz stream decoded to bytes");
      }
    } catch (IOException e) {
      throw new IllegalStateException("an empty .xz stream did not decode: " + e.getMessage(), e);
    }
    return version;
  }

  /** JNA's link errors list every place it looked, one per line: the log gets one line. */
  private static String oneLine(String message) {
    return message == null ? "" : message.strip().replaceAll("\\s+", " ");
  }

  /** The decoder this engine uses. */
  public Kind kind() {
    return kind;
  }

  /** A decoder of the .xz data in {@code in}; reads the stream header (a cut header fails here). */
  public InputStream open(InputStream in) throws IOException {
    if (kind == Kind.LIBLZMA) {
      return new LiblzmaInputStream(in, MEMORY_LIMIT);
    }
    // tukaani's limit is in KiB; past it, a MemoryLimitException ("… KiB of memory would be
    // needed; limit was … KiB") when the block header is read.
    return new XZInputStream(in, (int) (MEMORY_LIMIT >> 10));
  }

  @Override
  public String toString() {
    return kind.name().toLowerCase(Locale.ROOT) + " (" + reason + ")";
  }
}
