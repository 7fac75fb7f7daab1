package io.chrootbooter.operator.image;

import io.chrootbooter.api.v1alpha1.Patterns;
import io.chrootbooter.operator.OperatorConfig;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.jboss.logging.Logger;

/**
 * The operator's image store: one file per SHA-256 under {@code sha256/}, downloads in progress
 * under {@code partial/}. A file reaches {@code sha256/} only verified, fsync'ed and renamed
 * atomically, so a half-written image is never served; leftovers in {@code partial/} are removed at
 * start once nobody has written to them for {@link #LEFTOVER_AGE}.
 */
@ApplicationScoped
public class ImageStore {
  private static final Logger LOG = Logger.getLogger(ImageStore.class);
  private static final Pattern SHA256 = Pattern.compile(Patterns.SHA256);

  private final Path root;
  private final Path images;
  private final Path partial;
  private final Path verity;
  private final java.util.OptionalLong maxBytes;

  ImageStore(OperatorConfig config) {
    this.root = config.store().path().toAbsolutePath();
    this.images = root.resolve("sha256");
    this.partial = root.resolve("partial");
    this.verity = root.resolve("verity");
    this.maxBytes = config.store().maxBytes();
  }

  /**
   * A download in {@code partial/} that nobody wrote to for this long is a leftover of a process
   * that died. Younger ones are kept: replicas share the store, and a replica that (re)starts must
   * not delete the file the leader is downloading into.
   */
  static final Duration LEFTOVER_AGE = Duration.ofMinutes(5);

  void start(@Observes StartupEvent event) throws IOException {
    Files.createDirectories(images);
    Files.createDirectories(partial);
    Files.createDirectories(verity);
    Instant cutoff = Instant.now().minus(LEFTOVER_AGE);
    try (Stream<Path> leftovers = Files.list(partial)) {
      for (Path p : leftovers.toList()) {
        try {
          if (Files.getLastModifiedTime(p).toInstant().isBefore(cutoff)) {
            Files.deleteIfExists(p);
            LOG.infof("Removed the unfinished download %s", p.getFileName());
          }
        } catch (NoSuchFileException e) {
          LOG.debugf("%s was finished or removed by another replica", p.getFileName());
        }
      }
    }
  }

  /** The folder served under {@code /images/}. */
  public Path imagesDir() {
    return images;
  }

  /**
   * The folder of the images' dm-verity hash trees, one per digest, served under {@code /verity/}.
   */
  public Path verityDir() {
    return verity;
  }

  /** The hash tree of the stored image with this digest, if computed. */
  public Optional<Path> findTree(String sha256) {
    if (sha256 == null || !SHA256.matcher(sha256).matches()) {
      return Optional.empty();
    }
    Path p = verity.resolve(sha256);
    return Files.isRegularFile(p) ? Optional.of(p) : Optional.empty();
  }

  /**
   * Makes {@code tree} the hash tree of the image with this digest (fsync, atomic rename) unless
   * one is there already; returns the stored tree.
   */
  public Path commitTree(Path tree, String sha256) throws IOException {
    Path target = verity.resolve(sha256);
    Files.createDirectories(verity);
    if (Files.isRegularFile(target)) {
      Files.deleteIfExists(tree);
      return target;
    }
    try (FileChannel ch = FileChannel.open(tree, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
    Files.move(tree, target, StandardCopyOption.ATOMIC_MOVE);
    try (FileChannel dir = FileChannel.open(verity, StandardOpenOption.READ)) {
      dir.force(true);
    }
    return target;
  }

  /** The stored image with this digest, if present. */
  public Optional<Path> find(String sha256) {
    if (sha256 == null || !SHA256.matcher(sha256).matches()) {
      return Optional.empty();
    }
    Path p = images.resolve(sha256);
    return Files.isRegularFile(p) ? Optional.of(p) : Optional.empty();
  }

  /** A fresh file for a download in progress. */
  public Path newPartial(String name) {
    return partial.resolve(name + ".part");
  }

  /**
   * Makes {@code download} the stored image with this digest: fsync, then an atomic rename. A file
   * of the same digest already stored wins; the download is then deleted.
   */
  public Path commit(Path download, String sha256) {
    Path target = images.resolve(sha256);
    try (FileChannel ch = FileChannel.open(download, StandardOpenOption.WRITE)) {
      ch.force(true);
      try {
        Files.move(download, target, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        throw new IllegalStateException(
            "partial/ and sha256/ of " + root + " must be on one filesystem", e);
      }
      try (FileChannel dir = FileChannel.open(images, StandardOpenOption.READ)) {
        dir.force(true);
      }
      return target;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot store image " + sha256, e);
    }
  }

  /** Deletes the stored image with this digest, if present. */
  public void delete(String sha256) {
    find(sha256)
        .ifPresent(
            p -> {
              try {
                Files.deleteIfExists(p);
                Files.deleteIfExists(verity.resolve(sha256));
                LOG.infof("Removed image %s from the store", sha256);
              } catch (IOException e) {
                throw new UncheckedIOException("cannot delete image " + sha256, e);
              }
            });
  }

  /** Refuses a download of {@code size} bytes the store has no room for, naming both numbers. */
  public void checkRoom(long size) {
    try {
      long usable = Files.getFileStore(root).getUsableSpace();
      if (size > usable) {
        throw new MirrorFailure(
            io.chrootbooter.operator.status.Reason.InsufficientSpace,
            "the image is "
                + size
                + " bytes; the store at "
                + root
                + " has "
                + usable
                + " bytes free");
      }
      if (maxBytes.isPresent()) {
        long used = used();
        if (used + size > maxBytes.getAsLong()) {
          throw new MirrorFailure(
              io.chrootbooter.operator.status.Reason.InsufficientSpace,
              "the image is "
                  + size
                  + " bytes; the store holds "
                  + used
                  + " of at most "
                  + maxBytes.getAsLong()
                  + " bytes (cb.store.max-bytes)");
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the free space of " + root, e);
    }
  }

  private long used() throws IOException {
    try (Stream<Path> files = Files.list(images)) {
      long total = 0;
      for (Path p : files.toList()) {
        total += Files.size(p);
      }
      return total;
    }
  }
}
