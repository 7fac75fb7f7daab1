package io.chrootbooter.operator.image;

import io.chrootbooter.operator.status.Reason;
import io.chrootbooter.protocol.HttpRange;
import io.chrootbooter.protocol.ImageFormat;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.function.Consumer;

/**
 * One image download into the store, across as many attempts as it takes: each attempt resumes
 * where the last one stopped ({@code Range} with {@code If-Range}, RFC 9110 §14.2 and §13.1.5), the
 * SHA-256 is computed over the bytes as they are written, and the first bytes are checked against
 * the declared format. Not thread-safe: one thread runs the attempts; another may only {@link
 * Control#cancel() cancel} them, or {@link Control#closeIfStalled end} an attempt whose source
 * stopped sending.
 *
 * <p>A certificate the source's TLS handshake fails on (an unknown CA, a name that does not match
 * the host) is a {@link MirrorFailure}: retrying cannot change it, a new caBundle can.
 */
final class Mirror {
  private static final int BUFFER = 1 << 20;
  private static final long PROGRESS_EVERY_NANOS = 1_000_000_000L;

  /** The redirects followed, each to a host the policy allows; at most this many per request. */
  static final int MAX_REDIRECTS = 5;

  private static final Set<Integer> REDIRECTS = Set.of(301, 302, 303, 307, 308);

  /** What to download and where. */
  record Request(String url, Optional<String> sha256, ImageFormat format, Path partial) {}

  /** How far the download is. {@code total} is -1 while unknown. */
  record Progress(long bytes, long total, long bytesPerSecond) {}

  /** A verified download, ready to be committed to the store. */
  record Result(String sha256, long size, Path file) {}

  /**
   * Stops attempts from another thread by closing the response body a read may be blocked on — a
   * stalled source sends nothing that would wake it: for good ({@link #cancel}), or only the
   * current attempt when no byte arrived for a while ({@link #closeIfStalled}), which is then
   * retried from where it stopped.
   */
  static final class Control {
    private volatile boolean cancelled;
    private volatile Closeable body;
    private volatile long lastByteNanos;
    private volatile Duration stalledFor;

    void cancel() {
      cancelled = true;
      closeQuietly(body);
    }

    boolean isCancelled() {
      return cancelled;
    }

    /**
     * Ends the current attempt if its body has been read from and no byte came for {@code limit}.
     */
    void closeIfStalled(Duration limit, long nowNanos) {
      Closeable current = body;
      if (current != null && nowNanos - lastByteNanos > limit.toNanos()) {
        stalledFor = limit;
        closeQuietly(current);
      }
    }

    private void reading(Closeable body) {
      stalledFor = null;
      lastByteNanos = System.nanoTime();
      this.body = body;
      if (cancelled) {
        closeQuietly(body);
      }
    }

    private void received() {
      lastByteNanos = System.nanoTime();
    }

    private void done() {
      body = null;
    }

    private static void closeQuietly(Closeable body) {
      if (body != null) {
        try {
          body.close();
        } catch (IOException e) {
          // The download is abandoned: a body that fails to close has nothing left to lose.
        }
      }
    }
  }

  private final HttpClient http;
  private final SourcePolicy policy;
  private final Request request;
  private final ImageStore store;
  private MessageDigest digest = newDigest();
  private long received;
  private long total = -1;
  private String validator;
  private final byte[] head =
      new byte[Math.max(ImageFormat.SNIFF_BYTES, ImageFormat.TAR_HEADER_BYTES)];
  private boolean formatChecked;

  Mirror(HttpClient http, SourcePolicy policy, Request request, ImageStore store) {
    this.http = http;
    this.policy = policy;
    this.request = request;
    this.store = store;
  }

  /** One attempt; IOException means "try again", {@link MirrorFailure} means "do not". */
  Result attempt(Control control, Consumer<Progress> progress) throws IOException {
    if (control.isCancelled()) {
      throw new CancellationException("download of " + request.url() + " cancelled");
    }
    boolean resuming = received > 0 && validator != null;
    HttpResponse<InputStream> response = send(resuming);
    try (InputStream body = response.body()) {
      control.reading(body);
      int status = response.statusCode();
      if (status == 206 && resuming && rangeStartsAt(response, received)) {
        // Continue: the digest and the file hold exactly the first `received` bytes.
      } else if (status == 200) {
        restart();
        total = response.headers().firstValueAsLong("Content-Length").orElse(-1);
        validator =
            HttpRange.validator(
                    response.headers().firstValue("ETag").orElse(null),
                    response.headers().firstValue("Last-Modified").orElse(null))
                .orElse(null);
        if (total >= 0) {
          store.checkRoom(total);
        }
      } else if (status >= 400 && status < 500 && status != 408 && status != 429) {
        throw new MirrorFailure(
            Reason.SourceRejected, "GET " + request.url() + " answered HTTP " + status);
      } else {
        throw new IOException("GET " + request.url() + " answered HTTP " + status);
      }
      copy(body, control, progress);
      // A body closed from outside may read as a normal end: never take it for the whole image.
      checkInterrupted(control, null);
    } catch (IOException e) {
      checkInterrupted(control, e);
      throw e;
    } finally {
      control.done();
    }
    if (total >= 0 && received != total) {
      throw new IOException(
          "GET " + request.url() + " ended after " + received + " of " + total + " bytes");
    }
    checkFormat();
    String actual = HexFormat.of().formatHex(digest.digest());
    if (request.sha256().isPresent() && !request.sha256().get().equals(actual)) {
      Files.deleteIfExists(request.partial());
      throw new MirrorFailure(
          Reason.ChecksumMismatch,
          "expected sha256 "
              + request.sha256().get()
              + ", the downloaded bytes have sha256 "
              + actual
              + "; they were deleted");
    }
    return new Result(actual, received, request.partial());
  }

  /**
   * Sends the request, following redirects: the host of the URL and of every hop is judged by the
   * {@link SourcePolicy} before anything is sent to it, so nothing is ever sent to a refused
   * address (and no error of a connection to one can be reported).
   */
  private HttpResponse<InputStream> send(boolean resuming) throws IOException {
    URI uri = URI.create(request.url());
    allow(uri, 0);
    for (int hop = 1; ; hop++) {
      HttpRequest.Builder builder =
          HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(30)).GET();
      if (resuming) {
        builder.header("Range", HttpRange.from(received)).header("If-Range", validator);
      }
      HttpResponse<InputStream> response;
      try {
        response = http.send(builder.build(), HttpResponse.BodyHandlers.ofInputStream());
      } catch (IOException e) {
        throw certificateFailure(uri.toString(), e).orElseThrow(() -> e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new CancellationException("download of " + request.url() + " cancelled");
      }
      Optional<String> location = response.headers().firstValue("Location");
      if (!REDIRECTS.contains(response.statusCode()) || location.isEmpty()) {
        return response;
      }
      response.body().close();
      if (hop > MAX_REDIRECTS) {
        throw new MirrorFailure(
            Reason.SourceRejected,
            "GET " + request.url() + " was redirected more than " + MAX_REDIRECTS + " times");
      }
      URI next;
      try {
        next = uri.resolve(new URI(location.get()));
      } catch (URISyntaxException | IllegalArgumentException e) {
        throw new MirrorFailure(
            Reason.SourceRejected,
            "GET " + request.url() + " was redirected to an invalid Location (hop " + hop + ")");
      }
      String scheme = next.getScheme() == null ? "" : next.getScheme().toLowerCase(Locale.ROOT);
      if (!scheme.equals("http") && !scheme.equals("https")) {
        throw new MirrorFailure(
            Reason.SourceRejected,
            "GET " + request.url() + " was redirected to a URL that is not http or https");
      }
      if (scheme.equals("http") && uri.getScheme().equalsIgnoreCase("https")) {
        throw new MirrorFailure(
            Reason.SourceRejected,
            "GET " + request.url() + " was redirected from https to http, which is not followed");
      }
      allow(next, hop);
      uri = next;
    }
  }

  /** Throws a {@link MirrorFailure} when the policy refuses {@code uri}'s host. */
  private void allow(URI uri, int hop) throws IOException {
    String host = uri.getHost();
    if (host == null || host.isEmpty()) {
      throw new MirrorFailure(
          Reason.SourceRejected,
          hop == 0
              ? "source " + request.url() + " names no host"
              : "GET "
                  + request.url()
                  + " was redirected to a URL without a host (hop "
                  + hop
                  + ")");
    }
    Optional<SourcePolicy.Rule> refused = policy.check(host);
    if (refused.isPresent()) {
      throw new MirrorFailure(
          Reason.SourceRejected,
          (hop == 0
                  ? "source host " + host
                  : "GET "
                      + request.url()
                      + " was redirected (hop "
                      + hop
                      + ") to host "
                      + host
                      + ", which")
              + " resolves to an address refused by policy ("
              + refused.get()
              + ")");
    }
  }

  private void copy(InputStream body, Control control, Consumer<Progress> progress)
      throws IOException {
    byte[] buffer = new byte[BUFFER];
    long started = System.nanoTime();
    long startBytes = received;
    // The first bytes are reported at once, then at most once a second.
    long lastReport = started - PROGRESS_EVERY_NANOS;
    try (FileChannel out =
        FileChannel.open(request.partial(), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      out.truncate(received);
      out.position(received);
      for (int n; (n = body.read(buffer)) > 0; ) {
        if (control.isCancelled()) {
          throw new CancellationException("download of " + request.url() + " cancelled");
        }
        ByteBuffer chunk = ByteBuffer.wrap(buffer, 0, n);
        while (chunk.hasRemaining()) {
          out.write(chunk);
        }
        if (received < head.length) {
          System.arraycopy(
              buffer, 0, head, (int) received, (int) Math.min(n, head.length - received));
        }
        control.received();
        digest.update(buffer, 0, n);
        received += n;
        if (!formatChecked && received >= head.length) {
          checkFormat();
        }
        long now = System.nanoTime();
        if (now - lastReport >= PROGRESS_EVERY_NANOS) {
          lastReport = now;
          long rate = (received - startBytes) * 1_000_000_000L / Math.max(1, now - started);
          progress.accept(new Progress(received, total, rate));
        }
      }
    }
  }

  /** Throws what ended the attempt from outside, if anything did. */
  private void checkInterrupted(Control control, IOException cause) throws IOException {
    if (control.isCancelled()) {
      throw new CancellationException("download of " + request.url() + " cancelled");
    }
    Duration stalled = control.stalledFor;
    if (stalled != null) {
      throw new IOException(
          "GET "
              + request.url()
              + " sent no byte for "
              + stalled.toSeconds()
              + " s after "
              + received
              + " bytes (cb.store.stall-timeout)",
          cause);
    }
  }

  /**
   * The failure a certificate check in {@code e}'s causes stands for, if any: PKIX path building
   * (no trusted CA signed the chain), a host name the certificate does not name (RFC 2818 §3.1), or
   * any other rejection (expired, not yet valid, bad signature). Other TLS errors — a reset
   * handshake, say — are not final and are retried.
   */
  static Optional<MirrorFailure> certificateFailure(String url, Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof CertPathBuilderException) {
        return Optional.of(
            new MirrorFailure(
                Reason.SourceUntrusted,
                url
                    + ": certificate not trusted (PKIX path building failed) — set"
                    + " spec.source.caBundle or cb.store.ca-bundle"));
      }
      String message = t.getMessage() == null ? "" : t.getMessage();
      if (t instanceof CertificateException
          && (message.startsWith("No subject alternative") || message.startsWith("No name"))) {
        return Optional.of(
            new MirrorFailure(
                Reason.SourceUntrusted,
                url
                    + ": certificate not valid for host "
                    + URI.create(url).getHost()
                    + " ("
                    + message
                    + "); host names are always verified"));
      }
    }
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof CertPathValidatorException || t instanceof CertificateException) {
        Throwable root = t;
        while (root.getCause() != null) {
          root = root.getCause();
        }
        return Optional.of(
            new MirrorFailure(
                Reason.SourceUntrusted,
                url + ": certificate rejected (" + root.getMessage() + ")"));
      }
    }
    return Optional.empty();
  }

  private void checkFormat() {
    if (formatChecked) {
      return;
    }
    formatChecked = true;
    byte[] first = received >= head.length ? head : java.util.Arrays.copyOf(head, (int) received);
    ImageFormat declared = request.format();
    // A pre-POSIX (V7) tar has no magic: recognized by its header checksum when declared tar.
    Optional<ImageFormat> sniffed = ImageFormat.sniff(first, first.length, declared);
    boolean compatible =
        sniffed.isPresent()
            && (sniffed.get() == declared
                // A plain tar is sniffed as TAR; compressed tars by their compressor.
                || (declared == ImageFormat.TAR && sniffed.get() == ImageFormat.TAR));
    if (!compatible) {
      throw new MirrorFailure(
          Reason.FormatMismatch,
          "the image is declared "
              + declared.value()
              + " but its first bytes are "
              + sniffed
                  .map(f -> "those of " + f.value())
                  .orElse("not squashfs, gzip, xz, zstd or tar"));
    }
  }

  private void restart() {
    digest = newDigest();
    received = 0;
    formatChecked = false;
  }

  private static boolean rangeStartsAt(HttpResponse<?> response, long offset) {
    return HttpRange.parse(response.headers().firstValue("Content-Range").orElse(null))
        .filter(r -> r.startsAt(offset))
        .isPresent();
  }

  private static MessageDigest newDigest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
    }
  }
}
