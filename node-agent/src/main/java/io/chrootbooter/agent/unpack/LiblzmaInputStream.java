package io.chrootbooter.agent.unpack;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.io.InputStream;

/**
 * Decompresses .xz data with the system's liblzma ({@code lzma_stream_decoder(3)}), bound with JNA:
 * the speed of XZ Utils' C decoder whatever the JIT compiles (tukaani's Java decoder runs C1's code
 * under QEMU's TCG). Concatenated streams and stream padding are read as {@code xz -d} and
 * tukaani's {@code XZInputStream} read them; a stream cut short, corrupt data, an unsupported
 * option or a dictionary above the memory limit end with an {@link IOException} naming the cause.
 *
 * <p>The {@code lzma_stream} is a block of native memory written and read at the offsets of its C
 * layout on 64-bit Linux (pointers and {@code size_t} of 8 bytes, checked by {@link #load}): no JNA
 * {@code Structure}, whose reflection would run on every call. Compressed bytes are read from
 * upstream into a Java array without holding the lock, then copied into a native input buffer;
 * output is decoded into a native buffer and copied to the caller.
 *
 * <p>Where liblzma has it (5.4 and later), the decoder is the threaded one ({@code
 * lzma_stream_decoder_mt}), as {@code xz -d} uses since 5.4: the blocks of an image that a threaded
 * encoder wrote ({@code xz -T}) are decoded on every core, within {@link #THREADING_MEMORY} (above
 * it, and for single-block files, it decodes on one thread, as {@code xz} does).
 *
 * <p>Synchronized around the decoder: a reading thread may still be decoding when another thread
 * closes the stream after a timed-out join, and {@code lzma_end} under it would crash the JVM.
 */
final class LiblzmaInputStream extends InputStream {
  /** The soname of XZ Utils' liblzma. */
  static final String LIBLZMA = "liblzma.so.5";

  static final int BUFFER = 256 * 1024;

  // lzma_stream offsets (liblzma's lzma/base.h) on LP64.
  private static final long NEXT_IN = 0;
  private static final long AVAIL_IN = 8;
  private static final long NEXT_OUT = 24;
  private static final long AVAIL_OUT = 32;
  private static final int STREAM_SIZE = 136;

  private static final int LZMA_OK = 0;
  private static final int LZMA_STREAM_END = 1;
  private static final int LZMA_RUN = 0;
  private static final int LZMA_FINISH = 3;
  private static final int LZMA_CONCATENATED = 0x08;
  private static final int LZMA_FAIL_FAST = 0x20;

  // lzma_mt offsets (liblzma's lzma/container.h, 5.4) on LP64.
  private static final long MT_FLAGS = 0;
  private static final long MT_THREADS = 4;
  private static final long MT_MEMLIMIT_THREADING = 64;
  private static final long MT_MEMLIMIT_STOP = 72;
  private static final int MT_SIZE = 128;

  /**
   * The memory the threaded decoder may use before it falls back to one thread: enough for two
   * threads on images compressed with {@code xz -T -6} (8 MiB dictionaries, 24 MiB blocks).
   */
  static final long THREADING_MEMORY = 128L << 20;

  /** The liblzma entry points; registered by {@link #load}. */
  static final class Lzma {
    private Lzma() {}

    static native int lzma_stream_decoder(Pointer strm, long memlimit, int flags);

    static native int lzma_code(Pointer strm, int action);

    static native void lzma_end(Pointer strm);

    static native String lzma_version_string();
  }

  /** The threaded decoder of liblzma 5.4 and later; registered by {@link #load} when present. */
  static final class LzmaMt {
    private LzmaMt() {}

    static native int lzma_stream_decoder_mt(Pointer strm, Pointer options);
  }

  private static String loaded;
  private static volatile boolean threaded;

  /**
   * Binds {@link Lzma} to {@code library} (a soname such as {@code liblzma.so.5}) once per JVM and
   * returns liblzma's version.
   *
   * @throws UnsatisfiedLinkError when the library or one of its functions is missing, or this is
   *     not a 64-bit runtime
   */
  static synchronized String load(String library) {
    if (loaded != null) {
      if (!loaded.equals(library)) {
        throw new UnsatisfiedLinkError("liblzma is already bound to " + loaded);
      }
      return Lzma.lzma_version_string();
    }
    if (Native.POINTER_SIZE != 8 || Native.SIZE_T_SIZE != 8) {
      throw new UnsatisfiedLinkError("lzma_stream's layout is known for 64-bit runtimes only");
    }
    NativeLibrary lib = NativeLibrary.getInstance(library);
    Native.register(Lzma.class, lib);
    try {
      Native.register(LzmaMt.class, lib);
      threaded = true;
    } catch (UnsatisfiedLinkError e) {
      threaded = false; // liblzma before 5.4: one thread
    }
    loaded = library;
    return Lzma.lzma_version_string();
  }

  private final InputStream in;
  private final long memoryLimit;
  private final byte[] input = new byte[BUFFER];
  private Memory strm;
  private Memory nativeIn;
  private Memory nativeOut;
  private boolean inputEnded;
  private boolean finished;

  /**
   * A decoder of {@code in}, which must be bound ({@link #load}) first.
   *
   * @param memoryLimit the most memory the decoder may use (bytes): a stream whose dictionary needs
   *     more fails with an {@link IOException}
   */
  LiblzmaInputStream(InputStream in, long memoryLimit) throws IOException {
    this.in = in;
    this.memoryLimit = memoryLimit;
    strm = new Memory(STREAM_SIZE);
    strm.clear(); // LZMA_STREAM_INIT
    int threads = Runtime.getRuntime().availableProcessors();
    int rc;
    if (threaded && threads > 1) {
      try (Memory options = new Memory(MT_SIZE)) {
        options.clear();
        options.setInt(MT_FLAGS, LZMA_CONCATENATED | LZMA_FAIL_FAST);
        options.setInt(MT_THREADS, threads);
        options.setLong(MT_MEMLIMIT_THREADING, Math.min(THREADING_MEMORY, memoryLimit));
        options.setLong(MT_MEMLIMIT_STOP, memoryLimit);
        rc = LzmaMt.lzma_stream_decoder_mt(strm, options);
      }
    } else {
      rc = Lzma.lzma_stream_decoder(strm, memoryLimit, LZMA_CONCATENATED);
    }
    if (rc != LZMA_OK) {
      strm.close();
      strm = null;
      throw new IOException("xz decoder: lzma_stream_decoder failed: " + error(rc));
    }
    nativeIn = new Memory(BUFFER);
    nativeOut = new Memory(BUFFER);
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    int n = read(one, 0, 1);
    return n < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (len == 0) {
      return 0;
    }
    while (true) {
      int got = 0;
      if (needsInput()) {
        // Outside the lock: upstream may block, and close() must not wait for it.
        got = in.read(input, 0, input.length);
      }
      synchronized (this) {
        if (strm == null) {
          throw new IOException("xz stream closed");
        }
        if (finished) {
          return -1;
        }
        if (got < 0) {
          inputEnded = true;
        } else if (got > 0) {
          nativeIn.write(0, input, 0, got);
          strm.setPointer(NEXT_IN, nativeIn);
          strm.setLong(AVAIL_IN, got);
        }
        int room = Math.min(len, BUFFER);
        strm.setPointer(NEXT_OUT, nativeOut);
        strm.setLong(AVAIL_OUT, room);
        int rc = Lzma.lzma_code(strm, inputEnded ? LZMA_FINISH : LZMA_RUN);
        int produced = room - (int) strm.getLong(AVAIL_OUT);
        if (produced > 0) {
          nativeOut.read(0, b, off, produced);
        }
        if (rc == LZMA_STREAM_END) {
          finished = true;
          return produced > 0 ? produced : -1;
        }
        if (rc != LZMA_OK) {
          throw new IOException(
              inputEnded && rc == 10
                  ? "xz data is truncated (the stream ends before its end marker)"
                  : "xz data: " + error(rc));
        }
        if (produced > 0) {
          return produced;
        }
      }
    }
  }

  private synchronized boolean needsInput() {
    return strm != null && !finished && !inputEnded && strm.getLong(AVAIL_IN) == 0;
  }

  /** The meaning of an {@code lzma_ret} (lzma/base.h) as the decoder returns it. */
  private String error(int rc) {
    return switch (rc) {
      case 5 -> "out of memory (LZMA_MEM_ERROR)";
      case 6 ->
          "decompressing needs more than "
              + (memoryLimit >> 20)
              + " MiB of memory, the limit (LZMA_MEMLIMIT_ERROR: a dictionary too large)";
      case 7 -> "not in the .xz format (LZMA_FORMAT_ERROR)";
      case 8 -> "unsupported compression options (LZMA_OPTIONS_ERROR)";
      case 9 -> "corrupt (LZMA_DATA_ERROR)";
      case 10 -> "no progress possible (LZMA_BUF_ERROR)";
      default -> "lzma_ret " + rc;
    };
  }

  @Override
  public void close() throws IOException {
    synchronized (this) {
      if (strm != null) {
        Lzma.lzma_end(strm);
        strm.close();
        strm = null;
        nativeIn.close();
        nativeOut.close();
      }
    }
    in.close();
  }
}
