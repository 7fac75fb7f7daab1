package io.chrootbooter.agent.relay;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The recorded console of one boot: a bounded ring of the last {@link #capacity} bytes the target
 * wrote to its consoles and the kernel logged while it ran, counted from the boot's first byte
 * (offsets never repeat, so a reader that fell behind learns how much it lost), and the kernel
 * warnings seen (at most {@link #MAX_WARNINGS}). Thread-safe: the relays and the kmsg reader
 * append, the uploader reads.
 *
 * <p>Each console writes through its own {@link Source}, which hands the log whole lines: two
 * consoles printing at once do not cut each other's lines. A line not ended within {@link
 * #LINE_WAIT_NANOS} (a login prompt) or longer than {@link #MAX_LINE} goes in as it is.
 */
public final class BootLog {
  /** The default size of the ring: 1 MiB. */
  public static final int DEFAULT_CAPACITY = 1 << 20;

  /** Warnings kept per boot; a kernel that warns in a loop does not fill the agent's memory. */
  public static final int MAX_WARNINGS = 32;

  /** The longest line a {@link Source} holds back waiting for its end. */
  public static final int MAX_LINE = 4096;

  /** How long a {@link Source} holds back a line not yet ended: 200 ms. */
  public static final long LINE_WAIT_NANOS = 200_000_000L;

  /** Bytes of the log from {@code start} on; {@code start} is past the asked offset if lost. */
  public record Chunk(long start, byte[] data) {
    public long end() {
      return start + data.length;
    }
  }

  private final String id;
  private final String image;
  private final Instant started;
  private final byte[] ring;
  private final int capacity;
  private long total;
  private final List<String> warnings = new ArrayList<>();
  private int warningsDropped;
  private boolean ended;
  private final List<Source> sources = new ArrayList<>();

  /**
   * @param id names this boot (the kernel's boot id and the boot's number)
   * @param image what runs (its URL)
   */
  public BootLog(String id, String image, Instant started, int capacity) {
    if (capacity <= 0) {
      throw new IllegalArgumentException("capacity " + capacity + " is not positive");
    }
    this.id = id;
    this.image = image;
    this.started = started;
    this.capacity = capacity;
    this.ring = new byte[capacity];
  }

  public String id() {
    return id;
  }

  public String image() {
    return image;
  }

  public Instant started() {
    return started;
  }

  public int capacity() {
    return capacity;
  }

  /** A writer that appends whole lines (one per console). */
  public synchronized Source source() {
    Source source = new Source();
    sources.add(source);
    return source;
  }

  /**
   * One console's writer: what it writes reaches the log at line ends, so another console's bytes
   * never land inside its lines. What waits longer than {@link #LINE_WAIT_NANOS} is appended when
   * the log is next written or read.
   */
  public final class Source {
    private final byte[] pending = new byte[MAX_LINE];
    private int length;
    private long since;

    private Source() {}

    /** Writes {@code len} bytes; everything up to the last line end goes in now. */
    public void write(byte[] bytes, int off, int len) {
      synchronized (BootLog.this) {
        commitSources(false);
        int lineEnd = -1;
        for (int i = off + len - 1; i >= off; i--) {
          if (bytes[i] == '\n') {
            lineEnd = i;
            break;
          }
        }
        if (lineEnd >= 0) {
          commit();
          put(bytes, off, lineEnd + 1 - off);
          len -= lineEnd + 1 - off;
          off = lineEnd + 1;
        }
        if (len > pending.length - length) {
          commit();
          if (len > pending.length) {
            put(bytes, off, len);
            return;
          }
        }
        if (len > 0) {
          if (length == 0) {
            since = System.nanoTime();
          }
          System.arraycopy(bytes, off, pending, length, len);
          length += len;
        }
      }
    }

    /** Appends what is held back (the caller holds the log's lock). */
    private void commit() {
      if (length > 0) {
        int n = length;
        length = 0;
        put(pending, 0, n);
      }
    }

    private void commitIfStale(long now) {
      if (length > 0 && now - since >= LINE_WAIT_NANOS) {
        commit();
      }
    }
  }

  /** Appends every source's line that waited too long (or all, when {@code all}). */
  private void commitSources(boolean all) {
    long now = System.nanoTime();
    for (Source source : sources) {
      if (all) {
        source.commit();
      } else {
        source.commitIfStale(now);
      }
    }
  }

  /** Appends {@code len} bytes; only the last {@link #capacity} of all ever appended are kept. */
  public synchronized void append(byte[] bytes, int off, int len) {
    commitSources(false);
    put(bytes, off, len);
  }

  private void put(byte[] bytes, int off, int len) {
    if (len > capacity) {
      off += len - capacity;
      total += len - capacity;
      len = capacity;
    }
    int at = (int) (total % capacity);
    int first = Math.min(len, capacity - at);
    System.arraycopy(bytes, off, ring, at, first);
    System.arraycopy(bytes, off + first, ring, 0, len - first);
    total += len;
  }

  public void append(String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    append(bytes, 0, bytes.length);
  }

  /** How many bytes were ever appended: the offset of the next byte. */
  public synchronized long total() {
    commitSources(ended);
    return total;
  }

  /** At most {@code max} bytes from offset {@code from}, or from the oldest byte still kept. */
  public synchronized Chunk read(long from, int max) {
    commitSources(ended);
    long start = Math.max(from, Math.max(0, total - capacity));
    if (start >= total) {
      return new Chunk(total, new byte[0]);
    }
    int len = (int) Math.min(max, total - start);
    byte[] out = new byte[len];
    int at = (int) (start % capacity);
    int first = Math.min(len, capacity - at);
    System.arraycopy(ring, at, out, 0, first);
    System.arraycopy(ring, 0, out, first, len - first);
    return new Chunk(start, out);
  }

  /** Everything still kept, as text (invalid UTF-8 replaced). */
  public String text() {
    Chunk all = read(0, capacity);
    return new String(all.data(), StandardCharsets.UTF_8);
  }

  /** Records a kernel warning (its first line); beyond {@link #MAX_WARNINGS} only counted. */
  public synchronized boolean warning(String firstLine) {
    if (warnings.size() >= MAX_WARNINGS) {
      warningsDropped++;
      return false;
    }
    warnings.add(firstLine);
    return true;
  }

  /** The warnings recorded, oldest first. */
  public synchronized List<String> warnings() {
    return List.copyOf(warnings);
  }

  /** Warnings beyond {@link #MAX_WARNINGS}, not kept. */
  public synchronized int warningsDropped() {
    return warningsDropped;
  }

  /** The target is gone: nothing more is appended. */
  public synchronized void end() {
    commitSources(true);
    ended = true;
  }

  public synchronized boolean ended() {
    return ended;
  }
}
