package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.HexFormat;

/**
 * The bytes of an image as they arrive, hashed with SHA-256 on the way and reported as progress.
 * Subclasses supply the bytes ({@link #fill}); this class counts, hashes ({@link Sha256Engine}) and
 * reports. Subclasses that override {@link #close()} call {@code super.close()}.
 */
public abstract class ImageStream extends InputStream {
  private final String source;
  private final FetchOptions options;
  private final Sha256 sha256;
  private String hex;
  private final long started = System.nanoTime();
  private volatile long bytes;
  private long lastProgress;
  private boolean eof;

  protected ImageStream(String source, FetchOptions options) {
    this.source = source;
    this.options = options;
    this.sha256 = Sha256Engine.get().start();
  }

  /** The URL or file this stream reads. */
  public String source() {
    return source;
  }

  /** The image size, or -1 when unknown. */
  public abstract long contentLength();

  /** Reads up to {@code len} new bytes; -1 at the end of the image. */
  protected abstract int fill(byte[] b, int off, int len) throws IOException;

  protected FetchOptions options() {
    return options;
  }

  /** Bytes delivered so far. */
  public long bytes() {
    return bytes;
  }

  @Override
  public final int read() throws IOException {
    byte[] one = new byte[1];
    int n = read(one, 0, 1);
    return n < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public final int read(byte[] b, int off, int len) throws IOException {
    if (options.cancel().isCancelled()) {
      throw new DownloadCancelledException(source, bytes);
    }
    if (eof) {
      return -1;
    }
    if (len == 0) {
      return 0; // InputStream.readNBytes asks for 0 bytes when its buffer is full
    }
    int n = fill(b, off, len);
    if (n < 0) {
      eof = true;
      report(true);
      return -1;
    }
    sha256.update(b, off, n);
    bytes += n;
    report(false);
    return n;
  }

  private void report(boolean last) {
    long now = System.nanoTime();
    if (last || (now - lastProgress) / 1_000_000 >= options.progressIntervalMillis()) {
      lastProgress = now;
      options
          .progress()
          .accept(DownloadProgress.of(bytes, contentLength(), Duration.ofNanos(now - started)));
    }
  }

  /**
   * The lowercase hex SHA-256 of the whole image; reads any bytes not yet read, so the digest
   * always covers the complete image.
   */
  public String sha256() throws IOException {
    if (hex == null) {
      byte[] drain = new byte[64 * 1024];
      while (read(drain, 0, drain.length) >= 0) {
        // the digest is updated in read()
      }
      hex = HexFormat.of().formatHex(sha256.digest());
    }
    return hex;
  }

  /** Releases the digest's native memory; subclasses close their source and call this. */
  @Override
  public void close() throws IOException {
    sha256.close();
  }

  /** Checks the digest, see {@link #sha256()}. */
  public String verify(String expected) throws IOException {
    String actual = sha256();
    if (!actual.equals(expected)) {
      throw new DigestMismatchException(source, actual, expected);
    }
    return actual;
  }
}
