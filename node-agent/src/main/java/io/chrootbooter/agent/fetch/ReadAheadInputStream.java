package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * Reads an upstream stream on its own thread, a bounded number of chunks ahead, so that network +
 * hashing, decompression, and tar extraction + writes overlap on separate cores (the job a shell
 * pipeline {@code curl | gzip -d | tar -x} spreads over three processes). Upstream errors are
 * rethrown to the reader; closing stops the thread.
 */
public final class ReadAheadInputStream extends InputStream {
  private static final byte[] END = new byte[0];

  private final InputStream upstream;
  private final BlockingQueue<Object> chunks;
  private final Thread thread;
  private byte[] current = new byte[0];
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
    this.thread = new Thread(() -> pump(chunkSize), name);
    thread.setDaemon(true);
    thread.start();
  }

  private void pump(int chunkSize) {
    try {
      while (!closed) {
        byte[] chunk = new byte[chunkSize];
        int filled = 0;
        while (filled < chunk.length) {
          int n = upstream.read(chunk, filled, chunk.length - filled);
          if (n < 0) {
            break;
          }
          filled += n;
        }
        if (filled > 0) {
          chunks.put(filled == chunk.length ? chunk : java.util.Arrays.copyOf(chunk, filled));
        }
        if (filled < chunk.length) {
          chunks.put(END);
          return;
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
    while (position == current.length) {
      if (done) {
        return -1;
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
      if (next instanceof IOException e) {
        done = true;
        throw e;
      }
      if (next instanceof RuntimeException e) {
        done = true;
        throw e;
      }
      current = (byte[]) next;
      position = 0;
    }
    int n = Math.min(len, current.length - position);
    System.arraycopy(current, position, b, off, n);
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
