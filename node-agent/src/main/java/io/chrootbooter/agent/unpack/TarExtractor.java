package io.chrootbooter.agent.unpack;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * Extracts a tar stream into a root directory, refusing any entry that would touch anything outside
 * it, and keeping everything a root filesystem needs: numeric owners, all mode bits, device nodes,
 * FIFOs, hard and symbolic links, mtimes, xattrs, long names and sparse files.
 *
 * <p>Safety rules (the tree under {@code root} is written only by this extractor, so checking it
 * with lstat is enough; there is no concurrent writer to race):
 *
 * <ul>
 *   <li>names and hard-link targets pass {@link EntryPath} (relative, no {@code ..});
 *   <li>no component before the last may be a symlink, so nothing is ever resolved through a link:
 *       this refuses symlink escapes, symlink chains and a directory replaced by a symlink followed
 *       by entries below it (the policy of bsdtar(1) {@code ARCHIVE_EXTRACT_SECURE_SYMLINKS});
 *   <li>the last component is replaced, never followed: files open with {@code O_NOFOLLOW | O_CREAT
 *       | O_EXCL} and all metadata calls act on the link itself;
 *   <li>a non-empty directory is never replaced by another type.
 * </ul>
 */
public final class TarExtractor {

  private static final Logger LOG = Logger.getLogger(TarExtractor.class);
  private static final int BUFFER = 256 * 1024;
  private static final int S_IFCHR = 0020000;
  private static final int S_IFBLK = 0060000;
  private static final int S_IFIFO = 0010000;

  private final Syscalls syscalls;

  public TarExtractor(Syscalls syscalls) {
    this.syscalls = syscalls;
  }

  /** What an extraction wrote. */
  public record Stats(long entries, long bytes) {}

  /** A directory whose mtime is set after its children are written. */
  private record DirTimes(Path path, Instant atime, Instant mtime) {}

  /**
   * Extracts {@code tar} (an uncompressed tar stream) into the existing directory {@code root}. On
   * failure the tree is left as it is; the caller discards it.
   */
  public Stats extract(InputStream tar, Path root) throws IOException {
    TarReader in =
        new TarReader(
            tar, (entry, message) -> LOG.warnf("archive entry \"%s\": %s", entry, message));
    Set<String> knownDirs = new HashSet<>();
    List<DirTimes> dirTimes = new ArrayList<>();
    byte[] buffer = new byte[BUFFER];
    long entries = 0;
    long bytes = 0;
    while (true) {
      TarReader.Entry entry = in.next();
      if (entry == null) {
        break;
      }
      entries++;
      String name = entry.name();
      EntryPath entryPath = EntryPath.parse(name, name);
      Path target = root;
      if (!entryPath.isRoot()) {
        Path parent = checkedParent(root, entryPath, name, knownDirs, true);
        target = parent.resolve(entryPath.components().get(entryPath.components().size() - 1));
        clearFor(entry, target, name, knownDirs, entryPath.toString());
      } else if (entry.type() != TarReader.Type.DIRECTORY) {
        throw new HostileArchiveException(name, "the root entry is not a directory");
      }

      switch (entry.type()) {
        case DIRECTORY -> {
          if (!entryPath.isRoot() && !Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS)) {
            Files.createDirectory(target);
          }
          knownDirs.add(entryPath.toString());
        }
        case SYMLINK -> {
          String link = entry.linkName();
          if (link.isEmpty() || link.indexOf('\0') >= 0 || link.length() > EntryPath.MAX_LENGTH) {
            throw new HostileArchiveException(name, "symlink target is empty, too long or has NUL");
          }
          Files.createSymbolicLink(target, Path.of(link));
        }
        case HARDLINK -> {
          EntryPath linkPath = EntryPath.parse(name, entry.linkName());
          if (linkPath.isRoot()) {
            throw new HostileArchiveException(name, "hard link to the root directory");
          }
          Path linkParent = checkedParent(root, linkPath, name, knownDirs, false);
          Path existing =
              linkParent.resolve(linkPath.components().get(linkPath.components().size() - 1));
          BasicFileAttributes attrs = stat(existing);
          if (attrs == null) {
            throw new HostileArchiveException(
                name, "hard link to \"" + linkPath + "\", which is not in the archive before it");
          }
          if (attrs.isDirectory()) {
            throw new HostileArchiveException(name, "hard link to directory \"" + linkPath + "\"");
          }
          Files.createLink(target, existing);
          continue; // a hard link shares the metadata of its target
        }
        case CHAR_DEVICE, BLOCK_DEVICE, FIFO -> {
          int type =
              entry.type() == TarReader.Type.CHAR_DEVICE
                  ? S_IFCHR
                  : entry.type() == TarReader.Type.BLOCK_DEVICE ? S_IFBLK : S_IFIFO;
          syscalls.mknod(target, type | entry.mode(), entry.devMajor(), entry.devMinor());
        }
        case FILE -> bytes += writeFile(in, entry, target, name, buffer);
      }
      applyMetadata(entry, target, dirTimes);
    }
    // Children are written: now directory mtimes stick. Deepest first is not needed since
    // setting a directory's times does not change its parent's.
    for (DirTimes d : dirTimes) {
      syscalls.lutimes(d.path(), d.atime(), d.mtime());
    }
    return new Stats(entries, bytes);
  }

  /**
   * Walks the parents of {@code path} below {@code root}, refusing symlinks and non-directories and
   * creating missing directories when {@code create} is set.
   */
  private Path checkedParent(
      Path root, EntryPath path, String entry, Set<String> knownDirs, boolean create)
      throws IOException {
    Path current = root;
    StringBuilder relative = new StringBuilder();
    List<String> components = path.components();
    for (int i = 0; i < components.size() - 1; i++) {
      if (i > 0) {
        relative.append('/');
      }
      relative.append(components.get(i));
      current = current.resolve(components.get(i));
      String key = relative.toString();
      if (knownDirs.contains(key)) {
        continue;
      }
      BasicFileAttributes attrs = stat(current);
      if (attrs == null) {
        if (!create) {
          throw new HostileArchiveException(entry, "\"" + key + "\" does not exist");
        }
        Files.createDirectory(current);
      } else if (attrs.isSymbolicLink()) {
        throw new HostileArchiveException(
            entry, "path goes through symlink \"" + key + "\"; links are never followed");
      } else if (!attrs.isDirectory()) {
        throw new HostileArchiveException(entry, "\"" + key + "\" is not a directory");
      }
      knownDirs.add(key);
    }
    return current;
  }

  /** Makes room for {@code entry} at {@code target}: removes what is there, never follows it. */
  private void clearFor(
      TarReader.Entry entry, Path target, String name, Set<String> knownDirs, String key)
      throws IOException {
    BasicFileAttributes attrs = stat(target);
    if (attrs == null) {
      return;
    }
    if (attrs.isDirectory()) {
      if (entry.type() == TarReader.Type.DIRECTORY) {
        return;
      }
      try {
        Files.delete(target);
      } catch (DirectoryNotEmptyException e) {
        throw new HostileArchiveException(
            name, "would replace non-empty directory \"" + key + "\"");
      }
      knownDirs.remove(key);
      return;
    }
    Files.delete(target); // unlink(2): removes a symlink itself, never what it points to
  }

  /**
   * Writes a regular file. A sparse file's data regions are written at their offsets and its holes
   * are never written: a trailing hole is made with ftruncate(2), so only the data takes space, and
   * the free-space check counts only the data. As in GNU tar, the map decides the file's size.
   */
  private long writeFile(
      TarReader in, TarReader.Entry entry, Path target, String name, byte[] buffer)
      throws IOException {
    long size = entry.size();
    if (size > 64L << 20) {
      long free = Files.getFileStore(target.getParent()).getUsableSpace();
      if (size > free) {
        throw new IOException(
            "archive entry \""
                + name
                + "\" is "
                + size
                + " bytes"
                + (entry.isSparse() ? " of data (a sparse file of " + entry.realSize() + ")" : "")
                + "; the filesystem of "
                + target.getParent()
                + " has "
                + free
                + " bytes free");
      }
    }
    long written = 0;
    try (FileChannel out =
        FileChannel.open(
            target,
            StandardOpenOption.CREATE_NEW,
            StandardOpenOption.WRITE,
            LinkOption.NOFOLLOW_LINKS)) {
      if (entry.isSparse()) {
        for (TarReader.Region region : entry.sparse()) {
          if (region.length() == 0) {
            // GNU tar ends the map of a file that ends in a hole with an empty region at its size.
            syscalls.truncate(target, region.offset());
          } else {
            written += copy(in, out, region.offset(), region.length(), name, written, size, buffer);
          }
        }
      } else {
        written = copy(in, out, 0, size, name, 0, size, buffer);
      }
    }
    return written;
  }

  /** Copies {@code length} bytes of entry data to {@code out} at {@code position}. */
  private static long copy(
      TarReader in,
      FileChannel out,
      long position,
      long length,
      String name,
      long done,
      long size,
      byte[] buffer)
      throws IOException {
    long copied = 0;
    while (copied < length) {
      int n =
          readEntry(
              in,
              buffer,
              (int) Math.min(buffer.length, length - copied),
              name,
              done + copied,
              size);
      if (n < 0) {
        throw new IOException(
            "archive entry \""
                + name
                + "\" is truncated: "
                + (done + copied)
                + " of "
                + size
                + " bytes");
      }
      ByteBuffer b = ByteBuffer.wrap(buffer, 0, n);
      long at = position + copied;
      while (b.hasRemaining()) {
        at += out.write(b, at);
      }
      copied += n;
    }
    return copied;
  }

  private static int readEntry(
      TarReader in, byte[] buffer, int len, String name, long written, long size)
      throws IOException {
    try {
      return in.read(buffer, 0, len);
    } catch (java.io.InterruptedIOException e) {
      throw e; // a cancelled or interrupted download, not a bad archive
    } catch (IOException e) {
      throw new IOException(
          "archive entry \""
              + name
              + "\" is truncated or corrupt at byte "
              + written
              + " of "
              + size
              + ": "
              + e.getMessage(),
          e);
    }
  }

  /** Owner, then mode (chown(2) clears setuid/setgid), then xattrs, then times. */
  private void applyMetadata(TarReader.Entry entry, Path target, List<DirTimes> dirTimes)
      throws IOException {
    syscalls.lchown(target, entry.uid(), entry.gid());
    if (entry.type() != TarReader.Type.SYMLINK) {
      syscalls.chmod(target, entry.mode());
    }
    for (Map.Entry<String, byte[]> xattr : entry.xattrs().entrySet()) {
      syscalls.lsetxattr(target, xattr.getKey(), xattr.getValue());
    }
    Instant mtime = entry.mtime();
    Instant atime = entry.atime() != null ? entry.atime() : mtime;
    if (entry.type() == TarReader.Type.DIRECTORY) {
      dirTimes.add(new DirTimes(target, atime, mtime));
    } else {
      syscalls.lutimes(target, atime, mtime);
    }
  }

  /** {@link #lstat}, asking {@link Syscalls#absent} first: the usual answer in a fresh tree. */
  private BasicFileAttributes stat(Path path) throws IOException {
    return syscalls.absent(path) ? null : lstat(path);
  }

  /** lstat(2): the attributes of the path itself, or {@code null} when it does not exist. */
  static BasicFileAttributes lstat(Path path) throws IOException {
    try {
      return Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException e) {
      return null;
    }
  }
}
