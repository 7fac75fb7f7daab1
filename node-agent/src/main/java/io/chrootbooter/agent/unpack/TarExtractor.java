package io.chrootbooter.agent.unpack;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

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

  private static final int BUFFER = 256 * 1024;
  private static final int SPARSE_BLOCK = 4096;
  private static final int S_IFCHR = 0020000;
  private static final int S_IFBLK = 0060000;
  private static final int S_IFIFO = 0010000;
  private static final String SCHILY_XATTR = "SCHILY.xattr.";
  private static final String LIBARCHIVE_XATTR = "LIBARCHIVE.xattr.";

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
    RawHeaderRecorder recorder = new RawHeaderRecorder(tar);
    TarArchiveInputStream in = new TarArchiveInputStream(recorder, BUFFER, 512, "UTF-8", false);
    Set<String> knownDirs = new HashSet<>();
    List<DirTimes> dirTimes = new ArrayList<>();
    byte[] buffer = new byte[BUFFER];
    long entries = 0;
    long bytes = 0;
    while (true) {
      recorder.start();
      TarArchiveEntry entry;
      try {
        entry = in.getNextEntry();
      } catch (IllegalArgumentException e) {
        throw new IOException(
            "corrupt tar header after " + entries + " entries: " + e.getMessage(), e);
      } finally {
        recorder.stop();
      }
      if (entry == null) {
        break;
      }
      recorder.countGlobalHeaders();
      entries++;
      String name = entry.getName();
      EntryPath entryPath = EntryPath.parse(name, name);
      Path target = root;
      if (!entryPath.isRoot()) {
        Path parent = checkedParent(root, entryPath, name, knownDirs, true);
        target = parent.resolve(entryPath.components().get(entryPath.components().size() - 1));
        clearFor(entry, target, name, knownDirs, entryPath.toString());
      } else if (!entry.isDirectory()) {
        throw new HostileArchiveException(name, "the root entry is not a directory");
      }

      if (entry.isDirectory()) {
        if (!entryPath.isRoot() && !Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS)) {
          Files.createDirectory(target);
        }
        knownDirs.add(entryPath.toString());
      } else if (entry.isSymbolicLink()) {
        String link = entry.getLinkName();
        if (link.isEmpty() || link.indexOf('\0') >= 0 || link.length() > EntryPath.MAX_LENGTH) {
          throw new HostileArchiveException(name, "symlink target is empty, too long or has NUL");
        }
        Files.createSymbolicLink(target, Path.of(link));
      } else if (entry.isLink()) {
        EntryPath linkPath = EntryPath.parse(name, entry.getLinkName());
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
      } else if (entry.isCharacterDevice() || entry.isBlockDevice() || entry.isFIFO()) {
        int type = entry.isCharacterDevice() ? S_IFCHR : entry.isBlockDevice() ? S_IFBLK : S_IFIFO;
        syscalls.mknod(
            target, type | (entry.getMode() & 07777), entry.getDevMajor(), entry.getDevMinor());
      } else if (entry.isFile()) {
        bytes += writeFile(in, entry, target, name, buffer);
      } else {
        throw new HostileArchiveException(
            name, "entry type is none of file, directory, symlink, hard link, device or FIFO");
      }
      applyMetadata(entry, target, recorder, dirTimes);
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
      TarArchiveEntry entry, Path target, String name, Set<String> knownDirs, String key)
      throws IOException {
    BasicFileAttributes attrs = stat(target);
    if (attrs == null) {
      return;
    }
    if (attrs.isDirectory()) {
      if (entry.isDirectory()) {
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

  private long writeFile(
      TarArchiveInputStream in, TarArchiveEntry entry, Path target, String name, byte[] buffer)
      throws IOException {
    long size = entry.isSparse() ? entry.getRealSize() : entry.getSize();
    if (size < 0) {
      throw new HostileArchiveException(name, "negative size " + size);
    }
    if (size > 64L << 20) {
      long free = Files.getFileStore(target.getParent()).getUsableSpace();
      if (size > free) {
        throw new IOException(
            "archive entry \""
                + name
                + "\" is "
                + size
                + " bytes; the filesystem of "
                + target.getParent()
                + " has "
                + free
                + " bytes free");
      }
    }
    boolean sparse = entry.isSparse();
    long written = 0;
    try (FileChannel out =
        FileChannel.open(
            target,
            StandardOpenOption.CREATE_NEW,
            StandardOpenOption.WRITE,
            LinkOption.NOFOLLOW_LINKS)) {
      int n;
      while ((n = readEntry(in, buffer, name, written, size)) > 0) {
        if (sparse) {
          writeSparse(out, buffer, n, written);
        } else {
          ByteBuffer b = ByteBuffer.wrap(buffer, 0, n);
          while (b.hasRemaining()) {
            out.write(b);
          }
        }
        written += n;
      }
      if (written != size) {
        throw new IOException(
            "archive entry \"" + name + "\" is truncated: " + written + " of " + size + " bytes");
      }
      if (sparse && out.size() < size) {
        // A trailing hole: extend the file to its size by writing its last byte.
        out.write(ByteBuffer.wrap(new byte[1]), size - 1);
      }
    }
    return written;
  }

  private static int readEntry(
      TarArchiveInputStream in, byte[] buffer, String name, long written, long size)
      throws IOException {
    try {
      return in.read(buffer);
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

  /** Writes {@code n} bytes at {@code position}, leaving all-zero 4 KiB blocks as holes. */
  private static void writeSparse(FileChannel out, byte[] buffer, int n, long position)
      throws IOException {
    for (int off = 0; off < n; off += SPARSE_BLOCK) {
      int len = Math.min(SPARSE_BLOCK, n - off);
      if (!allZero(buffer, off, len)) {
        ByteBuffer b = ByteBuffer.wrap(buffer, off, len);
        long at = position + off;
        while (b.hasRemaining()) {
          at += out.write(b, at);
        }
      }
    }
  }

  private static boolean allZero(byte[] b, int off, int len) {
    for (int i = off; i < off + len; i++) {
      if (b[i] != 0) {
        return false;
      }
    }
    return true;
  }

  /** Owner, then mode (chown(2) clears setuid/setgid), then xattrs, then times. */
  private void applyMetadata(
      TarArchiveEntry entry, Path target, RawHeaderRecorder recorder, List<DirTimes> dirTimes)
      throws IOException {
    syscalls.lchown(target, entry.getLongUserId(), entry.getLongGroupId());
    if (!entry.isSymbolicLink()) {
      syscalls.chmod(target, entry.getMode() & 07777);
    }
    for (Map.Entry<String, byte[]> xattr : xattrs(entry, recorder).entrySet()) {
      syscalls.lsetxattr(target, xattr.getKey(), xattr.getValue());
    }
    Instant mtime = entry.getLastModifiedTime().toInstant();
    Instant atime =
        entry.getLastAccessTime() != null ? entry.getLastAccessTime().toInstant() : mtime;
    if (entry.isDirectory()) {
      dirTimes.add(new DirTimes(target, atime, mtime));
    } else {
      syscalls.lutimes(target, atime, mtime);
    }
  }

  /**
   * xattrs from PAX records: {@code SCHILY.xattr.NAME=raw bytes} (GNU tar, star) and {@code
   * LIBARCHIVE.xattr.URLENCODED-NAME=base64} (bsdtar).
   */
  private static Map<String, byte[]> xattrs(TarArchiveEntry entry, RawHeaderRecorder recorder) {
    Map<String, byte[]> result = new LinkedHashMap<>();
    for (Map.Entry<String, String> header : entry.getExtraPaxHeaders().entrySet()) {
      String key = header.getKey();
      String value = header.getValue();
      if (key.startsWith(SCHILY_XATTR)) {
        byte[] bytes =
            value.indexOf('\uFFFD') >= 0
                ? recorder.rawValue(key).orElse(value.getBytes(StandardCharsets.UTF_8))
                : value.getBytes(StandardCharsets.UTF_8);
        result.put(key.substring(SCHILY_XATTR.length()), bytes);
      } else if (key.startsWith(LIBARCHIVE_XATTR)) {
        String xattrName =
            java.net.URLDecoder.decode(
                key.substring(LIBARCHIVE_XATTR.length()), StandardCharsets.UTF_8);
        result.putIfAbsent(xattrName, Base64.getDecoder().decode(value));
      }
    }
    return result;
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
