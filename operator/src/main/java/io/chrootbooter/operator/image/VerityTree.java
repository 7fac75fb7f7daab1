package io.chrootbooter.operator.image;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.UUID;

/**
 * A dm-verity hash tree over an image, in the on-disk format of {@code veritysetup format}
 * (cryptsetup's {@code lib/verity}; the kernel's {@code Documentation/admin-guide/device-mapper/
 * verity.rst}): hash type 1 (each hash is SHA-256 over the salt, then the block), 4 KiB data and
 * hash blocks, a 512-byte superblock in the first hash block, the levels from the root's down to
 * the one over the data blocks, each hash block holding 128 hashes and zero-filled after the last.
 * The root hash is the hash of the topmost block. {@code veritysetup verify} checks such a tree,
 * and the kernel's verity target reads it with hash start block 1.
 *
 * <p>An image whose size is not a multiple of 4 KiB is hashed as if padded with zeros to the next
 * block; the agent's block device reads zeros there as well.
 */
public final class VerityTree {
  /** The data and hash block size. */
  public static final int BLOCK = 4096;

  /** The hash algorithm, as the superblock and the dm table name it. */
  public static final String ALGORITHM = "sha256";

  /** The salt size {@code veritysetup format} picks by default: 32 random bytes. */
  public static final int SALT_BYTES = 32;

  private static final int DIGEST = 32;
  private static final int PER_BLOCK_BITS = 7; // 4096 / 32 = 128 hashes per block
  private static final int SUPERBLOCK = 512;
  private static final byte[] SIGNATURE = "verity\0\0".getBytes(StandardCharsets.US_ASCII);
  private static final int MAX_SALT = 256;

  /**
   * What a tree says: the salt, the data blocks it covers, and the root hash (computed from its
   * topmost block).
   */
  public record Header(byte[] salt, long dataBlocks, byte[] rootHash, UUID uuid) {
    public String rootHashHex() {
      return HexFormat.of().formatHex(rootHash);
    }

    public String saltHex() {
      return HexFormat.of().formatHex(salt);
    }

    /** The size of the tree file: the superblock's block and every level. */
    public long treeBytes() {
      return (long) BLOCK * (1 + layout(dataBlocks).total());
    }
  }

  /** A malformed or mismatching tree. */
  public static final class InvalidTreeException extends IOException {
    InvalidTreeException(String message) {
      super(message);
    }
  }

  private VerityTree() {}

  /** A fresh random salt of the default size. */
  public static byte[] newSalt() {
    byte[] salt = new byte[SALT_BYTES];
    new SecureRandom().nextBytes(salt);
    return salt;
  }

  /** The data blocks of an image of {@code size} bytes: whole 4 KiB blocks, the last padded. */
  public static long dataBlocks(long size) {
    return Math.max(1, (size + BLOCK - 1) / BLOCK);
  }

  /** Where each level starts (in blocks from the tree's start) and how many blocks it has. */
  record Layout(long[] start, long[] size, long total) {
    int levels() {
      return start.length;
    }
  }

  /** cryptsetup's {@code hash_levels}: the topmost level first, right after the superblock. */
  static Layout layout(long dataBlocks) {
    int levels = 0;
    while (PER_BLOCK_BITS * levels < 64 && ((dataBlocks - 1) >>> (PER_BLOCK_BITS * levels)) != 0) {
      levels++;
    }
    long[] start = new long[levels];
    long[] size = new long[levels];
    long position = 1;
    for (int i = levels - 1; i >= 0; i--) {
      start[i] = position;
      int shift = (i + 1) * PER_BLOCK_BITS;
      size[i] = shift >= 63 ? 1 : (dataBlocks + (1L << shift) - 1) >>> shift;
      position += size[i];
    }
    return new Layout(start, size, position - 1);
  }

  /**
   * Writes the tree of {@code image} with {@code salt} to {@code tree} (created or replaced) and
   * returns its header.
   */
  public static Header create(Path image, byte[] salt, Path tree) throws IOException {
    checkSalt(salt);
    UUID uuid = UUID.randomUUID();
    try (FileChannel in = FileChannel.open(image, StandardOpenOption.READ);
        FileChannel out =
            FileChannel.open(
                tree,
                StandardOpenOption.CREATE,
                StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
      long dataBlocks = dataBlocks(in.size());
      Built built = build(in, salt, dataBlocks);
      ByteBuffer first = ByteBuffer.allocate(BLOCK);
      first.put(superblock(salt, dataBlocks, uuid)).rewind();
      writeFully(out, first, 0);
      for (int i = 0; i < built.levels.length; i++) {
        writeFully(out, ByteBuffer.wrap(built.levels[i]), built.layout.start()[i] * BLOCK);
      }
      out.force(true);
      return new Header(salt.clone(), dataBlocks, built.root, uuid);
    }
  }

  /**
   * Reads the tree's superblock and computes the root hash from its topmost block; checks that this
   * is a tree this code can serve (version 1, SHA-256, 4 KiB blocks) and that the file holds every
   * level.
   */
  public static Header read(Path tree) throws IOException {
    try (FileChannel in = FileChannel.open(tree, StandardOpenOption.READ)) {
      ByteBuffer sb = ByteBuffer.allocate(SUPERBLOCK).order(ByteOrder.LITTLE_ENDIAN);
      readFully(in, sb, 0);
      sb.flip();
      byte[] signature = new byte[8];
      sb.get(signature);
      if (!Arrays.equals(signature, SIGNATURE)) {
        throw new InvalidTreeException(tree + " has no verity superblock");
      }
      int version = sb.getInt();
      int hashType = sb.getInt();
      byte[] uuidBytes = new byte[16];
      sb.get(uuidBytes);
      byte[] algorithm = new byte[32];
      sb.get(algorithm);
      int dataBlockSize = sb.getInt();
      int hashBlockSize = sb.getInt();
      long dataBlocks = sb.getLong();
      int saltSize = Short.toUnsignedInt(sb.getShort());
      sb.position(sb.position() + 6);
      String alg = new String(algorithm, StandardCharsets.US_ASCII).replaceAll("\0+$", "");
      if (version != 1 || hashType != 1) {
        throw new InvalidTreeException(
            tree
                + ": superblock version "
                + version
                + ", hash type "
                + hashType
                + "; expected 1, 1");
      }
      if (!alg.equals(ALGORITHM) || dataBlockSize != BLOCK || hashBlockSize != BLOCK) {
        throw new InvalidTreeException(
            tree
                + ": "
                + alg
                + " with "
                + dataBlockSize
                + "/"
                + hashBlockSize
                + "-byte blocks; expected sha256 with 4096-byte blocks");
      }
      if (dataBlocks < 1 || saltSize > MAX_SALT) {
        throw new InvalidTreeException(
            tree + ": " + dataBlocks + " data blocks, a " + saltSize + "-byte salt");
      }
      byte[] salt = new byte[saltSize];
      sb.get(salt);
      Layout layout = layout(dataBlocks);
      if (in.size() < (long) BLOCK * (1 + layout.total())) {
        throw new InvalidTreeException(
            tree
                + " is "
                + in.size()
                + " bytes; a tree over "
                + dataBlocks
                + " blocks needs "
                + (long) BLOCK * (1 + layout.total()));
      }
      ByteBuffer wb = ByteBuffer.wrap(uuidBytes);
      UUID uuid = new UUID(wb.getLong(), wb.getLong());
      MessageDigest md = sha256();
      byte[] root;
      if (layout.levels() == 0) {
        // One data block: the root is its own hash, and the tree has no level to read it from.
        throw new InvalidTreeException(tree + ": a one-block image has no hash level");
      } else {
        ByteBuffer top = ByteBuffer.allocate(BLOCK);
        readFully(in, top, layout.start()[layout.levels() - 1] * BLOCK);
        root = hash(md, salt, top.array(), 0);
      }
      return new Header(salt, dataBlocks, root, uuid);
    }
  }

  /**
   * Checks {@code tree} against {@code image}: every hash of every level is computed again from the
   * image with the tree's salt and compared. Returns the header; throws when a block differs.
   */
  public static Header verify(Path image, Path tree) throws IOException {
    Header header = read(tree);
    try (FileChannel in = FileChannel.open(image, StandardOpenOption.READ);
        FileChannel t = FileChannel.open(tree, StandardOpenOption.READ)) {
      if (dataBlocks(in.size()) != header.dataBlocks()) {
        throw new InvalidTreeException(
            tree
                + " covers "
                + header.dataBlocks()
                + " blocks; the image has "
                + dataBlocks(in.size()));
      }
      Built built = build(in, header.salt(), header.dataBlocks());
      for (int i = 0; i < built.levels.length; i++) {
        ByteBuffer stored = ByteBuffer.allocate(built.levels[i].length);
        readFully(t, stored, built.layout.start()[i] * BLOCK);
        if (!Arrays.equals(stored.array(), built.levels[i])) {
          throw new InvalidTreeException(tree + ": level " + i + " does not match the image");
        }
      }
      if (!Arrays.equals(built.root, header.rootHash())) {
        throw new InvalidTreeException(tree + ": the root hash does not match the image");
      }
    }
    return header;
  }

  private record Built(Layout layout, byte[][] levels, byte[] root) {}

  /** Every level in memory (an image of 1 GiB has 8 MiB of them) and the root hash. */
  private static Built build(FileChannel in, byte[] salt, long dataBlocks) throws IOException {
    Layout layout = layout(dataBlocks);
    MessageDigest md = sha256();
    if (layout.levels() == 0) {
      throw new InvalidTreeException("an image of one block or less gets no hash tree");
    }
    byte[][] levels = new byte[layout.levels()][];
    for (int i = 0; i < levels.length; i++) {
      long bytes = layout.size()[i] * BLOCK;
      if (bytes > Integer.MAX_VALUE - 8) {
        throw new InvalidTreeException("the image is too large for a hash tree in memory");
      }
      levels[i] = new byte[(int) bytes];
    }
    // Level 0: the hash of each data block, the last one padded with zeros.
    ByteBuffer chunk = ByteBuffer.allocate(256 * BLOCK);
    long block = 0;
    long position = 0;
    while (block < dataBlocks) {
      chunk.clear();
      while (chunk.hasRemaining()) {
        int n = in.read(chunk, position);
        if (n < 0) {
          break;
        }
        position += n;
      }
      int filled = chunk.position();
      if (filled == 0) {
        break;
      }
      if (filled % BLOCK != 0) {
        Arrays.fill(chunk.array(), filled, filled + BLOCK - filled % BLOCK, (byte) 0);
        filled += BLOCK - filled % BLOCK;
      }
      for (int off = 0; off < filled && block < dataBlocks; off += BLOCK, block++) {
        byte[] h = hash(md, salt, chunk.array(), off);
        System.arraycopy(h, 0, levels[0], (int) (block * DIGEST), DIGEST);
      }
    }
    if (block != dataBlocks) {
      throw new IOException("the image shrank while its hash tree was computed");
    }
    // Each further level: the hash of each block of the level below.
    for (int i = 1; i < levels.length; i++) {
      long below = layout.size()[i - 1];
      for (long b = 0; b < below; b++) {
        byte[] h = hash(md, salt, levels[i - 1], (int) (b * BLOCK));
        System.arraycopy(h, 0, levels[i], (int) (b * DIGEST), DIGEST);
      }
    }
    byte[] root = hash(md, salt, levels[levels.length - 1], 0);
    return new Built(layout, levels, root);
  }

  private static byte[] superblock(byte[] salt, long dataBlocks, UUID uuid) {
    ByteBuffer sb = ByteBuffer.allocate(SUPERBLOCK).order(ByteOrder.LITTLE_ENDIAN);
    sb.put(SIGNATURE);
    sb.putInt(1); // superblock version
    sb.putInt(1); // hash type: salt first
    sb.order(ByteOrder.BIG_ENDIAN).putLong(uuid.getMostSignificantBits());
    sb.putLong(uuid.getLeastSignificantBits()).order(ByteOrder.LITTLE_ENDIAN);
    sb.put(Arrays.copyOf(ALGORITHM.getBytes(StandardCharsets.US_ASCII), 32));
    sb.putInt(BLOCK);
    sb.putInt(BLOCK);
    sb.putLong(dataBlocks);
    sb.putShort((short) salt.length);
    sb.position(sb.position() + 6);
    sb.put(salt);
    return sb.array();
  }

  private static byte[] hash(MessageDigest md, byte[] salt, byte[] data, int offset) {
    md.update(salt);
    md.update(data, offset, BLOCK);
    return md.digest();
  }

  private static void checkSalt(byte[] salt) {
    if (salt.length > MAX_SALT) {
      throw new IllegalArgumentException("a salt of at most 256 bytes");
    }
  }

  private static void writeFully(FileChannel out, ByteBuffer buffer, long position)
      throws IOException {
    while (buffer.hasRemaining()) {
      position += out.write(buffer, position);
    }
  }

  private static void readFully(FileChannel in, ByteBuffer buffer, long position)
      throws IOException {
    while (buffer.hasRemaining()) {
      int n = in.read(buffer, position);
      if (n < 0) {
        throw new InvalidTreeException("the tree ends early");
      }
      position += n;
    }
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
    }
  }
}
