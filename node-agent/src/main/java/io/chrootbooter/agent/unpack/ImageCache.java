package io.chrootbooter.agent.unpack;

import io.chrootbooter.protocol.ImageFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongSupplier;

/**
 * Downloaded images kept by SHA-256 in one directory (a tmpfs, or the cache disk), so loading a
 * cached image does no download; least recently used images are evicted to stay under a byte
 * budget. Only images whose digest was verified are ever added.
 *
 * <p>Files are named {@code <sha256>.<format>}; the order of use lives in memory and starts from
 * file modification times after a restart. A name is not proof of the content: a cache disk can be
 * written by whatever else mounts it (a target among them), so the loader hashes a cached image
 * again before every use.
 */
public final class ImageCache {

  /**
   * One cached image.
   *
   * @param sha256 the verified digest
   * @param format the image format
   * @param file where it is
   * @param bytes its size
   */
  public record Entry(String sha256, ImageFormat format, Path file, long bytes) {}

  private final Path dir;
  private final LongSupplier budget;
  private final boolean budgetBeyondHeld;
  private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);

  /**
   * @param dir the cache directory, created when absent
   * @param budget the most bytes the cache may hold, asked again before every insertion (e.g. a
   *     share of {@code MemAvailable})
   */
  public ImageCache(Path dir, LongSupplier budget) throws IOException {
    this(dir, budget, false);
  }

  /**
   * A cache that may hold what it holds now plus {@code headroom}, asked again before every
   * insertion (e.g. half of the free space where it lives).
   */
  public static ImageCache withHeadroom(Path dir, LongSupplier headroom) throws IOException {
    return new ImageCache(dir, headroom, true);
  }

  private ImageCache(Path dir, LongSupplier budget, boolean budgetBeyondHeld) throws IOException {
    this.dir = Files.createDirectories(dir);
    this.budget = budget;
    this.budgetBeyondHeld = budgetBeyondHeld;
    List<Entry> found = new ArrayList<>();
    try (var files = Files.list(dir)) {
      for (Path file : files.toList()) {
        String name = file.getFileName().toString();
        int dot = name.indexOf('.');
        if (dot != 64 || !Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        try {
          ImageFormat format = ImageFormat.parse(name.substring(dot + 1));
          found.add(new Entry(name.substring(0, dot), format, file, Files.size(file)));
        } catch (IllegalArgumentException notOurs) {
          // A file we did not write (unknown format suffix): left alone, not cached.
        }
      }
    }
    found.sort(Comparator.comparing(e -> lastModified(e.file())));
    found.forEach(e -> entries.put(e.sha256(), e));
  }

  private static long lastModified(Path file) {
    try {
      return Files.getLastModifiedTime(file).toMillis();
    } catch (IOException e) {
      return 0;
    }
  }

  /** The cache's directory. */
  public Path directory() {
    return dir;
  }

  /** The cached image with this digest, marked as just used. */
  public synchronized Optional<Entry> get(String sha256) {
    return Optional.ofNullable(entries.get(sha256));
  }

  /**
   * Moves the verified image {@code file} into the cache, evicting least recently used images until
   * it fits. An image larger than the whole budget is not cached: the file stays where it is.
   *
   * @return the entry, or empty when the image did not fit at all
   */
  public synchronized Optional<Entry> put(String sha256, ImageFormat format, Path file)
      throws IOException {
    if (!sha256.matches("[0-9a-f]{64}")) {
      throw new IllegalArgumentException(
          "sha256 \"" + sha256 + "\" is not 64 lowercase hex digits");
    }
    long size = Files.size(file);
    long limit = budget.getAsLong() + (budgetBeyondHeld ? totalBytes() : 0);
    if (size > limit) {
      // Not cached: the file stays where it is, the caller's (a load keeps it beside its root).
      return Optional.empty();
    }
    evictUntil(limit - size, sha256);
    Path target = dir.resolve(sha256 + "." + format.value());
    Files.move(file, target, StandardCopyOption.REPLACE_EXISTING);
    Entry entry = new Entry(sha256, format, target, size);
    entries.put(sha256, entry);
    return Optional.of(entry);
  }

  /** Removes the image with this digest (its file too); false when there was none. */
  public synchronized boolean remove(String sha256) throws IOException {
    Entry entry = entries.remove(sha256);
    if (entry == null) {
      return false;
    }
    Files.deleteIfExists(entry.file());
    return true;
  }

  /** Evicts least recently used images until at most {@code bytes} remain. */
  public synchronized List<Entry> evictUntil(long bytes, String keep) throws IOException {
    List<Entry> evicted = new ArrayList<>();
    var it = entries.entrySet().iterator();
    long total = totalBytes();
    while (total > bytes && it.hasNext()) {
      Map.Entry<String, Entry> oldest = it.next();
      if (oldest.getKey().equals(keep)) {
        continue;
      }
      Files.deleteIfExists(oldest.getValue().file());
      total -= oldest.getValue().bytes();
      evicted.add(oldest.getValue());
      it.remove();
    }
    return List.copyOf(evicted);
  }

  /** The images, least recently used first: what the console's {@code images} command lists. */
  public synchronized List<Entry> list() {
    return List.copyOf(entries.values());
  }

  /** Bytes held. */
  public synchronized long totalBytes() {
    return entries.values().stream().mapToLong(Entry::bytes).sum();
  }
}
