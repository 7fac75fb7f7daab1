package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.agent.fetch.Sha256Engine;
import io.chrootbooter.agent.lazy.HttpBlocks;
import io.chrootbooter.agent.lazy.LazyImage;
import io.chrootbooter.agent.lazy.LazyRoot;
import io.chrootbooter.agent.lazy.NbdServer;
import io.chrootbooter.agent.lazy.ReadProfile;
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
import io.chrootbooter.protocol.Verity;
import java.io.IOException;
import java.net.URI;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Optional;
import java.util.OptionalLong;
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
  private volatile LazySettings lazySettings;

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
    this.lazySettings =
        new LazySettings(
            this.workDir,
            OptionalLong.empty(),
            Optional.of(cache.directory().resolve("read-profiles")),
            Optional.of(Path.of("/dev/kmsg")));
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
   * Where a Lazy image's blocks are kept, and how many.
   *
   * @param blocksDir where the sparse file of fetched blocks goes: the work directory (RAM), or the
   *     cache disk, where an image larger than the RAM fits
   * @param ramBudget the most bytes of blocks held (evicted and fetched again beyond it); empty for
   *     the default, half of {@code MemAvailable} when the load starts, unless the blocks are on a
   *     cache disk, where they are not bounded
   * @param profiles where each digest's read profile is kept; empty for none
   * @param kmsg the kernel's log, read for dm-verity's reports of a corrupted block; empty for none
   * @param onDisk whether {@code blocksDir} is on a cache disk (no budget then)
   */
  public record LazySettings(
      Path blocksDir,
      OptionalLong ramBudget,
      Optional<Path> profiles,
      Optional<Path> kmsg,
      boolean onDisk) {
    /** Blocks in RAM. */
    public LazySettings(
        Path blocksDir, OptionalLong ramBudget, Optional<Path> profiles, Optional<Path> kmsg) {
      this(blocksDir, ramBudget, profiles, kmsg, false);
    }
  }

  /** Sets where a Lazy image's blocks are kept; blocks files an earlier agent left are removed. */
  public ImageLoader lazy(LazySettings settings) throws IOException {
    Files.createDirectories(settings.blocksDir());
    try (DirectoryStream<Path> leftovers =
        Files.newDirectoryStream(settings.blocksDir(), "lazy-*.blocks")) {
      for (Path leftover : leftovers) {
        Files.deleteIfExists(leftover);
      }
    }
    this.lazySettings = settings;
    return this;
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
      KernelModules kernelModules,
      Optional<Verity> lazy) {

    /** A request downloaded whole. */
    public Request(
        String url,
        Optional<String> sha256,
        ImageFormat format,
        Overlay overlay,
        KernelModules kernelModules) {
      this(url, sha256, format, overlay, kernelModules, Optional.empty());
    }

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
   * @param lazy the running Lazy image (its prefetch and dm-verity watch), when it is one
   */
  public record Prepared(
      Path root,
      Teardown.Step release,
      String sha256,
      boolean cached,
      Optional<String> note,
      Optional<LazyImage> lazy) {

    /** A root that is not a Lazy image's. */
    public Prepared(
        Path root, Teardown.Step release, String sha256, boolean cached, Optional<String> note) {
      this(root, release, sha256, cached, note, Optional.empty());
    }
  }

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
            : request.lazy().isPresent()
                    && request.sha256().flatMap(cache::get).isEmpty()
                    && request.format() == ImageFormat.SQUASHFS
                ? prepareLazy(request, options, phases, dir)
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
        prepared.note(),
        prepared.lazy());
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

  /**
   * {@code delivery: Lazy}: the hash tree is downloaded, the image attached as a block device whose
   * blocks come from the operator on first read, checked by dm-verity against the desired state's
   * root hash, mounted with its overlay; the remaining blocks are prefetched in the background.
   * Where the kernel or the bootstrap lacks what this needs, the image is downloaded whole and the
   * load's note says why.
   */
  private Prepared prepareLazy(
      Request request, FetchOptions options, Consumer<MachinePhase> phases, Path dir)
      throws IOException {
    Verity verity = request.lazy().orElseThrow();
    Optional<String> missing = LazyRoot.missing();
    if (missing.isPresent()) {
      String note = "delivery Lazy is not available here (" + missing.get() + "); downloaded whole";
      LOG.warn(note);
      Prepared whole = prepareSquashfs(request, options, phases, dir);
      return new Prepared(
          whole.root(), whole.release(), whole.sha256(), whole.cached(), Optional.of(note));
    }
    if (verity.hashTreeUrl() == null || verity.dataBlocks() == null || verity.dataBlocks() < 2) {
      throw new IOException("the desired state's verity " + verity + " names no hash tree");
    }
    phases.accept(MachinePhase.Downloading);
    long size = verity.dataBlocks() * (long) Verity.BLOCK_SIZE;
    Deque<Teardown.Step> undo = new ArrayDeque<>();
    undo.push(() -> deleteEmptyTree(dir));
    boolean ok = false;
    try {
      Path tree = dir.resolve("hash-tree");
      undo.push(() -> Files.deleteIfExists(tree));
      if (verity.hashTreeSize() == null || verity.hashTreeSize() > size / 64 + 8192) {
        throw new IOException(
            "the desired state's hash tree size "
                + verity.hashTreeSize()
                + " does not fit an image of "
                + verity.dataBlocks()
                + " blocks");
      }
      long want = verity.hashTreeSize();
      try (ImageStream in = ImageSources.open(verity.hashTreeUrl(), options);
          var out = Files.newOutputStream(tree, StandardOpenOption.CREATE_NEW)) {
        // At most one byte more than announced: enough to tell a longer tree, never more.
        byte[] bytes = in.readNBytes(Math.toIntExact(want + 1));
        if (bytes.length != want) {
          throw new IOException(
              "the hash tree at " + verity.hashTreeUrl() + " is not " + want + " bytes long");
        }
        out.write(bytes);
      }
      URI url = URI.create(request.url());
      // A read of a block must fail (EIO in the target) well before the kernel's NBD timeout,
      // which would end the connection and with it every later read.
      FetchOptions blockOptions =
          new FetchOptions(
              LAZY_RETRY,
              LAZY_STALL,
              options.cancel(),
              options.progress(),
              options.progressIntervalMillis(),
              options.tls());
      long length = HttpBlocks.length(url, blockOptions);
      LazySettings settings = lazySettings;
      long budget = settings.onDisk() ? Long.MAX_VALUE : ramBudget(settings);
      HttpBlocks blocks =
          new HttpBlocks(
              url,
              request.sha256().orElse(null),
              size,
              length,
              settings.blocksDir().resolve("lazy-" + SEQUENCE.incrementAndGet() + ".blocks"),
              blockOptions,
              budget);
      undo.push(blocks::close);
      if (blocks.budget() != Long.MAX_VALUE) {
        LOG.infof(
            "image %s (%d bytes) is larger than the block cache's budget of %d bytes: pieces"
                + " beyond it are evicted and fetched again when read",
            request.sha256().orElse(request.url()), size, blocks.budget());
      }
      NbdServer server = NbdServer.start(dir.resolve("nbd.sock"), "image", blocks, 8);
      undo.push(server::close);
      phases.accept(MachinePhase.Mounting);
      LazyRoot lazy =
          LazyRoot.attach(
              server,
              "image",
              size,
              tree,
              verity,
              "cb-lazy-" + SEQUENCE.incrementAndGet(),
              dir.resolve("lower"),
              LAZY_READ_TIMEOUT);
      undo.push(lazy::close);
      Path root = dir.resolve("root");
      if (request.overlay() instanceof Overlay.None) {
        root = lazy.mountPoint();
      } else {
        Path rw = Files.createDirectories(dir.resolve("rw"));
        if (request.overlay() instanceof Overlay.BlockDevice device) {
          Mounts.mountDetect("rw", device.device().toString(), rw);
        } else {
          Mounts.mount("tmpfs", "mode=0755", "cb-upper", rw);
        }
        undo.push(() -> Mounts.umount(rw));
        Path upper = Files.createDirectories(rw.resolve("upper"));
        Path work = Files.createDirectories(rw.resolve("work"));
        Files.createDirectories(root);
        Mounts.mount(
            "overlay",
            "lowerdir=" + lazy.mountPoint() + ",upperdir=" + upper + ",workdir=" + work,
            "cb-root",
            root);
        Path mounted = root;
        undo.push(() -> Mounts.umount(mounted));
      }
      LazyImage image =
          LazyImage.start(
              request.sha256().orElse(request.url()),
              blocks,
              lazy,
              request
                  .sha256()
                  .flatMap(sha -> settings.profiles().map(d -> ReadProfile.file(d, sha))),
              settings.kmsg());
      undo.push(image::close);
      ok = true;
      return new Prepared(
          root,
          () -> release(undo),
          request.sha256().orElse(""),
          false,
          Optional.empty(),
          Optional.of(image));
    } finally {
      if (!ok) {
        release(undo);
      }
    }
  }

  /** How long the kernel waits for one block before the read fails (nbd-client -timeout). */
  public static final java.time.Duration LAZY_READ_TIMEOUT = java.time.Duration.ofSeconds(60);

  /**
   * The attempts at one piece of a Lazy image: 4, 0.25 s doubling, each given 10 s without a byte;
   * at most about 42 s in all, within {@link #LAZY_READ_TIMEOUT}.
   */
  static final io.chrootbooter.protocol.Backoff LAZY_RETRY =
      new io.chrootbooter.protocol.Backoff(
          4, java.time.Duration.ofMillis(250), java.time.Duration.ofSeconds(2));

  /** How long a piece's connection may deliver nothing before the attempt counts as failed. */
  static final java.time.Duration LAZY_STALL = java.time.Duration.ofSeconds(10);

  /** The block cache's budget in RAM: the setting, else half of what is available now. */
  private static long ramBudget(LazySettings settings) {
    long budget =
        settings.ramBudget().isPresent()
            ? settings.ramBudget().getAsLong()
            : memAvailable().orElse(Long.MAX_VALUE) / 2;
    return Math.max(HttpBlocks.MIN_BUDGET, budget);
  }

  private static OptionalLong memAvailable() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
        if (line.startsWith("MemAvailable:")) {
          return OptionalLong.of(Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024);
        }
      }
    } catch (IOException | NumberFormatException e) {
      LOG.debugf("/proc/meminfo: %s", e.getMessage());
    }
    return OptionalLong.empty();
  }

  /** Runs every step, the last pushed first; the first failure is thrown after all ran. */
  private static void release(Deque<Teardown.Step> undo) throws IOException {
    IOException first = null;
    while (!undo.isEmpty()) {
      try {
        undo.pop().release();
      } catch (IOException e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
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
