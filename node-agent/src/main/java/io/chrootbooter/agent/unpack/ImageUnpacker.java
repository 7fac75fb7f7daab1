package io.chrootbooter.agent.unpack;

import com.github.luben.zstd.ZstdInputStream;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.agent.fetch.ReadAheadInputStream;
import io.chrootbooter.agent.fetch.SpaceCheck;
import io.chrootbooter.agent.sys.Syscalls;
import io.chrootbooter.protocol.ImageFormat;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.zip.GZIPInputStream;

/**
 * Extracts a tar image into a staging root <em>while</em> it downloads (no intermediate file), then
 * checks its digest; on any failure — refused entry, corrupt data, wrong digest, cancellation — the
 * whole tree is removed, so a bad image is never pivoted into.
 *
 * <p>Three threads overlap: download + SHA-256, decompression, and tar parsing + writes.
 */
public final class ImageUnpacker {
  private static final int CHUNK = 256 * 1024;

  private final TarExtractor extractor;

  public ImageUnpacker(Syscalls syscalls) {
    this.extractor = new TarExtractor(syscalls);
  }

  /**
   * What was unpacked.
   *
   * @param format the format found in the image (equal to the declared one)
   * @param sha256 the image's digest, lowercase hex
   * @param imageBytes the size of the image as downloaded
   * @param tree what the extraction wrote
   */
  public record Result(
      ImageFormat format, String sha256, long imageBytes, TarExtractor.Stats tree) {}

  /**
   * Unpacks {@code image} into {@code into}, which must be absent or an empty directory.
   *
   * @param declared the format the spec declares; the image's magic bytes must agree
   * @param sha256 the expected digest (lowercase hex), or empty to only compute it
   */
  public Result unpack(ImageStream image, ImageFormat declared, Optional<String> sha256, Path into)
      throws IOException {
    if (!declared.isTar()) {
      throw new IllegalArgumentException(
          "format "
              + declared
              + " is not a tar format; squashfs images are mounted, see SquashfsImage");
    }
    boolean created = prepare(into);
    boolean ok = false;
    InputStream raw = new ReadAheadInputStream(image, "cb-download", CHUNK, 16);
    InputStream tar = raw;
    try {
      SpaceCheck.requireRoom(image.contentLength(), into);
      BufferedInputStream head = new BufferedInputStream(raw, CHUNK);
      ImageFormat found = sniff(head, image.source(), declared);
      if (found != declared) {
        throw new IOException(
            image.source() + " is a " + found + " image; the declared format is " + declared);
      }
      tar = decompressed(head, found);
      TarExtractor.Stats stats = extractor.extract(tar, into);
      // Trailing blocks after the end-of-archive marker are part of the image and its digest.
      tar.transferTo(OutputStream.nullOutputStream());
      head.transferTo(OutputStream.nullOutputStream());
      String digest = sha256.isPresent() ? image.verify(sha256.get()) : image.sha256();
      ok = true;
      return new Result(found, digest, image.bytes(), stats);
    } finally {
      try {
        tar.close(); // closes the whole chain and stops its threads
      } finally {
        if (!ok) {
          Trees.deleteContents(into);
          if (created) {
            Files.deleteIfExists(into);
          }
        }
      }
    }
  }

  /** Reads the first bytes and names the format; the stream is reset to its start. */
  static ImageFormat sniff(BufferedInputStream in, String source) throws IOException {
    return sniff(in, source, null);
  }

  /**
   * {@link #sniff(BufferedInputStream, String)}, also recognizing a pre-POSIX (V7) tar, which has
   * no magic, when {@code declared} is {@code tar}.
   */
  static ImageFormat sniff(BufferedInputStream in, String source, ImageFormat declared)
      throws IOException {
    int bytes = Math.max(ImageFormat.SNIFF_BYTES, ImageFormat.TAR_HEADER_BYTES);
    in.mark(bytes);
    byte[] headBytes = in.readNBytes(bytes);
    in.reset();
    return ImageFormat.sniff(headBytes, headBytes.length, declared)
        .orElseThrow(
            () ->
                new IOException(
                    source
                        + " is not a "
                        + ImageFormat.names(", ")
                        + " image ("
                        + ImageFormat.describe(headBytes, headBytes.length)
                        + ")"));
  }

  /** The decompressor, on its own thread, for {@code format}. */
  private static InputStream decompressed(InputStream in, ImageFormat format) throws IOException {
    InputStream plain;
    try {
      // gzip and tukaani read their stream header here: a stream cut inside it fails at once
      // (liblzma at the first read).
      plain =
          switch (format) {
            case TAR -> in;
            case TAR_GZ -> new GZIPInputStream(in, CHUNK);
            case TAR_XZ -> XzEngine.get().open(in);
            case TAR_ZST -> new ZstdInputStream(in);
            case SQUASHFS -> throw new IllegalStateException("squashfs is not a tar format");
          };
    } catch (IOException e) {
      throw NamedFailures.named(e, format);
    }
    return format == ImageFormat.TAR
        ? plain
        : new ReadAheadInputStream(
            new NamedFailures(plain, format), "cb-decompress-" + format, CHUNK, 16);
  }

  /**
   * Gives a decompressor's failure a message: xz and zstd end a truncated stream with a bare {@link
   * java.io.EOFException}, which would reach the console and the status as "null". A failure that
   * has a message (a download error passing through) keeps it.
   */
  private static final class NamedFailures extends java.io.FilterInputStream {
    private final ImageFormat format;

    NamedFailures(InputStream in, ImageFormat format) {
      super(in);
      this.format = format;
    }

    @Override
    public int read() throws IOException {
      try {
        return super.read();
      } catch (IOException e) {
        throw named(e, format);
      }
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      try {
        return in.read(b, off, len);
      } catch (IOException e) {
        throw named(e, format);
      }
    }

    static IOException named(IOException e, ImageFormat format) {
      if (e.getMessage() != null && !e.getMessage().isBlank()) {
        return e;
      }
      return new IOException(
          format.value() + " data is corrupt or truncated (" + e.getClass().getSimpleName() + ")",
          e);
    }
  }

  private static boolean prepare(Path into) throws IOException {
    if (Files.isSymbolicLink(into)) {
      throw new IOException(into + " is a symlink; unpack needs an empty or absent directory");
    }
    if (Files.isDirectory(into)) {
      try (var children = Files.list(into)) {
        if (children.findAny().isPresent()) {
          throw new IOException(into + " is not empty; unpack needs an empty or absent directory");
        }
      }
      return false;
    }
    if (Files.exists(into)) {
      throw new IOException(
          into + " is not a directory; unpack needs an empty or absent directory");
    }
    Files.createDirectories(into);
    return true;
  }
}
