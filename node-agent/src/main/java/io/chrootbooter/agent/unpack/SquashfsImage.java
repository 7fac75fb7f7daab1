package io.chrootbooter.agent.unpack;

import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.agent.fetch.ReadAheadInputStream;
import io.chrootbooter.agent.fetch.SpaceCheck;
import io.chrootbooter.protocol.ImageFormat;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Optional;

/**
 * A squashfs image: written to a file on tmpfs or the cache disk while its SHA-256 is computed,
 * verified <em>before</em> anything is mounted, then loop-mounted read-only with the chosen {@link
 * Overlay} on top.
 */
public final class SquashfsImage {
  private static final int CHUNK = 1024 * 1024;

  private SquashfsImage() {}

  /**
   * Downloads {@code image} to {@code file} (which must not exist) and verifies it; on any failure
   * the file is removed.
   *
   * @return the image's SHA-256, lowercase hex
   */
  public static String download(ImageStream image, Optional<String> sha256, Path file)
      throws IOException {
    Path dir = file.toAbsolutePath().getParent();
    SpaceCheck.requireRoom(image.contentLength(), dir);
    boolean ok = false;
    InputStream raw = new ReadAheadInputStream(image, "cb-download", CHUNK, 16);
    try (FileChannel out =
        FileChannel.open(
            file,
            StandardOpenOption.CREATE_NEW,
            StandardOpenOption.WRITE,
            LinkOption.NOFOLLOW_LINKS)) {
      BufferedInputStream head = new BufferedInputStream(raw, CHUNK);
      ImageFormat found = ImageUnpacker.sniff(head, image.source());
      if (found != ImageFormat.SQUASHFS) {
        throw new IOException(
            image.source() + " is a " + found + " image; the declared format is squashfs");
      }
      byte[] buffer = new byte[CHUNK];
      int n;
      while ((n = head.read(buffer)) > 0) {
        ByteBuffer b = ByteBuffer.wrap(buffer, 0, n);
        while (b.hasRemaining()) {
          out.write(b);
        }
      }
      String digest = sha256.isPresent() ? image.verify(sha256.get()) : image.sha256();
      ok = true;
      return digest;
    } finally {
      try {
        raw.close();
      } finally {
        if (!ok) {
          Files.deleteIfExists(file);
        }
      }
    }
  }

  /**
   * Mounts the verified squashfs {@code file} at {@code target}. {@code work} is an empty directory
   * for the lower and upper mounts. On failure, whatever was mounted is unmounted.
   */
  public static Mounted mount(Path file, Path work, Path target, Overlay overlay)
      throws IOException {
    byte[] magic = new byte[4];
    try (InputStream in = Files.newInputStream(file)) {
      int n = in.readNBytes(magic, 0, 4);
      if (ImageFormat.sniff(magic, n).orElse(null) != ImageFormat.SQUASHFS) {
        throw new IOException(
            file + " is not a squashfs image (" + ImageFormat.describe(magic, n) + ")");
      }
    }
    Mounted mounted = new Mounted(target);
    boolean ok = false;
    try {
      Files.createDirectories(target);
      if (overlay instanceof Overlay.None) {
        mounted.mount("squashfs", "loop,ro", file.toString(), target);
      } else {
        Path lower = Files.createDirectories(work.resolve("lower"));
        Path rw = Files.createDirectories(work.resolve("rw"));
        mounted.mount("squashfs", "loop,ro", file.toString(), lower);
        if (overlay instanceof Overlay.BlockDevice device) {
          Mounts.mountDetect("rw", device.device().toString(), rw);
          mounted.owned(rw);
        } else {
          mounted.mount("tmpfs", "mode=0755", "cb-upper", rw);
        }
        Path upper = Files.createDirectories(rw.resolve("upper"));
        Path workdir = Files.createDirectories(rw.resolve("work"));
        mounted.mount(
            "overlay",
            "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + workdir,
            "cb-root",
            target);
      }
      ok = true;
      return mounted;
    } finally {
      if (!ok) {
        mounted.close();
      }
    }
  }

  /** The mounts of one root; {@link #close()} unmounts them in reverse order, on every path. */
  public static final class Mounted implements AutoCloseable {
    private final Path root;
    private final Deque<Path> mounts = new ArrayDeque<>();

    private Mounted(Path root) {
      this.root = root;
    }

    /** The root to pivot into. */
    public Path root() {
      return root;
    }

    /** The mount points, the last mounted first. */
    public List<Path> mountPoints() {
      return List.copyOf(mounts);
    }

    private void mount(String type, String options, String source, Path target) throws IOException {
      Mounts.mount(type, options, source, target);
      owned(target);
    }

    private void owned(Path target) {
      mounts.push(target);
    }

    /** Unmounts everything; the first failure is thrown after all were tried. */
    @Override
    public void close() throws IOException {
      IOException first = null;
      while (!mounts.isEmpty()) {
        Path point = mounts.pop();
        try {
          Mounts.umount(point);
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
  }
}
