package io.chrootbooter.agent.fetch;

import dev.failsafe.Execution;
import dev.failsafe.RetryPolicy;
import io.chrootbooter.protocol.HttpRange;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.HttpURLConnection;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.time.Duration;
import java.util.Optional;
import javax.net.ssl.HttpsURLConnection;
import org.jboss.logging.Logger;

/**
 * An image over HTTP(S) that survives dropped, truncated and stalled connections: it resumes where
 * it stopped with {@code Range: bytes=N-} and {@code If-Range} (RFC 9110 §14.2, §13.1.5), so a
 * changed image is never spliced onto the old bytes, after an exponential, jittered delay ({@link
 * Retries#policy}); the count of attempts starts again once bytes arrived.
 *
 * <p>Why {@link HttpURLConnection} and not {@code java.net.http.HttpClient}: on this workload (one
 * large body, read sequentially) the blocking connection reads straight from the socket into our
 * own 256 KiB chunks (on a thread of its own, so that hashing overlaps the socket reads), while
 * HttpClient hands 16 KiB buffers between threads; measured on loopback with nginx, 735 MB +
 * SHA-256 took 1.6 s against 5.7 s. It also has the read timeout that detects a stalled connection.
 */
final class HttpImageStream extends ImageStream {
  private static final Logger LOG = Logger.getLogger(HttpImageStream.class);

  /**
   * Reads wait at most this long before checking for cancellation: a read blocked in {@link
   * HttpURLConnection} cannot be interrupted from another thread (its {@code disconnect()} waits
   * for the read's lock), so the reading thread polls.
   */
  private static final Duration POLL = Duration.ofMillis(500);

  /** Socket reads ahead of the hashing: 8 chunks of 256 KiB. */
  private static final int NET_CHUNK = 256 * 1024;

  private static final int NET_DEPTH = 8;

  private final URI uri;
  private long lastData = System.nanoTime();
  private final RetryPolicy<Object> retry;
  private volatile HttpURLConnection connection;
  private InputStream body;
  private long total = -1;
  private String validator;
  private long position;

  /** The failed attempts since bytes last arrived: Failsafe counts them and times the waits. */
  private Execution<Object> failures;

  private long positionAtLastFailure = -1;

  private HttpImageStream(URI uri, FetchOptions options) {
    super(uri.toString(), options);
    this.uri = uri;
    this.retry = Retries.policy(options.retry());
  }

  static HttpImageStream open(URI uri, FetchOptions options) throws IOException {
    HttpImageStream stream = new HttpImageStream(uri, options);
    stream.connectWithRetries(null);
    return stream;
  }

  @Override
  public long contentLength() {
    return total;
  }

  @Override
  protected int fill(byte[] b, int off, int len) throws IOException {
    while (true) {
      if (total >= 0 && position >= total) {
        return -1;
      }
      IOException cause;
      try {
        int n = body.read(b, off, len);
        checkCancelled();
        if (n > 0) {
          position += n;
          lastData = System.nanoTime();
          return n;
        }
        if (total < 0) {
          return -1;
        }
        cause = new IOException("connection closed at byte " + position + " of " + total);
      } catch (SocketTimeoutException e) {
        checkCancelled();
        if (System.nanoTime() - lastData < options().stallTimeout().toNanos()) {
          continue; // only a poll for cancellation: the socket is still good
        }
        cause =
            new IOException(
                "no data for " + options().stallTimeout().toMillis() + " ms at byte " + position,
                e);
      } catch (DownloadCancelledException e) {
        throw e;
      } catch (IOException e) {
        checkCancelled();
        cause = new IOException("connection failed at byte " + position + ": " + describe(e), e);
      }
      connectWithRetries(cause);
    }
  }

  private void checkCancelled() throws DownloadCancelledException {
    if (options().cancel().isCancelled()) {
      throw new DownloadCancelledException(uri.toString(), position);
    }
  }

  /**
   * (Re)connects at {@link #position}; {@code cause} is why the previous connection ended, or
   * {@code null} for the first request.
   */
  private void connectWithRetries(IOException cause) throws IOException {
    disconnect();
    IOException last = cause;
    while (true) {
      if (last != null) {
        if (failures == null || position > positionAtLastFailure) {
          failures = Execution.of(retry); // progress since the last failure: a fresh budget
        }
        positionAtLastFailure = position;
        failures.recordException(last);
        if (failures.isComplete()) {
          throw new IOException(
              "GET "
                  + uri
                  + " failed "
                  + failures.getAttemptCount()
                  + " times in a row at byte "
                  + position
                  + (total >= 0 ? " of " + total : "")
                  + "; last error: "
                  + describe(last),
              last);
        }
        Duration delay = failures.getDelay();
        LOG.debugf(
            "GET %s: %s; retry %d in %s", uri, describe(last), failures.getAttemptCount(), delay);
        try {
          if (options().cancel().await(delay)) {
            throw new DownloadCancelledException(uri.toString(), position);
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new InterruptedIOException("interrupted while waiting to retry " + uri);
        }
      }
      try {
        connect();
        return;
      } catch (NotRetryableException | DownloadCancelledException e) {
        throw e;
      } catch (IOException e) {
        checkCancelled();
        last = e;
      }
    }
  }

  /** The message, or the exception type when there is none (ConnectException has none). */
  private static String describe(IOException e) {
    return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
  }

  private void connect() throws IOException {
    long started = System.nanoTime();
    while (true) {
      checkCancelled();
      HttpURLConnection c = newConnection();
      connection = c;
      try {
        int status = c.getResponseCode();
        lastData = System.nanoTime();
        handleResponse(c, status);
        return;
      } catch (SocketTimeoutException e) {
        // Only a poll for cancellation; the server gets the stall timeout to answer.
        c.disconnect();
        checkCancelled();
        if (System.nanoTime() - started >= options().stallTimeout().toNanos()) {
          throw new IOException("no answer for " + options().stallTimeout().toMillis() + " ms", e);
        }
      }
    }
  }

  private HttpURLConnection newConnection() throws IOException {
    HttpURLConnection c = (HttpURLConnection) uri.toURL().openConnection();
    if (c instanceof HttpsURLConnection https) {
      options().tls().ifPresent(https::setSSLSocketFactory);
    }
    int stall = (int) Math.min(Integer.MAX_VALUE, options().stallTimeout().toMillis());
    c.setConnectTimeout(stall);
    // The JDK applies the read timeout at connect, for headers and body alike.
    c.setReadTimeout((int) Math.min(stall, POLL.toMillis()));
    c.setUseCaches(false);
    String authorization = OperatorCredential.forUrl(uri);
    if (authorization != null) {
      c.setRequestProperty("Authorization", authorization);
      c.setInstanceFollowRedirects(false);
    }
    if (position > 0) {
      c.setRequestProperty("Range", HttpRange.from(position));
      if (validator != null) {
        c.setRequestProperty("If-Range", validator);
      }
    }
    return c;
  }

  private void handleResponse(HttpURLConnection c, int status) throws IOException {
    if (status == 200) {
      String newValidator =
          HttpRange.validator(c.getHeaderField("ETag"), c.getHeaderField("Last-Modified"))
              .orElse(null);
      body = readAhead(c);
      if (position > 0) {
        if (validator != null && !validator.equals(newValidator)) {
          disconnect();
          throw new NotRetryableException(
              uri
                  + " changed during the download (validator "
                  + validator
                  + " is now "
                  + newValidator
                  + "); cannot resume at byte "
                  + position);
        }
        // The server ignored Range: skip what we already have.
        body.skipNBytes(position);
      }
      validator = newValidator;
      total = c.getContentLengthLong();
    } else if (status == 206) {
      String range = c.getHeaderField("Content-Range");
      Optional<HttpRange.ContentRange> answered =
          HttpRange.parse(range).filter(r -> r.startsAt(position));
      if (answered.isEmpty()) {
        disconnect();
        throw new NotRetryableException(
            uri + " answered Range bytes=" + position + "- with Content-Range \"" + range + "\"");
      }
      answered.get().complete().ifPresent(complete -> total = complete);
      body = readAhead(c);
    } else {
      String message = "GET " + uri + ": HTTP " + status;
      if ((status == 401 || status == 403) && OperatorCredential.forUrl(uri) != null) {
        message += " (the operator refuses this machine the image: " + errorText(c) + ")";
      }
      disconnect();
      if (status >= 500 || status == 408 || status == 429) {
        throw new IOException(message);
      }
      throw new NotRetryableException(message + "; not retried");
    }
  }

  /** The first line of an error answer's body, printable ASCII only, for a message. */
  private static String errorText(HttpURLConnection c) {
    try (InputStream in = c.getErrorStream()) {
      if (in == null) {
        return "no reason given";
      }
      String text = new String(in.readNBytes(200), java.nio.charset.StandardCharsets.UTF_8);
      return text.lines().findFirst().orElse("").replaceAll("[^\\x20-\\x7e]", "?");
    } catch (IOException e) {
      return "no reason given";
    }
  }

  /**
   * The body, read from the socket on a thread of its own: the socket reads and the SHA-256 that
   * {@link ImageStream#read} computes then run on two cores, as {@code curl | openssl dgst} does.
   */
  private static InputStream readAhead(HttpURLConnection c) throws IOException {
    return new ReadAheadInputStream(c.getInputStream(), "cb-net", NET_CHUNK, NET_DEPTH);
  }

  /** Closes the connection; called from the reading thread. */
  private void disconnect() {
    InputStream b = body;
    body = null;
    if (b != null) {
      try {
        b.close(); // ends the body's thread, within one poll of the socket
      } catch (IOException e) {
        LOG.debugf("closing the body of %s: %s", uri, e.getMessage());
      }
    }
    HttpURLConnection c = connection;
    if (c != null) {
      c.disconnect();
    }
  }

  @Override
  public void close() throws IOException {
    try {
      disconnect();
    } finally {
      super.close();
    }
  }

  /** A failure no retry can fix (404, changed image). */
  private static final class NotRetryableException extends IOException {
    private static final long serialVersionUID = 1L;

    NotRetryableException(String message) {
      super(message);
    }
  }
}
