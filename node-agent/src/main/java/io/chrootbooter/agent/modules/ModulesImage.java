package io.chrootbooter.agent.modules;

import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.agent.fetch.Sha256Engine;
import io.chrootbooter.agent.pivot.Teardown;
import io.chrootbooter.agent.unpack.Mounts;
import io.chrootbooter.agent.unpack.SquashfsImage;
import io.chrootbooter.protocol.KernelModules;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * The bootstrap's modules image: fetched once, verified, mounted read-only, and bound into targets.
 *
 * <p>In a target root, with {@link KernelModules#Bootstrap}:
 *
 * <ul>
 *   <li>{@code /lib/modules/<running version>} is the image's own when it has one (with any entry
 *       in it: an image built for this very kernel), else the bootstrap's tree, bound read-only;
 *   <li>{@code /lib/firmware} is an overlay with the image's own firmware on top of the bootstrap's
 *       (the image's files win), or the bootstrap's alone, read-only either way.
 * </ul>
 *
 * Paths are resolved inside the root ({@link RootPaths}): a merged-{@code /usr} image's {@code
 * /lib} is a symlink to {@code usr/lib}, and a symlink never leads out of the root. With {@link
 * KernelModules#Image} or {@link KernelModules#None} nothing is bound.
 */
public final class ModulesImage {
  private static final Logger LOG = Logger.getLogger(ModulesImage.class);
  private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
  private static final Pattern RELEASE = Pattern.compile("[A-Za-z0-9._+-]{1,64}");

  /** What fetches the image's bytes. */
  @FunctionalInterface
  public interface Source {
    ImageStream open(FetchOptions options) throws IOException;
  }

  private final String sha256;
  private final String release;
  private final Source source;
  private final Path store;
  private final Path mountPoint;
  private boolean mounted;

  /**
   * @param sha256 the digest the initramfs names (64 lower-case hex digits)
   * @param release the running kernel's release ({@code uname -r})
   * @param source where the bytes come from
   * @param store the file the verified image is kept in (tmpfs or the cache disk)
   * @param mountPoint where it is mounted read-only, once for all targets
   */
  public ModulesImage(String sha256, String release, Source source, Path store, Path mountPoint) {
    if (!SHA256.matcher(sha256).matches()) {
      throw new IllegalArgumentException(
          "modules image digest \"" + sha256 + "\" is not 64 lower-case hex digits");
    }
    if (!RELEASE.matcher(release).matches()) {
      throw new IllegalArgumentException("kernel release \"" + release + "\" is not a release");
    }
    this.sha256 = sha256;
    this.release = release;
    this.source = source;
    this.store = store;
    this.mountPoint = mountPoint;
  }

  /**
   * The digest file of the initramfs ({@code /etc/chrootbooter/modules.sha256}), if the bootstrap
   * was built with a modules image.
   */
  public static Optional<String> digestIn(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      return Optional.empty();
    }
    String digest = Files.readString(file, StandardCharsets.US_ASCII).trim();
    if (!SHA256.matcher(digest).matches()) {
      throw new IOException(file + " does not hold a SHA-256");
    }
    return Optional.of(digest);
  }

  /** The running kernel's release, as {@code uname -r} prints it. */
  public static String runningRelease() throws IOException {
    return Files.readString(Path.of("/proc/sys/kernel/osrelease"), StandardCharsets.US_ASCII)
        .trim();
  }

  /**
   * Fetches, verifies and mounts the image unless that was done before; later calls return at once.
   * A digest mismatch or a broken download leaves nothing behind and fails with the reason.
   *
   * @return whether it had to be fetched (false: it was already there)
   */
  public synchronized boolean ensureMounted(FetchOptions options) throws IOException {
    if (mounted) {
      return false;
    }
    boolean fetched = false;
    long started = System.nanoTime();
    if (Files.isRegularFile(store, LinkOption.NOFOLLOW_LINKS)
        && !sha256.equals(Sha256Engine.sha256Of(store))) {
      // On a cache disk a target can reach: checked again on every boot (≈ 0.1 s at line rate).
      LOG.warnf("modules image %s was altered where it is kept; fetching it again", store);
      Files.delete(store);
    }
    if (!Files.isRegularFile(store, LinkOption.NOFOLLOW_LINKS)) {
      Path partial = store.resolveSibling(store.getFileName() + ".partial");
      Files.deleteIfExists(partial);
      Files.createDirectories(store.toAbsolutePath().getParent());
      try (ImageStream image = source.open(options)) {
        SquashfsImage.download(image, Optional.of(sha256), partial);
      } catch (IOException e) {
        throw new IOException("modules image: " + e.getMessage(), e);
      }
      Files.move(partial, store);
      fetched = true;
    }
    Files.createDirectories(mountPoint);
    // An agent that init restarted left its mount here: unmounted (its loop device with it)
    // rather than stacked over, since the file was just checked again.
    List<Path> stale = new ArrayList<>(Mounts.mountsBelow(mountPoint));
    Collections.reverse(stale);
    for (Path point : stale) {
      Mounts.umount(point);
    }
    Mounts.mount("squashfs", "loop,ro", store.toString(), mountPoint);
    mounted = true;
    // "fetched and verified (88.9 MB in 2.41 s)": bench/lab.sh reads the time from the console.
    LOG.infof(
        "modules image %s %s (%.1f MB in %.2f s), mounted at %s",
        sha256.substring(0, 12),
        fetched ? "fetched and verified" : "checked again",
        Files.size(store) / 1e6,
        (System.nanoTime() - started) / 1e9,
        mountPoint);
    return fetched;
  }

  /** Unmounts the image (the file stays for the next target). */
  public synchronized void unmount() throws IOException {
    if (mounted) {
      Mounts.umount(mountPoint);
      mounted = false;
    }
  }

  /**
   * Binds the modules and firmware into {@code root} as {@code mode} asks, the image mounted first
   * ({@link #ensureMounted}). The returned step unmounts what was bound, in reverse order; run it
   * before the root itself is unmounted.
   *
   * @return what was done, for the log and the status, and the step that undoes it
   */
  public Bound bindInto(Path root, KernelModules mode, FetchOptions options) throws IOException {
    if (mode != KernelModules.Bootstrap) {
      return new Bound(
          List.of(), "kernel modules: " + mode.name().toLowerCase(Locale.ROOT), () -> {});
    }
    ensureMounted(options);
    List<Path> mounts = new ArrayList<>();
    List<String> said = new ArrayList<>();
    try {
      String modules = "lib/modules/" + release;
      if (RootPaths.isNonEmptyDirectory(root, modules)) {
        said.add("the image's own /lib/modules/" + release);
      } else {
        Path dir = RootPaths.directory(root, modules);
        Mounts.bindReadOnly(mountPoint.resolve(modules), dir);
        mounts.add(dir);
        said.add("/lib/modules/" + release + " of the bootstrap");
      }
      Path ours = mountPoint.resolve("lib/firmware");
      boolean own = RootPaths.isNonEmptyDirectory(root, "lib/firmware");
      Path firmware = RootPaths.directory(root, "lib/firmware");
      if (own) {
        // The image's own firmware as the upper lower layer: its files win.
        Mounts.mount("overlay", "ro,lowerdir=" + firmware + ":" + ours, "cb-firmware", firmware);
        said.add("/lib/firmware over the bootstrap's");
      } else {
        Mounts.bindReadOnly(ours, firmware);
        said.add("/lib/firmware of the bootstrap");
      }
      mounts.add(firmware);
    } catch (IOException | RuntimeException e) {
      unmountAll(mounts);
      throw new IOException("kernel modules: " + e.getMessage(), e);
    }
    return new Bound(
        List.copyOf(mounts),
        "kernel modules: " + String.join(", ", said),
        () -> unmountAll(mounts));
  }

  private static void unmountAll(List<Path> mounts) throws IOException {
    IOException first = null;
    for (int i = mounts.size() - 1; i >= 0; i--) {
      try {
        Mounts.umount(mounts.get(i));
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

  /**
   * What {@link #bindInto} did.
   *
   * @param mounts the mount points it made in the root, in order
   * @param summary one line for the log
   * @param release unmounts them
   */
  public record Bound(List<Path> mounts, String summary, Teardown.Step release) {}
}
