package io.chrootbooter.agent.lazy;

import dev.failsafe.Execution;
import dev.failsafe.RetryPolicy;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.OperatorCredential;
import io.chrootbooter.agent.fetch.Retries;
import io.chrootbooter.protocol.HttpRange;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.BitSet;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.HttpsURLConnection;
import org.jboss.logging.Logger;

/**
 * An image's blocks, fetched from the operator with HTTP {@code Range} requests in {@link #CHUNK}
 * pieces on first read and kept in a sparse file (on tmpfs: RAM; on the cache disk: disk), so each
 * piece crosses the network once. A request carries the agent's session (only to the operator's
 * origin, never following a redirect) and must come back 206 with the asked range and the image's
 * digest as its ETag. A piece that cannot be had after the retry policy's attempts — the network is
 * gone, say — fails the read (the NBD client sees EIO); the next read of it tries again. Nothing
 * here checks content: the dm-verity device above checks every block against the root hash.
 *
 * <p>{@link #prefetch()} fetches the pieces nobody read yet, in order, until the image is {@link
 * #complete()}: then no read needs the network.
 */
public final class HttpBlocks implements NbdServer.Blocks, Closeable {
  private static final Logger LOG = Logger.getLogger(HttpBlocks.class);

  /** The piece fetched at once: 256 KiB, twice the kernel's default read-ahead. */
  public static final int CHUNK = 256 * 1024;

  private final URI url;
  private final String etag;
  private final long size;
  private final long imageLength;
  private final Path cacheFile;
  private final FileChannel cache;
  private final FetchOptions options;
  private final int chunks;
  private final BitSet present;
  private final Map<Integer, CompletableFuture<Void>> inFlight = new ConcurrentHashMap<>();
  private final AtomicLong fetched = new AtomicLong();
  private final RetryPolicy<Object> retry;
  private volatile boolean closed;

  /**
   * @param url the image's URL at the operator
   * @param sha256 the image's digest: the ETag every answer must carry; null to accept any
   * @param size the device's size: the image zero-padded to whole 4 KiB blocks
   * @param imageLength the image's length in bytes; bytes past it read as zeros
   * @param cacheFile where fetched pieces are kept (created, removed by {@link #close()})
   */
  public HttpBlocks(
      URI url, String sha256, long size, long imageLength, Path cacheFile, FetchOptions options)
      throws IOException {
    if (imageLength > size || size - imageLength >= 4096 || size % 4096 != 0) {
      throw new IOException(
          "an image of "
              + imageLength
              + " bytes does not fill a device of "
              + size
              + " bytes (4 KiB blocks)");
    }
    this.url = url;
    this.etag = sha256 == null ? null : "\"" + sha256 + "\"";
    this.size = size;
    this.imageLength = imageLength;
    this.cacheFile = cacheFile;
    this.options = options;
    this.retry = Retries.policy(options.retry());
    long n = (size + CHUNK - 1) / CHUNK;
    if (n > Integer.MAX_VALUE) {
      throw new IOException("an image of " + size + " bytes is too large");
    }
    this.chunks = (int) n;
    this.present = new BitSet(chunks);
    this.cache =
        FileChannel.open(
            cacheFile,
            StandardOpenOption.CREATE_NEW,
            StandardOpenOption.READ,
            StandardOpenOption.WRITE,
            StandardOpenOption.SPARSE);
  }

  /**
   * The image's length: a {@code HEAD} with the session, which must answer 200 with a {@code
   * Content-Length}.
   */
  public static long length(URI url, FetchOptions options) throws IOException {
    HttpURLConnection c = (HttpURLConnection) url.toURL().openConnection();
    try {
      if (c instanceof HttpsURLConnection https) {
        options.tls().ifPresent(https::setSSLSocketFactory);
      }
      int timeout = (int) Math.min(Integer.MAX_VALUE, options.stallTimeout().toMillis());
      c.setConnectTimeout(timeout);
      c.setReadTimeout(timeout);
      c.setInstanceFollowRedirects(false);
      c.setRequestMethod("HEAD");
      String authorization = OperatorCredential.forUrl(url);
      if (authorization != null) {
        c.setRequestProperty("Authorization", authorization);
      }
      int status = c.getResponseCode();
      long length = c.getContentLengthLong();
      if (status != 200 || length < 0) {
        throw new IOException(
            "HEAD " + url + " answered HTTP " + status + " with length " + length);
      }
      return length;
    } finally {
      c.disconnect();
    }
  }

  @Override
  public long size() {
    return size;
  }

  /** Bytes fetched from the network so far. */
  public long fetchedBytes() {
    return fetched.get();
  }

  /** Whether every piece is local. */
  public boolean complete() {
    synchronized (present) {
      return present.cardinality() == chunks;
    }
  }

  @Override
  public void read(long offset, ByteBuffer dst) throws IOException {
    if (offset < 0 || offset + dst.remaining() > size) {
      throw new IOException(
          "a read of " + dst.remaining() + " bytes at " + offset + " past the end");
    }
    long end = offset + dst.remaining();
    for (int c = (int) (offset / CHUNK); c <= (end - 1) / CHUNK && dst.hasRemaining(); c++) {
      ensure(c);
    }
    long position = offset;
    while (dst.hasRemaining()) {
      int n = cache.read(dst, position);
      if (n < 0) {
        throw new IOException("the block cache " + cacheFile + " ends at " + position);
      }
      position += n;
    }
  }

  /** Fetches every piece not yet local, in order; returns when complete or closed. */
  public void prefetch() throws IOException {
    for (int c = 0; c < chunks && !closed; c++) {
      ensure(c);
    }
  }

  private boolean isPresent(int chunk) {
    synchronized (present) {
      return present.get(chunk);
    }
  }

  private void ensure(int chunk) throws IOException {
    if (isPresent(chunk)) {
      return;
    }
    CompletableFuture<Void> mine = new CompletableFuture<>();
    CompletableFuture<Void> running = inFlight.putIfAbsent(chunk, mine);
    if (running != null) {
      try {
        running.get();
        return;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted while piece " + chunk + " was fetched", e);
      } catch (ExecutionException e) {
        throw new IOException(e.getCause().getMessage(), e.getCause());
      }
    }
    try {
      if (!isPresent(chunk)) {
        fetchWithRetries(chunk);
        synchronized (present) {
          present.set(chunk);
        }
      }
      mine.complete(null);
    } catch (IOException | RuntimeException e) {
      mine.completeExceptionally(e);
      throw e;
    } finally {
      inFlight.remove(chunk, mine);
    }
  }

  private void fetchWithRetries(int chunk) throws IOException {
    IOException last = null;
    Execution<Object> attempts = Execution.of(retry);
    while (!closed) {
      try {
        fetch(chunk);
        return;
      } catch (IOException e) {
        last = e;
        attempts.recordException(e);
        LOG.debugf("piece %d, attempt %d: %s", chunk, attempts.getAttemptCount(), e.getMessage());
        if (attempts.isComplete()) {
          break;
        }
      }
      try {
        Thread.sleep(attempts.getDelay().toMillis());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted while fetching piece " + chunk, e);
      }
    }
    throw last != null ? last : new IOException("closed while fetching piece " + chunk);
  }

  private void fetch(int chunk) throws IOException {
    long from = (long) chunk * CHUNK;
    long to = Math.min(from + CHUNK, imageLength); // exclusive
    ByteBuffer piece = ByteBuffer.allocate((int) (Math.min(from + CHUNK, size) - from));
    if (to > from) {
      HttpURLConnection c = (HttpURLConnection) url.toURL().openConnection();
      try {
        if (c instanceof HttpsURLConnection https) {
          options.tls().ifPresent(https::setSSLSocketFactory);
        }
        int timeout = (int) Math.min(Integer.MAX_VALUE, options.stallTimeout().toMillis());
        c.setConnectTimeout(timeout);
        c.setReadTimeout(timeout);
        c.setInstanceFollowRedirects(false);
        String authorization = OperatorCredential.forUrl(url);
        if (authorization != null) {
          c.setRequestProperty("Authorization", authorization);
        }
        c.setRequestProperty("Range", HttpRange.between(from, to));
        int status = c.getResponseCode();
        if (status != 206) {
          throw new IOException(
              "GET " + url + " bytes " + from + "-" + (to - 1) + " answered HTTP " + status);
        }
        String range = c.getHeaderField("Content-Range");
        if (HttpRange.parse(range).filter(r -> r.covers(from, to)).isEmpty()) {
          throw new IOException(
              "GET " + url + " bytes " + from + "-" + (to - 1) + " answered " + range);
        }
        if (etag != null && !etag.equals(c.getHeaderField("ETag"))) {
          throw new IOException(
              "GET " + url + " answered with ETag " + c.getHeaderField("ETag") + ", not " + etag);
        }
        try (InputStream body = c.getInputStream()) {
          int want = (int) (to - from);
          int got = body.readNBytes(piece.array(), 0, want);
          if (got != want) {
            throw new IOException(
                "GET " + url + " bytes " + from + "-" + (to - 1) + " ended after " + got);
          }
        }
      } finally {
        if (closed) {
          c.disconnect();
        }
      }
    }
    long position = from;
    while (piece.hasRemaining()) {
      position += cache.write(piece, position);
    }
    fetched.addAndGet(Math.max(0, to - from));
  }

  /** Stops fetching and removes the cache file. */
  @Override
  public void close() throws IOException {
    closed = true;
    try {
      cache.close();
    } finally {
      Files.deleteIfExists(cacheFile);
    }
  }
}
