package io.chrootbooter.agent.lazy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.OperatorCredential;
import io.chrootbooter.protocol.Prefetch;
import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Lazy image's blocks without devices: an image served on 127.0.0.1 by a range server, the
 * agent's block cache over it and the prefetch. The read profile of one boot orders the next boot's
 * prefetch; a RAM budget holds, evicting and fetching again; a network cut fails reads of pieces
 * that are not local within a bounded time, says why, and the prefetch goes on once it is back; a
 * close ends every thread.
 */
class LazyImageTest {
  private static final String SESSION = "Bearer lazy-image";
  private static final int CHUNK = HttpBlocks.CHUNK;

  @TempDir Path dir;

  private final List<AutoCloseable> open = new ArrayList<>();

  @AfterEach
  void tearDown() throws Exception {
    for (int i = open.size() - 1; i >= 0; i--) {
      open.get(i).close();
    }
    OperatorCredential.clear();
  }

  private static byte[] image(int chunks, long seed) {
    byte[] bytes = new byte[chunks * CHUNK];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  private RangeServer serve(byte[] bytes) throws IOException {
    RangeServer http = new RangeServer(bytes, "ab".repeat(32), SESSION);
    open.add(http);
    OperatorCredential.use(URI.create(http.url()), () -> SESSION);
    return http;
  }

  private static FetchOptions options(int attempts) {
    return new FetchOptions(
        new io.chrootbooter.protocol.Backoff(
            attempts, Duration.ofMillis(50), Duration.ofMillis(100)),
        Duration.ofSeconds(2),
        new CancelSignal(),
        p -> {},
        1000);
  }

  private HttpBlocks blocks(RangeServer http, byte[] bytes, String name, long budget)
      throws IOException {
    HttpBlocks b =
        new HttpBlocks(
            URI.create(http.url()),
            "ab".repeat(32),
            bytes.length,
            bytes.length,
            dir.resolve(name),
            options(2),
            budget);
    open.add(b);
    return b;
  }

  private static byte[] read(HttpBlocks blocks, long offset, int length) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(length);
    blocks.read(offset, b);
    return b.array();
  }

  private static void await(BooleanSupplier condition, Duration within, String what)
      throws InterruptedException {
    long end = System.nanoTime() + within.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("not within " + within + ": " + what);
      }
      Thread.sleep(20);
    }
  }

  private static long threads(String name) {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().startsWith(name) && t.isAlive())
        .count();
  }

  @Test
  void theBootsReadProfileIsPrefetchedFirstByTheNextBootOfTheSameDigest() throws Exception {
    byte[] bytes = image(16, 1);
    RangeServer http = serve(bytes);
    Path profile = ReadProfile.file(dir.resolve("profiles"), "cd".repeat(32));

    // The first boot reads pieces 9 and 3 (and a read that spans 12 and 13); nothing prefetches.
    HttpBlocks first = blocks(http, bytes, "first", Long.MAX_VALUE);
    assertThat(read(first, 9L * CHUNK + 100, 4096))
        .isEqualTo(Arrays.copyOfRange(bytes, 9 * CHUNK + 100, 9 * CHUNK + 4196));
    read(first, 3L * CHUNK, 512);
    read(first, 13L * CHUNK - 4096, 8192);
    ReadProfile.save(profile, first.readPieces(), CHUNK, first.pieces());
    assertThat(Files.size(profile)).isEqualTo(20 + 8 * 3); // 3, 9, 12-13: three extents
    try (var files = Files.list(dir.resolve("profiles"))) {
      assertThat(files.map(f -> f.getFileName().toString()).toList())
          .containsExactly(profile.getFileName().toString());
    }

    // The next boot of the same digest prefetches 3, 9, 12, 13 first, then the rest in order
    // (several at once, so the profile's pieces are among the first few answered).
    int before = http.starts().size();
    http.delay(50); // each answer takes a moment, so the requests in flight overlap
    HttpBlocks second = blocks(http, bytes, "second", Long.MAX_VALUE);
    LazyImage image =
        LazyImage.start(
            "cd".repeat(32), second, Optional.empty(), Optional.of(profile), Optional.empty());
    open.add(image);
    assertThat(image.profile().stream().toArray()).containsExactly(3, 9, 12, 13);
    await(second::complete, Duration.ofSeconds(30), "the image fully local");
    List<Long> order = http.starts().subList(before, http.starts().size());
    List<Long> expected = new ArrayList<>();
    IntStream.of(3, 9, 12, 13).forEach(c -> expected.add((long) c * CHUNK));
    IntStream.range(0, 16)
        .filter(c -> c != 3 && c != 9 && c != 12 && c != 13)
        .forEach(c -> expected.add((long) c * CHUNK));
    assertThat(order).containsExactlyInAnyOrderElementsOf(expected);
    int slack = HttpBlocks.PREFETCH_IN_FLIGHT - 1;
    assertThat(order.subList(0, 4 + slack))
        .as("the profile's pieces among the first asked for")
        .containsAll(expected.subList(0, 4));
    assertThat(image.prefetch())
        .isEqualTo(new Prefetch((long) bytes.length, (long) bytes.length, true, null));
    assertThat(read(second, 0, bytes.length)).isEqualTo(bytes);

    // Its close writes this boot's reads (all of it) as the profile.
    image.close();
    assertThat(ReadProfile.load(profile, CHUNK, 16).orElseThrow().cardinality()).isEqualTo(16);
    assertThat(threads("cb-lazy-prefetch")).isZero();
  }

  @Test
  void thePrefetchKeepsSeveralPiecesInFlightAndAReadDuringItIsAnsweredPromptly() throws Exception {
    byte[] bytes = image(48, 5);
    RangeServer http = serve(bytes);
    http.delay(100); // each answer waits 100 ms: a link's round trip, long enough to overlap
    HttpBlocks blocks = blocks(http, bytes, "overlap", Long.MAX_VALUE);
    long t0 = System.nanoTime();
    LazyImage image =
        LazyImage.start(
            "03".repeat(32), blocks, Optional.empty(), Optional.empty(), Optional.empty());
    open.add(image);
    await(() -> http.ranges() >= 4, Duration.ofSeconds(10), "the prefetch under way");

    // A read of the last piece, which the prefetch reaches last: it does not wait for the
    // prefetch's pieces ahead of it, but is fetched at once (one answer's delay, and a little).
    long r0 = System.nanoTime();
    assertThat(read(blocks, 47L * CHUNK + 4096, 4096))
        .isEqualTo(Arrays.copyOfRange(bytes, 47 * CHUNK + 4096, 47 * CHUNK + 8192));
    assertThat(Duration.ofNanos(System.nanoTime() - r0)).isLessThan(Duration.ofMillis(1500));
    assertThat(blocks.complete()).as("the read came before the prefetch's end").isFalse();

    await(blocks::complete, Duration.ofSeconds(30), "the image fully local");
    Duration took = Duration.ofNanos(System.nanoTime() - t0);
    // One piece at a time would take 48 x 100 ms; several at once take a fraction of that.
    assertThat(http.mostAtOnce()).isBetween(2, HttpBlocks.PREFETCH_IN_FLIGHT + 1);
    assertThat(took).isLessThan(Duration.ofMillis(48 * 100 / 2));
    assertThat(http.ranges()).as("every piece fetched once").isEqualTo(48);
    assertThat(read(blocks, 0, bytes.length)).isEqualTo(bytes);
    image.close();
    assertThat(threads("cb-lazy-prefetch")).isZero();
  }

  @Test
  void aProfileThatIsNotOneIsIgnoredAndALargeOneIsBounded() throws Exception {
    Path profile = dir.resolve("p.reads");
    Files.writeString(profile, "not a profile at all, but long enough to have a header");
    assertThat(ReadProfile.load(profile, CHUNK, 16)).isEmpty();
    // An extent past the image, for an image of another size, for another piece size.
    BitSet some = new BitSet();
    some.set(2, 5);
    ReadProfile.save(profile, some, CHUNK, 16);
    assertThat(ReadProfile.load(profile, CHUNK, 16).orElseThrow()).isEqualTo(some);
    assertThat(ReadProfile.load(profile, CHUNK, 4)).isEmpty();
    assertThat(ReadProfile.load(profile, 4096, 16)).isEmpty();
    byte[] raw = Files.readAllBytes(profile);
    raw[raw.length - 5] = (byte) 0x7f; // the extent's start far past the image
    Files.write(profile, raw);
    assertThat(ReadProfile.load(profile, CHUNK, 16)).isEmpty();

    // Every other piece of 100,000 read: more extents than a profile holds, merged to fit.
    BitSet many = new BitSet();
    for (int c = 0; c < 100_000; c += 2) {
      many.set(c);
    }
    ReadProfile.save(profile, many, CHUNK, 100_000);
    assertThat(Files.size(profile)).isLessThanOrEqualTo(20 + 8L * ReadProfile.MAX_EXTENTS);
    BitSet loaded = ReadProfile.load(profile, CHUNK, 100_000).orElseThrow();
    BitSet missing = (BitSet) many.clone();
    missing.andNot(loaded);
    assertThat(missing.isEmpty()).as("no piece read is left out").isTrue();
  }

  @Test
  void aRamBudgetHoldsEvictingPiecesThatAreFetchedAgainWhenRead() throws Exception {
    byte[] bytes = image(32, 2);
    RangeServer http = serve(bytes);
    HttpBlocks blocks = blocks(http, bytes, "bounded", HttpBlocks.MIN_BUDGET);
    assertThat(blocks.budget()).isEqualTo(HttpBlocks.MIN_BUDGET);
    LazyImage image =
        LazyImage.start(
            "ef".repeat(32), blocks, Optional.empty(), Optional.empty(), Optional.empty());
    open.add(image);
    // The prefetch stops at the budget: 9 pieces.
    await(() -> threads("cb-lazy-prefetch") == 0, Duration.ofSeconds(30), "the prefetch ended");
    assertThat(image.prefetch().bytesLocal()).isEqualTo(HttpBlocks.MIN_BUDGET);
    assertThat(image.prefetch().fullyLocal()).isFalse();
    assertThat(http.ranges()).isEqualTo(9);

    // Reading the whole image (four concurrent readers, as the kernel reads) evicts as it goes.
    List<Thread> readers = new ArrayList<>();
    AtomicInteger wrong = new AtomicInteger();
    for (int r = 0; r < 4; r++) {
      int first = r;
      Thread t =
          new Thread(
              () -> {
                try {
                  for (int c = first; c < 32; c += 4) {
                    if (!Arrays.equals(
                        read(blocks, (long) c * CHUNK, CHUNK),
                        Arrays.copyOfRange(bytes, c * CHUNK, (c + 1) * CHUNK))) {
                      wrong.incrementAndGet();
                    }
                  }
                } catch (IOException e) {
                  wrong.incrementAndGet();
                }
              });
      t.start();
      readers.add(t);
    }
    for (Thread t : readers) {
      t.join(30_000);
    }
    assertThat(wrong.get()).as("pieces read wrong").isZero();
    assertThat(blocks.localBytes()).isLessThanOrEqualTo(HttpBlocks.MIN_BUDGET);
    assertThat(blocks.evictions()).isGreaterThanOrEqualTo(32 - 9);
    // The cache file holds no more than the budget: evicted pieces gave their space back.
    assertThat(allocatedBytes(dir.resolve("bounded"))).isLessThanOrEqualTo(HttpBlocks.MIN_BUDGET);

    // Piece 0 was evicted: reading it again fetches it again, and it is right.
    int ranges = http.ranges();
    assertThat(read(blocks, 0, 4096)).isEqualTo(Arrays.copyOf(bytes, 4096));
    assertThat(http.ranges()).isEqualTo(ranges + 1);
  }

  private static long allocatedBytes(Path file) throws Exception {
    Process p = new ProcessBuilder("stat", "-c", "%b %B", file.toString()).start();
    String[] out =
        new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim().split(" ");
    assertThat(p.waitFor()).isZero();
    return Long.parseLong(out[0]) * Long.parseLong(out[1]);
  }

  @Test
  void aNetworkCutFailsReadsOfMissingPiecesInBoundedTimeAndThePrefetchResumes() throws Exception {
    byte[] bytes = image(24, 3);
    RangeServer http = serve(bytes);
    http.delay(100); // slow enough that the prefetch is under way when the network goes
    HttpBlocks blocks = blocks(http, bytes, "cut", Long.MAX_VALUE);
    AtomicInteger told = new AtomicInteger();
    LazyImage image =
        LazyImage.start(
            "01".repeat(32), blocks, Optional.empty(), Optional.empty(), Optional.empty());
    image.onProgress(told::incrementAndGet);
    open.add(image);
    await(() -> blocks.localBytes() >= 2L * CHUNK, Duration.ofSeconds(30), "two pieces local");
    http.down(true);
    // A local piece still reads; a missing one fails within the attempts' bound (2 x 2 s stall,
    // 50 ms apart; the server answers 503 at once here).
    assertThat(read(blocks, 0, 4096)).isEqualTo(Arrays.copyOf(bytes, 4096));
    long t0 = System.nanoTime();
    assertThatThrownBy(() -> read(blocks, 23L * CHUNK, 4096))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("503");
    assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
    await(() -> image.pauses() > 0, Duration.ofSeconds(10), "the prefetch paused");
    await(() -> image.prefetch().error() != null, Duration.ofSeconds(10), "the cut reported");
    assertThat(image.prefetch().error()).contains("could not be fetched").contains("503");
    assertThat(image.prefetch().fullyLocal()).isFalse();
    assertThat(told.get()).as("progress told when the prefetch paused").isPositive();

    // The network is back: the prefetch goes on by itself and the error goes.
    http.delay(0);
    http.down(false);
    long resumed = System.nanoTime();
    await(blocks::complete, Duration.ofSeconds(30), "the image fully local");
    assertThat(Duration.ofNanos(System.nanoTime() - resumed))
        .as("resumed after its pause")
        .isLessThan(LazyImage.RETRY_PAUSE.plusSeconds(5));
    await(() -> image.prefetch().error() == null, Duration.ofSeconds(5), "the error cleared");
    assertThat(read(blocks, 23L * CHUNK, 4096))
        .isEqualTo(Arrays.copyOfRange(bytes, 23 * CHUNK, 23 * CHUNK + 4096));
    image.close();
    assertThat(threads("cb-lazy-prefetch")).isZero();
  }

  @Test
  void aCloseDuringThePrefetchEndsItsThreadAtOnce() throws Exception {
    byte[] bytes = image(64, 4);
    RangeServer http = serve(bytes);
    http.delay(200);
    for (int cycle = 0; cycle < 5; cycle++) {
      HttpBlocks blocks = blocks(http, bytes, "cycle-" + cycle, Long.MAX_VALUE);
      LazyImage image =
          LazyImage.start(
              "02".repeat(32), blocks, Optional.empty(), Optional.empty(), Optional.empty());
      await(() -> http.ranges() > 0, Duration.ofSeconds(10), "the prefetch under way");
      long t0 = System.nanoTime();
      image.close();
      blocks.close();
      assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(3));
      assertThat(threads("cb-lazy-prefetch")).isZero();
      assertThat(dir.resolve("cycle-" + cycle)).doesNotExist();
    }
  }

  @Test
  void theVerityWatchNamesTheBlockOfItsOwnDeviceOnly() throws Exception {
    Path kmsg = dir.resolve("kmsg");
    Files.writeString(
        kmsg,
        "6,10,1000,-;nbd: something else\n"
            + "3,11,2000,-;device-mapper: verity: 43:1: data block 5 is corrupted\n"
            + "3,12,3000,-;device-mapper: verity: 43:0: metadata block 2 is corrupted\n"
            + "3,13,4000,-;device-mapper: verity: 43:0: data block 77 is corrupted\n");
    List<LazyRoot.Corruption> heard = new ArrayList<>();
    // The dm device says it saw no corruption: an earlier device on 43:0 logged these.
    try (VerityWatch watch =
        VerityWatch.start(kmsg, "43:0", "/dev/dm-3", () -> false, heard::add).orElseThrow()) {
      Thread.sleep(300);
    }
    assertThat(heard).isEmpty();
    try (VerityWatch watch =
        VerityWatch.start(kmsg, "43:0", "/dev/dm-3", () -> true, heard::add).orElseThrow()) {
      await(() -> !heard.isEmpty(), Duration.ofSeconds(5), "the corruption heard");
    }
    assertThat(heard).containsExactly(new LazyRoot.Corruption("/dev/dm-3", "metadata", 2));
    assertThat(VerityWatch.start(dir.resolve("none"), "43:0", "x", () -> true, heard::add))
        .isEmpty();
  }
}
