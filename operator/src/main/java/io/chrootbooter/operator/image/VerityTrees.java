package io.chrootbooter.operator.image;

import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.jboss.logging.Logger;

/**
 * The dm-verity hash trees of the stored squashfs images: computed from the stored file, which
 * reached the store only verified ({@link ImageStore#commit}), so a root hash is only ever derived
 * from bytes whose SHA-256 was checked. A download computes its image's tree before it reports the
 * image Ready ({@link Transfers}); an image found in the store without one (stored by an operator
 * that made none, or whose tree was removed) gets it on a background thread. The headers read are
 * kept in memory: a tree never changes under its digest.
 */
@ApplicationScoped
public class VerityTrees {
  private static final Logger LOG = Logger.getLogger(VerityTrees.class);

  private final ImageStore store;
  private final Map<String, VerityTree.Header> known = new ConcurrentHashMap<>();
  private final Map<String, String> failed = new ConcurrentHashMap<>();
  private final Set<String> running = ConcurrentHashMap.newKeySet();
  private final ExecutorService worker =
      Executors.newSingleThreadExecutor(
          r -> {
            Thread t = new Thread(r, "verity-trees");
            t.setDaemon(true);
            return t;
          });

  VerityTrees(ImageStore store) {
    this.store = store;
  }

  void stop(@Observes ShutdownEvent event) {
    worker.shutdownNow();
  }

  /** The tree of the stored image {@code sha256}, computed now unless it exists. */
  public VerityTree.Header ensure(String sha256) throws IOException {
    Optional<VerityTree.Header> found = find(sha256);
    if (found.isPresent()) {
      return found.get();
    }
    Path image =
        store
            .find(sha256)
            .orElseThrow(() -> new IOException("no stored image " + sha256 + " to hash"));
    Path partial = store.newPartial(sha256 + ".verity-" + System.nanoTime());
    try {
      long started = System.nanoTime();
      VerityTree.create(image, VerityTree.newSalt(), partial);
      Path tree = store.commitTree(partial, sha256);
      VerityTree.Header header = VerityTree.read(tree);
      known.put(sha256, header);
      failed.remove(sha256);
      LOG.infof(
          "Computed the dm-verity hash tree of image %s in %d ms: root hash %s",
          sha256, (System.nanoTime() - started) / 1_000_000, header.rootHashHex());
      return header;
    } finally {
      Files.deleteIfExists(partial);
    }
  }

  /** The tree of the stored image {@code sha256}, if it has been computed. */
  public Optional<VerityTree.Header> find(String sha256) {
    Optional<Path> tree = store.findTree(sha256);
    if (tree.isEmpty()) {
      known.remove(sha256);
      return Optional.empty();
    }
    VerityTree.Header header = known.get(sha256);
    if (header != null) {
      return Optional.of(header);
    }
    try {
      header = VerityTree.read(tree.get());
      known.put(sha256, header);
      return Optional.of(header);
    } catch (IOException e) {
      LOG.warnf("The stored hash tree of %s is unusable (%s); it is computed again", sha256, e);
      try {
        Files.deleteIfExists(tree.get());
      } catch (IOException gone) {
        LOG.debugf("Could not remove %s: %s", tree.get(), gone);
      }
      return Optional.empty();
    }
  }

  /** Whether the tree of {@code sha256} is being computed in the background. */
  public boolean computing(String sha256) {
    return running.contains(sha256);
  }

  /**
   * The tree of the stored image {@code sha256}; when there is none yet, it is computed on a
   * background thread (once; a failure is logged and not retried until the operator restarts).
   */
  public Optional<VerityTree.Header> findOrStart(String sha256) {
    Optional<VerityTree.Header> found = find(sha256);
    if (found.isPresent() || failed.containsKey(sha256) || !running.add(sha256)) {
      return found;
    }
    worker.submit(
        () -> {
          try {
            ensure(sha256);
          } catch (IOException | RuntimeException e) {
            failed.put(sha256, String.valueOf(e.getMessage()));
            LOG.warnf("Could not compute the hash tree of image %s: %s", sha256, e);
          } finally {
            running.remove(sha256);
          }
        });
    return Optional.empty();
  }
}
