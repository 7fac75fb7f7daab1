package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.SocketTimeoutException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * Reads an upstream stream on its own thread, a bounded number of chunks ahead, so that network +
 * hashing, decompression, and tar extraction + writes overlap on separate cores (the job a shell
 * pipeline {@code curl | gzip -d | tar -x} spreads over three processes). Upstream errors are
 * rethrown to the reader and end the stream, except a {@link SocketTimeoutException} (a socket's
 * poll timeout), after which reading goes on; closing stops the thread.
 */
public final class ReadAheadInputStream extends InputStream {
  private static final Object END = new Object();

  /** {@code length} bytes of {@code data}, handed from the reading thread to the reader. */
  private record Chunk(byte[] data, int length) {}

  private final InputStream upstream;
  private final BlockingQueue<Object> chunks;

  /**
   * Buffers the reader is done with, for the thread to fill again: a download allocates its buffers
   * once, not one per chunk. With the bootstrap's 48 MiB heap, a fresh megabyte per chunk kept the
   * serial collector busy copying the queued chunks (1.8 s of pauses in an 8 s unpack).
   */
  private final BlockingQueue<byte[]> free;

  private final Thread thread;
  private Chunk current = new Chunk(new byte[0], 0);
  private int position;
  private boolean done;
  private volatile boolean closed;

  /**
   * @param upstream the stream to read ahead
   * @param name the thread name
   * @param chunkSize bytes per chunk
   * @param depth chunks buffered at most
   */
  public ReadAheadInputStream(InputStream upstream, String name, int chunkSize, int depth) {
    this.upstream = upstream;
    this.chunks = new ArrayBlockingQueue<>(depth);
    // One buffer per queue slot, one being filled, one being read.
    this.free = new ArrayBlockingQueue<>(depth + 2);
    this.thread = new Thread(() -> pump(chunkSize, depth + 2), name);
    thread.setDaemon(true);
    thread.start();
  }

  private void pump(int chunkSize, int buffers) {
    int allocated = 0;
    byte[] chunk = null;
    int filled = 0;
    try {
      while (!closed) {
        if (chunk == null) {
          chunk = free.poll();
          if (chunk == null) {
            if (allocated < buffers) {
              chunk = new byte[chunkSize];
              allocated++;
            } else {
              chunk = free.take();
            }
          }
          filled = 0;
        }
        int n;
        try {
          n = upstream.read(chunk, filled, chunk.length - filled);
        } catch (SocketTimeoutException e) {
          // A socket's poll timeout (HttpImageStream polls for cancellation): what came before
          // it, then the timeout itself; the stream goes on.
          if (filled > 0) {
            chunks.put(new Chunk(chunk, filled));
            chunk = null;
          }
          chunks.put(e);
          continue;
        }
        if (n < 0) {
          if (filled > 0) {
            chunks.put(new Chunk(chunk, filled));
          }
          chunks.put(END);
          return;
        }
        filled += n;
        if (filled == chunk.length) {
          chunks.put(new Chunk(chunk, filled));
          chunk = null;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (IOException | RuntimeException e) {
      try {
        chunks.put(e);
      } catch (InterruptedException interrupted) {
        Thread.currentThread().interrupt();
      }
    }
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
    while (position == current.length()) {
      if (done) {
        return -1;
      }
      if (current.length() > 0) {
        free.offer(current.data());
        current = new Chunk(current.data(), 0);
        position = 0;
      }
      Object next;
      try {
        next = chunks.take();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while waiting for " + thread.getName());
      }
      if (next == END) {
        done = true;
        return -1;
      }
      if (next instanceof SocketTimeoutException e) {
        throw e; // not the end: the reader may read on
      }
      if (next instanceof IOException e) {
        done = true;
        throw e;
      }
      if (next instanceof RuntimeException e) {
        done = true;
        throw e;
      }
      current = (Chunk) next;
      position = 0;
    }
    int n = Math.min(len, current.length() - position);
    System.arraycopy(current.data(), position, b, off, n);
    position += n;
    return n;
  }

  @Override
  public void close() throws IOException {
    closed = true;
    thread.interrupt();
    chunks.clear();
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    upstream.close();
  }
}
