package io.chrootbooter.agent.lazy;

import io.chrootbooter.protocol.Prefetch;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.BitSet;
import java.util.Optional;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * A Lazy image while its target runs: the background prefetch (the pieces the read profile names
 * first, then the rest in order), its progress for the status (at most every {@link
 * #PROGRESS_INTERVAL}, and once when it ends), the dm-verity watch, and the read profile written
 * for the next boot of the same digest. {@link #close()} stops the prefetch and the watch (their
 * threads end before it returns) and writes the profile; the block stack itself is torn down by its
 * owner afterwards.
 *
 * <p>When the network is lost before the prefetch completes, the prefetch tries again every {@link
 * #RETRY_PAUSE} until it is back; meanwhile a read of a piece that is not local fails (EIO in the
 * target) once the piece's fetch attempts are spent, well within the NBD timeout, and {@link
 * #prefetch()} says why. Reads of local pieces go on working.
 */
public final class LazyImage implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(LazyImage.class);

  /** Progress is told at most this often while it changes. */
  public static final Duration PROGRESS_INTERVAL = Duration.ofSeconds(2);

  /** How long the prefetch waits after a piece could not be fetched before it tries again. */
  static final Duration RETRY_PAUSE = Duration.ofSeconds(5);

  private final String digest;
  private final HttpBlocks blocks;
  private final Optional<Path> profileFile;
  private final BitSet profile;
  private final Thread prefetch;
  private final Object lock = new Object();
  private volatile Runnable onProgress = () -> {};
  private volatile Consumer<LazyRoot.Corruption> onCorruption;
  private volatile LazyRoot.Corruption corruption;
  private volatile Optional<VerityWatch> watch = Optional.empty();
  private volatile boolean closed;
  private volatile int pauses;
  private long lastProgress;

  /**
   * @param digest the image's SHA-256, for the log
   * @param profileFile where this digest's read profile is read from and written to; empty for none
   */
  private LazyImage(String digest, HttpBlocks blocks, Optional<Path> profileFile) {
    this.digest = digest;
    this.blocks = blocks;
    this.profileFile = profileFile;
    this.profile =
        profileFile
            .flatMap(f -> ReadProfile.load(f, HttpBlocks.CHUNK, blocks.pieces()))
            .orElseGet(BitSet::new);
    this.prefetch = new Thread(this::prefetchLoop, "cb-lazy-prefetch");
    prefetch.setDaemon(true);
    blocks.onFetched(this::fetched);
  }

  /**
   * Starts the prefetch of {@code blocks}, and (when {@code kmsg} is set) the dm-verity watch of
   * {@code root}.
   */
  public static LazyImage start(
      String digest,
      HttpBlocks blocks,
      LazyRoot root,
      Optional<Path> profileFile,
      Optional<Path> kmsg) {
    return start(
        digest, blocks, Optional.ofNullable(root).map(VerityWatch.Device::of), profileFile, kmsg);
  }

  /**
   * Starts the prefetch of {@code blocks}, and (when {@code kmsg} is set) the dm-verity watch of
   * {@code device}.
   */
  public static LazyImage start(
      String digest,
      HttpBlocks blocks,
      Optional<VerityWatch.Device> device,
      Optional<Path> profileFile,
      Optional<Path> kmsg) {
    LazyImage image = new LazyImage(digest, blocks, profileFile);
    if (!image.profile.isEmpty()) {
      LOG.infof(
          "image %s: prefetching first the %d pieces its last boot read",
          abbreviated(digest), image.profile.cardinality());
    }
    if (device.isPresent() && kmsg.isPresent()) {
      image.watch = VerityWatch.start(device.get(), kmsg.get(), image::corrupted);
    }
    image.prefetch.start();
    return image;
  }

  /** The pieces the read profile had this image's prefetch fetch first. */
  public BitSet profile() {
    return (BitSet) profile.clone();
  }

  /** Runs (on a fetching thread) when the prefetch's progress changed, at most every 2 s. */
  public void onProgress(Runnable listener) {
    this.onProgress = listener;
  }

  /**
   * Runs (on the watch's thread) when dm-verity finds a corrupted block; at once when it found one
   * already.
   */
  public void onCorruption(Consumer<LazyRoot.Corruption> listener) {
    this.onCorruption = listener;
    LazyRoot.Corruption found = corruption;
    if (found != null) {
      listener.accept(found);
    }
  }

  /** The corrupted block dm-verity found, if it found one. */
  public Optional<LazyRoot.Corruption> corruption() {
    return Optional.ofNullable(corruption);
  }

  private void corrupted(LazyRoot.Corruption c) {
    corruption = c;
    Consumer<LazyRoot.Corruption> listener = onCorruption;
    if (listener != null && !closed) {
      listener.accept(c);
    }
  }

  /** How often the prefetch paused because a piece could not be fetched. */
  int pauses() {
    return pauses;
  }

  /** Whether {@link #close()} ran. */
  public boolean closed() {
    return closed;
  }

  /** How much is local, for the status. */
  public Prefetch prefetch() {
    long local = blocks.localBytes();
    return new Prefetch(local, blocks.size(), blocks.complete(), blocks.lastError());
  }

  /** After each piece fetched: progress, at most every {@link #PROGRESS_INTERVAL}. */
  private void fetched() {
    long now = System.nanoTime();
    synchronized (lock) {
      if (now - lastProgress < PROGRESS_INTERVAL.toNanos()) {
        return;
      }
      lastProgress = now;
    }
    tell();
  }

  private void tell() {
    if (closed) {
      return;
    }
    try {
      onProgress.run();
    } catch (RuntimeException e) {
      LOG.warnf(e, "the prefetch's progress listener failed");
    }
  }

  private void prefetchLoop() {
    String lastError = null;
    while (!closed) {
      try {
        boolean complete = blocks.prefetch(profile);
        if (complete) {
          LOG.infof("image %s is fully local", abbreviated(digest));
        } else if (!closed) {
          LOG.infof(
              "image %s: the prefetch stopped at the block cache's budget of %d bytes; pieces"
                  + " not held are fetched when they are read",
              abbreviated(digest), blocks.budget());
        }
        tell();
        return;
      } catch (IOException | RuntimeException e) {
        if (closed) {
          return;
        }
        pauses++;
        String error = blocks.lastError() == null ? e.getMessage() : blocks.lastError();
        if (!error.equals(lastError)) {
          LOG.warnf(
              "image %s: prefetch paused (%s); trying again every %d s",
              abbreviated(digest), error, RETRY_PAUSE.toSeconds());
          lastError = error;
          tell();
        }
        synchronized (lock) {
          try {
            if (!closed) {
              lock.wait(RETRY_PAUSE.toMillis());
            }
          } catch (InterruptedException interrupted) {
            return;
          }
        }
      }
    }
  }

  /**
   * Stops the prefetch and the watch, their threads ended, and writes the read profile; the block
   * stack is its owner's to tear down.
   */
  @Override
  public void close() throws IOException {
    closed = true;
    synchronized (lock) {
      lock.notifyAll();
    }
    blocks.stop();
    watch.ifPresent(VerityWatch::close);
    try {
      prefetch.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (prefetch.isAlive()) {
      LOG.warnf("image %s: the prefetch thread did not end in 10 s", abbreviated(digest));
    }
    if (profileFile.isPresent()) {
      BitSet read = blocks.readPieces();
      try {
        ReadProfile.save(profileFile.get(), read, HttpBlocks.CHUNK, blocks.pieces());
      } catch (IOException e) {
        LOG.warnf("the read profile %s was not written: %s", profileFile.get(), e.getMessage());
      }
    }
  }

  private static String abbreviated(String digest) {
    return digest.length() > 12 ? digest.substring(0, 12) : digest;
  }
}
