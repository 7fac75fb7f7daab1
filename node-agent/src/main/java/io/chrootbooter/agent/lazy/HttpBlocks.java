package io.chrootbooter.agent.lazy;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
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
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
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
 * <p>{@link #prefetch} fetches the pieces nobody read yet, those of a read profile first, then the
 * rest in order, until the image is {@link #complete()}: then no read needs the network. It keeps
 * {@link #PREFETCH_IN_FLIGHT} pieces in flight at once, so the time each request waits for its
 * answer overlaps the others' transfers and the prefetch runs at the link's rate; while a read
 * waits for a piece of its own, it keeps one only, as reads go first. The pieces the device was
 * asked for are recorded ({@link #readPieces()}) for the next boot's profile.
 *
 * <p><b>A RAM budget.</b> With a budget (a cache on tmpfs, without a cache disk), at most that many
 * bytes of pieces are held: the prefetch stops when the budget is full, and a read of a piece not
 * held evicts the least recently used pieces, whose space is given back at once ({@code fallocate}
 * with {@code FALLOC_FL_PUNCH_HOLE}); an evicted piece is fetched again when it is read again. All
 * pieces are clean (the image is read-only), so eviction loses nothing but a refetch.
 */
public final class HttpBlocks implements NbdServer.Blocks, Closeable {
  private static final Logger LOG = Logger.getLogger(HttpBlocks.class);

  /** The piece fetched at once: 256 KiB, twice the kernel's default read-ahead. */
  public static final int CHUNK = 256 * 1024;

  /**
   * The pieces the prefetch has in flight at once while no read waits for the network: enough to
   * hide a request's round trip behind the transfers of the others, few enough to leave a read's
   * request room on the link.
   */
  public static final int PREFETCH_IN_FLIGHT = 4;

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
  // Guarded by present: the pieces a read asked for, for the read profile.
  private final BitSet read;
  // The RAM budget in bytes, Long.MAX_VALUE for none; with one, the pieces held by recency of use
  // (guarded by present), the file's descriptor for punching holes, and a count of evictions.
  private final long budget;
  private final LinkedHashMap<Integer, Boolean> recency;
  private final int holesFd;
  private final AtomicLong evictions = new AtomicLong();
  private final Map<Integer, Integer> pins = new java.util.HashMap<>();
  private volatile String lastError;
  private volatile Runnable onFetched = () -> {};
  private final java.util.Set<HttpURLConnection> connections = ConcurrentHashMap.newKeySet();
  private volatile boolean stopped;
  private volatile boolean closed;
  // The reads waiting for a piece from the network; while there are any, the prefetch keeps one
  // piece in flight only. Guarded by demandLock, which the prefetch waits on.
  private final Object demandLock = new Object();
  private int demand;
  // Guarded by present: the pieces the prefetch claimed and is fetching, counted against the
  // budget.
  private int reserved;

  /** The least budget: the pieces eight concurrent reads may hold, and one more. */
  public static final long MIN_BUDGET = 9L * CHUNK;

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
    this(url, sha256, size, imageLength, cacheFile, options, Long.MAX_VALUE);
  }

  /**
   * Blocks whose cache holds at most {@code budget} bytes of pieces ({@link Long#MAX_VALUE}: no
   * bound; at least {@link #MIN_BUDGET}).
   */
  public HttpBlocks(
      URI url,
      String sha256,
      long size,
      long imageLength,
      Path cacheFile,
      FetchOptions options,
      long budget)
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
    this.read = new BitSet(chunks);
    if (budget < MIN_BUDGET) {
      throw new IllegalArgumentException(
          "a block cache budget of " + budget + " bytes; at least " + MIN_BUDGET);
    }
    boolean bounded = budget < size;
    this.budget = bounded ? budget : Long.MAX_VALUE;
    this.recency = bounded ? new LinkedHashMap<>(16, 0.75f, true) : null;
    this.cache =
        FileChannel.open(
            cacheFile,
            StandardOpenOption.CREATE_NEW,
            StandardOpenOption.READ,
            StandardOpenOption.WRITE,
            StandardOpenOption.SPARSE);
    int fd = -1;
    if (bounded) {
      try {
        fd = Holes.open(cacheFile);
        Holes.punch(fd, 0, CHUNK); // whether this file system can free a range at all
      } catch (IOException e) {
        if (fd >= 0) {
          Holes.closeFd(fd);
        }
        cache.close();
        Files.deleteIfExists(cacheFile);
        throw new IOException(
            "the block cache "
                + cacheFile
                + " cannot give space back, so it cannot keep to its budget: "
                + e.getMessage(),
            e);
      }
    }
    this.holesFd = fd;
  }

  /**
   * {@code fallocate(2)} with {@code FALLOC_FL_PUNCH_HOLE}: what frees an evicted piece's RAM on
   * tmpfs (or its disk space). The JDK has no call for it.
   */
  static final class Holes {
    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = 02000000;
    private static final int FALLOC_FL_KEEP_SIZE = 1;
    private static final int FALLOC_FL_PUNCH_HOLE = 2;

    static {
      Native.register(Holes.class, "c");
    }

    private Holes() {}

    private static native int open(String path, int flags) throws LastErrorException;

    private static native int fallocate(int fd, int mode, long offset, long length)
        throws LastErrorException;

    private static native int close(int fd) throws LastErrorException;

    static int open(Path file) throws IOException {
      try {
        return open(file.toString(), O_RDWR | O_CLOEXEC);
      } catch (LastErrorException e) {
        throw new IOException("open " + file + ": errno " + e.getErrorCode(), e);
      }
    }

    static void punch(int fd, long offset, long length) throws IOException {
      try {
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
      } catch (LastErrorException e) {
        throw new IOException("fallocate(PUNCH_HOLE): errno " + e.getErrorCode(), e);
      }
    }

    static void closeFd(int fd) {
      try {
        close(fd);
      } catch (LastErrorException e) {
        LOG.debugf("close(%d): errno %d", fd, e.getErrorCode());
      }
    }
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

  /** Runs after every piece fetched (on the fetching thread). */
  public void onFetched(Runnable listener) {
    this.onFetched = listener;
  }

  /**
   * Stops fetching: the prefetch returns, fetches in progress are cut off, no piece is tried again;
   * pieces held are still read. {@link #close()} stops too.
   */
  public void stop() {
    stopped = true;
    synchronized (demandLock) {
      demandLock.notifyAll();
    }
    for (HttpURLConnection c : connections) {
      c.disconnect();
    }
  }

  /** Bytes of the device held locally now. */
  public long localBytes() {
    synchronized (present) {
      long bytes = (long) present.cardinality() * CHUNK;
      return present.get(chunks - 1) ? bytes - ((long) chunks * CHUNK - size) : bytes;
    }
  }

  /** Why the last piece that could not be fetched could not; null once a fetch works again. */
  public String lastError() {
    return lastError;
  }

  /** The cache's budget in bytes; {@link Long#MAX_VALUE} when it holds the whole image. */
  public long budget() {
    return budget;
  }

  /** How many pieces were evicted to keep to the budget. */
  public long evictions() {
    return evictions.get();
  }

  /** The number of pieces ({@link #CHUNK} bytes, the last one shorter) of the device. */
  public int pieces() {
    return chunks;
  }

  /** The pieces reads asked for so far: the read profile of this boot. */
  public BitSet readPieces() {
    synchronized (present) {
      return (BitSet) read.clone();
    }
  }

  @Override
  public void read(long offset, ByteBuffer dst) throws IOException {
    if (offset < 0 || offset + dst.remaining() > size) {
      throw new IOException(
          "a read of " + dst.remaining() + " bytes at " + offset + " past the end");
    }
    long end = offset + dst.remaining();
    synchronized (present) {
      read.set((int) (offset / CHUNK), (int) ((end - 1) / CHUNK) + 1);
    }
    int limit = dst.limit();
    long position = offset;
    while (dst.hasRemaining()) {
      int c = (int) (position / CHUNK);
      int start = dst.position();
      dst.limit((int) Math.min(limit, start + ((long) (c + 1) * CHUNK - position)));
      // The piece is pinned while it is copied: eviction leaves it alone.
      while (!pin(c)) {
        demanding(1);
        try {
          ensure(c, true);
        } finally {
          demanding(-1);
        }
      }
      try {
        long at = position;
        while (dst.hasRemaining()) {
          int n = cache.read(dst, at);
          if (n < 0) {
            throw new IOException("the block cache " + cacheFile + " ends at " + at);
          }
          at += n;
        }
      } finally {
        unpin(c);
      }
      position += dst.position() - start;
      dst.limit(limit);
    }
  }

  /**
   * Fetches the pieces not yet local: those set in {@code first} (a read profile), then every other
   * in order, {@link #PREFETCH_IN_FLIGHT} at once (one while a read waits for the network). Returns
   * true when the image is complete, false when it stopped at the budget or was closed; throws when
   * a piece could not be fetched (the next call goes on from there). The fetching threads have
   * ended when it returns.
   */
  public boolean prefetch(BitSet first) throws IOException {
    Order order = new Order(first);
    AtomicReference<IOException> failure = new AtomicReference<>();
    List<Thread> helpers = new ArrayList<>();
    for (int i = 1; i < PREFETCH_IN_FLIGHT; i++) {
      Thread t =
          new Thread(
              () -> prefetchWorker(order, false, failure),
              Thread.currentThread().getName() + "-" + i);
      t.setDaemon(true);
      helpers.add(t);
      t.start();
    }
    try {
      prefetchWorker(order, true, failure);
    } finally {
      boolean interrupted = false;
      for (Thread t : helpers) {
        while (t.isAlive()) {
          try {
            t.join();
          } catch (InterruptedException e) {
            interrupted = true;
            stop(); // the helpers end at once
          }
        }
      }
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
    if (failure.get() != null) {
      throw failure.get();
    }
    return complete();
  }

  /**
   * One of the prefetch's fetching threads: claims the next missing piece and fetches it, until
   * none is left, the budget is full, the blocks are stopped or another thread failed. The lead
   * thread goes on while reads wait; the others wait for them.
   */
  private void prefetchWorker(Order order, boolean lead, AtomicReference<IOException> failure) {
    while (!closed && !stopped && failure.get() == null) {
      if (!lead && !awaitNoDemand()) {
        return;
      }
      int c;
      synchronized (present) {
        if (order.full) {
          return;
        }
        c = order.next();
        if (c < 0) {
          return;
        }
        if (budget != Long.MAX_VALUE && localBytes() + (long) (reserved + 1) * CHUNK > budget) {
          order.full = true; // full: what reads need now evicts, a prefetch does not
          return;
        }
        reserved++;
      }
      try {
        ensure(c, false);
      } catch (IOException e) {
        failure.compareAndSet(null, e);
      } catch (RuntimeException e) {
        failure.compareAndSet(null, new IOException("piece " + c + ": " + e, e));
      } finally {
        synchronized (present) {
          reserved--;
        }
      }
    }
  }

  /** Waits while a read waits for the network; false when the blocks were stopped meanwhile. */
  private boolean awaitNoDemand() {
    synchronized (demandLock) {
      while (demand > 0 && !stopped && !closed) {
        try {
          demandLock.wait(100);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return false;
        }
      }
    }
    return !stopped && !closed;
  }

  private void demanding(int delta) {
    synchronized (demandLock) {
      demand += delta;
      if (demand == 0) {
        demandLock.notifyAll();
      }
    }
  }

  /**
   * The prefetch's order, shared by its threads (guarded by {@link #present}): the pieces of a read
   * profile, then every piece, each missing one handed out once.
   */
  private final class Order {
    private final BitSet first;
    private final BitSet handed = new BitSet();
    private int pass;
    private int cursor = -1;
    boolean full;

    Order(BitSet first) {
      this.first = first;
    }

    /** The next piece not yet local, -1 when there is none. */
    int next() {
      while (pass < 2) {
        cursor = pass == 0 ? first.nextSetBit(cursor + 1) : cursor + 1;
        if (cursor < 0 || cursor >= chunks) {
          pass++;
          cursor = -1;
          continue;
        }
        if (!present.get(cursor) && !handed.get(cursor)) {
          handed.set(cursor);
          return cursor;
        }
      }
      return -1;
    }
  }

  /** {@link #prefetch(BitSet)} without a profile. */
  public boolean prefetch() throws IOException {
    return prefetch(new BitSet());
  }

  private boolean isPresent(int chunk) {
    synchronized (present) {
      return present.get(chunk);
    }
  }

  private void ensure(int chunk, boolean evict) throws IOException {
    if (isPresent(chunk)) {
      if (recency != null) {
        synchronized (present) {
          recency.get(chunk); // used now
        }
      }
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
          if (recency != null) {
            recency.put(chunk, Boolean.TRUE);
          }
        }
        if (evict && recency != null) {
          evictFor(chunk);
        }
        onFetched.run();
      }
      mine.complete(null);
    } catch (IOException | RuntimeException e) {
      mine.completeExceptionally(e);
      throw e;
    } finally {
      inFlight.remove(chunk, mine);
    }
  }

  /** Pins {@code chunk} against eviction if it is held; false when it is not. */
  private boolean pin(int chunk) {
    synchronized (present) {
      if (!present.get(chunk)) {
        return false;
      }
      if (recency != null) {
        pins.merge(chunk, 1, Integer::sum);
      }
      return true;
    }
  }

  private void unpin(int chunk) {
    if (recency != null) {
      synchronized (present) {
        pins.computeIfPresent(chunk, (c, n) -> n == 1 ? null : n - 1);
      }
    }
  }

  /** Evicts the least recently used pieces but {@code keep} until the budget holds. */
  private void evictFor(int keep) throws IOException {
    while (true) {
      int victim = -1;
      synchronized (present) {
        if (localBytes() <= budget) {
          return;
        }
        for (Integer c : recency.keySet()) {
          if (c != keep && !pins.containsKey(c) && !inFlight.containsKey(c)) {
            victim = c;
            break;
          }
        }
        if (victim < 0) {
          return; // every piece held is in use: the budget is exceeded for a moment
        }
        recency.remove(victim);
        present.clear(victim);
        evictions.incrementAndGet();
      }
      if (closed) {
        return;
      }
      Holes.punch(holesFd, (long) victim * CHUNK, CHUNK);
    }
  }

  private void fetchWithRetries(int chunk) throws IOException {
    IOException last = null;
    Execution<Object> attempts = Execution.of(retry);
    while (!closed && !stopped) {
      try {
        fetch(chunk);
        lastError = null;
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
    if (last == null) {
      throw new IOException("closed while fetching piece " + chunk);
    }
    if (!closed && !stopped) {
      lastError =
          "piece "
              + chunk
              + " (bytes "
              + (long) chunk * CHUNK
              + "+"
              + CHUNK
              + ") could not be fetched after "
              + options.retry().attempts()
              + " attempts: "
              + last.getMessage();
    }
    throw last;
  }

  private void fetch(int chunk) throws IOException {
    long from = (long) chunk * CHUNK;
    long to = Math.min(from + CHUNK, imageLength); // exclusive
    ByteBuffer piece = ByteBuffer.allocate((int) (Math.min(from + CHUNK, size) - from));
    if (to > from) {
      HttpURLConnection c = (HttpURLConnection) url.toURL().openConnection();
      connections.add(c);
      try {
        if (stopped || closed) {
          throw new IOException("stopped");
        }
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
        connections.remove(c);
        if (closed || stopped) {
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
    stop();
    try {
      cache.close();
    } finally {
      if (holesFd >= 0) {
        Holes.closeFd(holesFd);
      }
      Files.deleteIfExists(cacheFile);
    }
  }
}
