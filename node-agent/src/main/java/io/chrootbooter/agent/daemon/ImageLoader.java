package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.agent.fetch.Sha256Engine;
import io.chrootbooter.agent.modules.ModulesImage;
import io.chrootbooter.agent.pivot.Teardown;
import io.chrootbooter.agent.sys.LinuxSyscalls;
import io.chrootbooter.agent.unpack.ImageCache;
import io.chrootbooter.agent.unpack.ImageUnpacker;
import io.chrootbooter.agent.unpack.Mounts;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.agent.unpack.SquashfsImage;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.KernelModules;
import io.chrootbooter.protocol.MachinePhase;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import javax.net.ssl.SSLSocketFactory;
import org.jboss.logging.Logger;

/**
 * Turns "a URL, a digest, a format" into a root file system ready to enter: a squashfs image is
 * downloaded into the {@link ImageCache} (RAM or the cache disk), verified, then loop-mounted with
 * its overlay; a tarball is extracted while it downloads into a fresh tmpfs, which the return
 * unmounts (so its RAM is freed at once). A cached squashfs image is not downloaded again, but it
 * is hashed again before every use: one whose content no longer matches its name is removed and
 * downloaded afresh, and the load's {@link Prepared#note} says so.
 */
public final class ImageLoader implements Images {
  private static final Logger LOG = Logger.getLogger(ImageLoader.class);
  private static final AtomicLong SEQUENCE = new AtomicLong();

  private final Path workDir;
  private final ImageCache cache;
  private final Optional<ModulesImage> modules;
  private final Optional<SSLSocketFactory> tls;

  /**
   * A loader whose bootstrap has no modules image and whose {@code https} downloads trust the JDK's
   * default trust store.
   */
  public ImageLoader(Path workDir, ImageCache cache) throws IOException {
    this(workDir, cache, Optional.empty(), Optional.empty());
  }

  /**
   * @param workDir where roots, overlays and partial downloads live (a tmpfs in the bootstrap)
   * @param cache verified squashfs images by digest
   * @param modules the bootstrap kernel's modules image, bound into roots that ask for it
   * @param tls the sockets of {@code https} downloads, the modules image's too (the CA pin of
   *     {@code cb.ca}), when set
   */
  public ImageLoader(
      Path workDir,
      ImageCache cache,
      Optional<ModulesImage> modules,
      Optional<SSLSocketFactory> tls)
      throws IOException {
    this.workDir = Files.createDirectories(workDir);
    this.cache = cache;
    this.modules = modules;
    this.tls = tls;
    // An agent that died mid-download (and was respawned by init) left its partial files here;
    // their names would collide with this agent's first downloads.
    try (DirectoryStream<Path> leftovers =
        Files.newDirectoryStream(workDir, "download-*.partial")) {
      for (Path leftover : leftovers) {
        Files.deleteIfExists(leftover);
      }
    }
  }

  /**
   * What to load.
   *
   * @param sha256 the expected digest; empty only for a console {@code load} without one
   */
  public record Request(
      String url,
      Optional<String> sha256,
      ImageFormat format,
      Overlay overlay,
      KernelModules kernelModules) {

    /** A request with the default kernel modules. */
    public Request(String url, Optional<String> sha256, ImageFormat format, Overlay overlay) {
      this(url, sha256, format, overlay, KernelModules.DEFAULT);
    }
  }

  /**
   * A root ready to enter.
   *
   * @param release unmounts and frees everything {@link #prepare} made; run once the target is gone
   * @param cached whether the image came from the cache (no download)
   * @param note what the user should know about this load (a cached image found altered)
   */
  public record Prepared(
      Path root, Teardown.Step release, String sha256, boolean cached, Optional<String> note) {}

  /** The cache, for the console's {@code images}. */
  public ImageCache cache() {
    return cache;
  }

  /**
   * Downloads, verifies and mounts. On failure nothing stays mounted or half-written.
   *
   * @param phases told {@link MachinePhase#Downloading}, {@link MachinePhase#Verifying}, {@link
   *     MachinePhase#Mounting}
   */
  public Prepared prepare(Request request, FetchOptions options, Consumer<MachinePhase> phases)
      throws IOException {
    Path dir = Files.createDirectories(workDir.resolve("root-" + SEQUENCE.incrementAndGet()));
    options = tls.isPresent() ? options.withTls(tls) : options;
    Prepared prepared =
        request.format().isTar()
            ? prepareTar(request, options, phases, dir)
            : prepareSquashfs(request, options, phases, dir);
    return withModules(prepared, request.kernelModules(), options);
  }

  /**
   * Binds the bootstrap kernel's modules and firmware into the prepared root when {@code mode} asks
   * for them; on failure the root is released too, so nothing stays mounted.
   */
  private Prepared withModules(Prepared prepared, KernelModules mode, FetchOptions options)
      throws IOException {
    if (mode != KernelModules.Bootstrap) {
      return prepared;
    }
    if (modules.isEmpty()) {
      LOG.info("kernel modules: this bootstrap has no modules image (or no source for it)");
      return prepared;
    }
    ModulesImage.Bound bound;
    try {
      bound = modules.get().bindInto(prepared.root(), mode, options);
    } catch (IOException | RuntimeException e) {
      try {
        prepared.release().release();
      } catch (IOException again) {
        e.addSuppressed(again);
      }
      throw e;
    }
    LOG.info(bound.summary());
    return new Prepared(
        prepared.root(),
        () -> {
          try {
            bound.release().release();
          } finally {
            prepared.release().release();
          }
        },
        prepared.sha256(),
        prepared.cached(),
        prepared.note());
  }

  private Prepared prepareSquashfs(
      Request request, FetchOptions options, Consumer<MachinePhase> phases, Path dir)
      throws IOException {
    Optional<ImageCache.Entry> hit = request.sha256().flatMap(cache::get);
    String note = null;
    if (hit.isPresent()) {
      phases.accept(MachinePhase.Verifying);
      // Its name is no proof: whatever else mounts the cache disk may have changed it.
      long t0 = System.nanoTime();
      String actual = Sha256Engine.sha256Of(hit.get().file());
      long nanos = System.nanoTime() - t0;
      long bytes = Files.size(hit.get().file());
      // The cost of this check on every boot from the cache (bench/switch.sh reads this line).
      LOG.infof(
          "cached image %s (%d bytes) hashed again in %.1f ms (%.0f MB/s)",
          hit.get().sha256().substring(0, 12),
          bytes,
          nanos / 1e6,
          bytes / 1e6 / Math.max(nanos / 1e9, 1e-9));
      if (!actual.equals(hit.get().sha256())) {
        note =
            "cached image "
                + hit.get().sha256()
                + " was altered on the cache disk (its content hashes to "
                + actual
                + "); downloading again";
        LOG.warn(note);
        cache.remove(hit.get().sha256());
        hit = Optional.empty();
      }
    }
    String digest;
    Path file;
    if (hit.isPresent()) {
      digest = hit.get().sha256();
      file = hit.get().file();
    } else {
      phases.accept(MachinePhase.Downloading);
      Path partial = workDir.resolve("download-" + SEQUENCE.incrementAndGet() + ".partial");
      try (ImageStream image = ImageSources.open(request.url(), options)) {
        digest = SquashfsImage.download(image, request.sha256(), partial);
      }
      phases.accept(MachinePhase.Verifying);
      Optional<ImageCache.Entry> entry = cache.put(digest, ImageFormat.SQUASHFS, partial);
      if (entry.isPresent()) {
        file = entry.get().file();
      } else {
        // Larger than the cache's budget: it stays beside the root and goes with it.
        file = dir.resolve("image.squashfs");
        Files.move(partial, file);
      }
    }
    phases.accept(MachinePhase.Mounting);
    try {
      SquashfsImage.Mounted mounted =
          SquashfsImage.mount(file, dir.resolve("work"), dir.resolve("root"), request.overlay());
      Path uncached = file.startsWith(dir) ? file : null;
      return new Prepared(
          mounted.root(),
          () -> {
            try {
              mounted.close();
            } finally {
              if (uncached != null) {
                Files.deleteIfExists(uncached);
              }
              deleteEmptyTree(dir);
            }
          },
          digest,
          hit.isPresent(),
          Optional.ofNullable(note));
    } catch (IOException | RuntimeException e) {
      deleteEmptyTree(dir);
      throw e;
    }
  }

  private Prepared prepareTar(
      Request request, FetchOptions options, Consumer<MachinePhase> phases, Path dir)
      throws IOException {
    Path root = Files.createDirectories(dir.resolve("root"));
    // A tmpfs of its own: extraction fills it, the return's umount frees the RAM at once.
    Mounts.mount("tmpfs", "mode=0755", "cb-tar-root", root);
    boolean ok = false;
    try {
      phases.accept(MachinePhase.Downloading);
      ImageUnpacker.Result result;
      try (ImageStream image = ImageSources.open(request.url(), options)) {
        result =
            new ImageUnpacker(new LinuxSyscalls())
                .unpack(image, request.format(), request.sha256(), root);
      }
      phases.accept(MachinePhase.Mounting);
      ok = true;
      return new Prepared(
          root,
          () -> {
            try {
              Mounts.umount(root);
            } finally {
              deleteEmptyTree(dir);
            }
          },
          result.sha256(),
          false,
          Optional.empty());
    } finally {
      if (!ok) {
        try {
          Mounts.umount(root);
        } finally {
          deleteEmptyTree(dir);
        }
      }
    }
  }

  /** Removes {@code dir} and the empty directories in it; a file left in it is a leak to see. */
  private static void deleteEmptyTree(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return;
    }
    try (var walk = Files.walk(dir)) {
      for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
        if (Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
          try (var entries = Files.list(p)) {
            if (entries.findAny().isPresent()) {
              continue;
            }
          }
        }
        Files.deleteIfExists(p);
      }
    }
  }
}
