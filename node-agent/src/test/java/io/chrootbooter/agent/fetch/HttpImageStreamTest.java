package io.chrootbooter.agent.fetch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.failsafe.Execution;
import dev.failsafe.RetryPolicy;
import io.chrootbooter.protocol.Backoff;
import java.io.IOException;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class HttpImageStreamTest {
  private static final int SIZE = 3 * 1024 * 1024 + 17;
  private static final byte[] IMAGE = new byte[SIZE];
  private static final String SHA256;

  static {
    new Random(42).nextBytes(IMAGE);
    try {
      SHA256 = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(IMAGE));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private final List<DownloadProgress> progress = new CopyOnWriteArrayList<>();
  private final CancelSignal cancel = new CancelSignal();
  private LoopbackServer server;

  @AfterEach
  void stopServer() {
    if (server != null) {
      server.close();
    }
  }

  private Duration stallTimeout = Duration.ofSeconds(10);

  private FetchOptions options() {
    Backoff fast = new Backoff(4, Duration.ofMillis(10), Duration.ofMillis(50));
    return new FetchOptions(fast, stallTimeout, cancel, progress::add, 0);
  }

  private String download(LoopbackServer s) throws IOException {
    try (ImageStream in = ImageSources.open(s.url(), options())) {
      in.transferTo(OutputStream.nullOutputStream());
      return in.sha256();
    }
  }

  @Test
  void streamsTheWholeImageWithItsDigestAndProgress() throws IOException {
    server = new LoopbackServer(IMAGE);

    assertThat(download(server)).isEqualTo(SHA256);
    assertThat(server.ranges()).containsExactly("-");
    DownloadProgress last = progress.get(progress.size() - 1);
    assertThat(last.bytes()).isEqualTo(SIZE);
    assertThat(last.total()).isEqualTo(SIZE);
    assertThat(last.eta()).contains(Duration.ZERO);
    assertThat(progress).extracting(DownloadProgress::bytes).isSorted();
  }

  @Test
  void droppedConnectionResumesWithRangeToTheRightDigest() throws IOException {
    server =
        new LoopbackServer(IMAGE)
            .fault(1, LoopbackServer.Fault.DROP, 1_000_000)
            .fault(2, LoopbackServer.Fault.DROP, 500_000);

    assertThat(download(server)).isEqualTo(SHA256);
    assertThat(server.ranges()).hasSize(3);
    assertThat(server.ranges().get(0)).isEqualTo("-");
    assertThat(server.ranges().get(1)).startsWith("bytes=").endsWith("-");
    long firstResume = Long.parseLong(server.ranges().get(1).replaceAll("\\D", ""));
    assertThat(firstResume).isPositive().isLessThanOrEqualTo(1_000_000);
  }

  @Test
  void bytesBetweenDropsStartTheCountOfAttemptsAgain() throws IOException {
    // Six drops, each after 300 kB more: more than the 4 attempts in a row the options allow.
    server = new LoopbackServer(IMAGE);
    for (int request = 1; request <= 6; request++) {
      server.fault(request, LoopbackServer.Fault.DROP, 300_000);
    }

    assertThat(download(server)).isEqualTo(SHA256);
    assertThat(server.ranges()).hasSize(7);
  }

  @Test
  void stalledConnectionIsDroppedAfterTheStallTimeoutAndResumed() throws IOException {
    server = new LoopbackServer(IMAGE).fault(1, LoopbackServer.Fault.STALL, 2_000_000);
    stallTimeout = Duration.ofSeconds(1);

    assertThat(download(server)).isEqualTo(SHA256);
    assertThat(server.ranges()).hasSizeGreaterThanOrEqualTo(2);
    assertThat(server.ranges().get(1)).matches("bytes=\\d+-");
  }

  @Test
  void serverErrorsAreRetriedWithBackoff() throws IOException {
    server = new LoopbackServer(IMAGE).failFirst(2, 503);

    assertThat(download(server)).isEqualTo(SHA256);
    assertThat(server.requests()).isEqualTo(3);
  }

  @Test
  void retriesGiveUpNamingTheUrlAndTheLastError() throws IOException {
    server = new LoopbackServer(IMAGE).failFirst(100, 503);

    assertThatThrownBy(() -> download(server))
        .isInstanceOf(IOException.class)
        .hasMessageContaining(server.url())
        .hasMessageContaining("4 times")
        .hasMessageContaining("HTTP 503");
  }

  @Test
  void notFoundIsNotRetried() throws IOException {
    server = new LoopbackServer(IMAGE).failFirst(100, 404);

    assertThatThrownBy(() -> download(server)).hasMessageContaining("HTTP 404; not retried");
    assertThat(server.requests()).isEqualTo(1);
  }

  @Test
  void serverIgnoringRangeIsSkippedToTheResumePoint() throws IOException {
    server = new LoopbackServer(IMAGE).ignoreRange().fault(1, LoopbackServer.Fault.DROP, 700_000);

    assertThat(download(server)).isEqualTo(SHA256);
  }

  @Test
  void imageChangedDuringTheDownloadIsNotSpliced() throws IOException {
    server = new LoopbackServer(IMAGE).fault(1, LoopbackServer.Fault.DROP, 700_000);
    byte[] other = IMAGE.clone();
    other[SIZE - 1] ^= 1;

    try (ImageStream in = ImageSources.open(server.url(), options())) {
      in.readNBytes(100_000);
      server.replace(other, "\"v2\"");
      assertThatThrownBy(() -> in.transferTo(OutputStream.nullOutputStream()))
          .hasMessageContaining("changed during the download");
    }
  }

  @Test
  void wrongDigestIsReported() throws IOException {
    server = new LoopbackServer(IMAGE);
    String wrong = "0".repeat(64);

    try (ImageStream in = ImageSources.open(server.url(), options())) {
      assertThatThrownBy(() -> in.verify(wrong))
          .isInstanceOf(DigestMismatchException.class)
          .hasMessage("sha256 of " + server.url() + " is " + SHA256 + "; expected " + wrong);
    }
  }

  @Test
  void cancelEndsABlockedReadAtOnce() throws Exception {
    server = new LoopbackServer(IMAGE).fault(1, LoopbackServer.Fault.STALL, 1_000_000);
    Backoff patient = new Backoff(4, Duration.ofMillis(10), Duration.ofMillis(50));
    ImageStream in =
        ImageSources.open(
            server.url(),
            new FetchOptions(patient, Duration.ofSeconds(60), cancel, progress::add, 0));
    CompletableFuture<Long> reader =
        CompletableFuture.supplyAsync(
            () -> {
              try (in) {
                return in.transferTo(OutputStream.nullOutputStream());
              } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            });
    await().atMost(Duration.ofSeconds(10)).until(() -> in.bytes() >= 1_000_000);

    cancel.cancel();

    await().atMost(Duration.ofSeconds(2)).until(reader::isDone);
    assertThat(reader)
        .failsWithin(Duration.ZERO)
        .withThrowableThat()
        .havingRootCause()
        .isInstanceOf(DownloadCancelledException.class)
        .withMessageContaining("cancelled after 1000000 bytes");
  }

  @Test
  void retryDelayGrowsExponentiallyWithJitterUpToTheCap() {
    // Unlimited attempts, so that the 20th retry is still one.
    RetryPolicy<Object> policy =
        Retries.policy(
            new Backoff(Backoff.UNLIMITED, Duration.ofMillis(100), Duration.ofMillis(1000)));
    for (int i = 0; i < 200; i++) {
      assertThat(delayBefore(1, policy)).isBetween(Duration.ofMillis(50), Duration.ofMillis(100));
      assertThat(delayBefore(3, policy)).isBetween(Duration.ofMillis(200), Duration.ofMillis(400));
      assertThat(delayBefore(20, policy))
          .isBetween(Duration.ofMillis(500), Duration.ofMillis(1000));
    }
  }

  @Test
  void retryPolicyRejectsNonsense() {
    assertThatThrownBy(() -> new Backoff(0, Duration.ZERO, Duration.ZERO))
        .hasMessage("attempts 0 must be at least 1");
  }

  /** The wait Failsafe schedules before retry {@code retry} of one download. */
  private static Duration delayBefore(int retry, RetryPolicy<Object> policy) {
    Execution<Object> attempts = Execution.of(policy);
    for (int i = 0; i < retry; i++) {
      attempts.recordException(new IOException("connection reset"));
    }
    return attempts.getDelay();
  }
}
