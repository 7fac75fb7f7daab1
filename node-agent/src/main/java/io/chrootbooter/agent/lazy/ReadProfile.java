package io.chrootbooter.agent.lazy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Which pieces of an image a boot of it read: kept per digest beside the cached images, so that the
 * next boot of the same image prefetches them first. A file of extents (runs of pieces), written
 * atomically (a temporary file, then a rename), of bounded size: at most {@link #MAX_EXTENTS}
 * extents; a profile with more has its closest extents merged until it fits.
 *
 * <p>The format, big-endian: the magic {@code CBRP}, a version (1), the piece size, the image's
 * number of pieces, the number of extents, then each extent as its first piece and its length in
 * pieces, in ascending order without overlap. A file that breaks any of this (or was written for
 * another piece size or image size) is ignored, with a log line: a profile only orders the
 * prefetch, and the dm-verity device checks every block however it was fetched.
 */
public final class ReadProfile {
  private static final Logger LOG = Logger.getLogger(ReadProfile.class);

  /** The most extents a profile holds: 64 KiB of extents. */
  public static final int MAX_EXTENTS = 8192;

  private static final int MAGIC = 0x43425250; // "CBRP"
  private static final int VERSION = 1;
  private static final int HEADER = 20;

  private ReadProfile() {}

  /** The profile file of the image with digest {@code sha256} in {@code dir}. */
  public static Path file(Path dir, String sha256) {
    if (!sha256.matches("[0-9a-f]{64}")) {
      throw new IllegalArgumentException("not a SHA-256: " + sha256);
    }
    return dir.resolve(sha256 + ".reads");
  }

  /**
   * Writes {@code read} (pieces of {@code chunkSize} bytes of an image of {@code chunks} pieces) to
   * {@code file}, replacing it atomically; nothing when no piece was read.
   */
  public static void save(Path file, BitSet read, int chunkSize, int chunks) throws IOException {
    List<int[]> extents = coarsen(extents(read, chunks));
    if (extents.isEmpty()) {
      return;
    }
    ByteBuffer b = ByteBuffer.allocate(HEADER + 8 * extents.size());
    b.putInt(MAGIC).putInt(VERSION).putInt(chunkSize).putInt(chunks).putInt(extents.size());
    for (int[] e : extents) {
      b.putInt(e[0]).putInt(e[1]);
    }
    b.flip();
    Files.createDirectories(file.getParent());
    Path temporary = file.resolveSibling(file.getFileName() + ".tmp");
    try (FileChannel out =
        FileChannel.open(
            temporary,
            StandardOpenOption.CREATE,
            StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING)) {
      while (b.hasRemaining()) {
        out.write(b);
      }
      out.force(true);
    }
    try {
      Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(temporary, file, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  /**
   * The pieces {@code file} names, in ascending order; empty when there is no profile or it does
   * not fit an image of {@code chunks} pieces of {@code chunkSize} bytes.
   */
  public static Optional<BitSet> load(Path file, int chunkSize, int chunks) {
    if (!Files.isRegularFile(file)) {
      return Optional.empty();
    }
    try {
      long size = Files.size(file);
      if (size < HEADER || size > HEADER + 8L * MAX_EXTENTS || (size - HEADER) % 8 != 0) {
        throw new IOException(size + " bytes is no profile's size");
      }
      ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file));
      if (b.getInt() != MAGIC || b.getInt() != VERSION) {
        throw new IOException("not a read profile (magic, version)");
      }
      if (b.getInt() != chunkSize || b.getInt() != chunks) {
        throw new IOException("written for another piece size or image size");
      }
      int n = b.getInt();
      if (n < 0 || n != b.remaining() / 8) {
        throw new IOException("its extent count does not match its length");
      }
      BitSet read = new BitSet(chunks);
      long next = 0;
      for (int i = 0; i < n; i++) {
        long from = Integer.toUnsignedLong(b.getInt());
        long length = Integer.toUnsignedLong(b.getInt());
        if (from < next || length == 0 || from + length > chunks) {
          throw new IOException("extent " + i + " is out of order or out of the image");
        }
        read.set((int) from, (int) (from + length));
        next = from + length;
      }
      return Optional.of(read);
    } catch (IOException | RuntimeException e) {
      LOG.warnf("read profile %s ignored: %s", file, e.getMessage());
      return Optional.empty();
    }
  }

  /** Runs of set bits below {@code chunks}: {first, length}. */
  static List<int[]> extents(BitSet read, int chunks) {
    List<int[]> extents = new ArrayList<>();
    int from = read.nextSetBit(0);
    while (from >= 0 && from < chunks) {
      int to = Math.min(read.nextClearBit(from), chunks);
      extents.add(new int[] {from, to - from});
      from = to >= chunks ? -1 : read.nextSetBit(to);
    }
    return extents;
  }

  /**
   * {@code extents} with neighbours closer than a growing gap merged until at most {@link
   * #MAX_EXTENTS} remain: a larger profile than was read, never a smaller one.
   */
  static List<int[]> coarsen(List<int[]> extents) {
    long gap = 1;
    while (extents.size() > MAX_EXTENTS) {
      List<int[]> merged = new ArrayList<>();
      for (int[] e : extents) {
        int[] last = merged.isEmpty() ? null : merged.get(merged.size() - 1);
        if (last != null && (long) e[0] - (last[0] + last[1]) <= gap) {
          last[1] = e[0] + e[1] - last[0];
        } else {
          merged.add(new int[] {e[0], e[1]});
        }
      }
      extents = merged;
      gap *= 2;
    }
    return extents;
  }
}
