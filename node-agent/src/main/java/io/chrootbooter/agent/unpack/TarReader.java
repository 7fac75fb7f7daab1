package io.chrootbooter.agent.unpack;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.time.DateTimeException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * Reads a tar stream header by header, as GNU tar 1.34 reads it: V7, ustar, old GNU, GNU and POSIX
 * pax headers; GNU long names ({@code L}, {@code K}); global ({@code g}) and per-entry ({@code x})
 * pax records, globals applying to every later entry; and sparse files in every format GNU tar
 * writes (old GNU {@code S} with extension blocks, pax {@code GNU.sparse} 0.0, 0.1 and 1.0), with
 * 64-bit offsets and sizes.
 *
 * <p>Numeric header fields are read as GNU tar's {@code from_header} reads them: leading blanks and
 * one leading NUL skipped, an all-NUL field is 0, octal digits end at a blank or NUL, base-256
 * (first byte {@code 0x80} or {@code 0xff}) for values octal cannot hold. A field GNU tar reports
 * as an error (blanks only, other characters, out of range) refuses the entry, naming it and the
 * field. A pax {@code mtime} or {@code atime} that cannot be used is logged and the header's time
 * kept, as GNU tar does.
 *
 * <p>Bounds: the headers of one entry (long names, pax records, old GNU sparse extension blocks and
 * a pax 1.0 sparse map) may take at most {@link #MAX_ENTRY_HEADER_BYTES}, and the global pax
 * records of the archive {@link #MAX_GLOBAL_HEADER_BYTES}; each is refused from its size field,
 * before its data is read.
 */
final class TarReader {

  /** The most one entry's headers may take, pax and GNU long names included. */
  static final int MAX_ENTRY_HEADER_BYTES = 1 << 20;

  /** The most the global pax records ({@code g}) of one archive may take together. */
  static final long MAX_GLOBAL_HEADER_BYTES = 4L << 20;

  static final int BLOCK = 512;

  private static final int NAME = 0;
  private static final int MODE = 100;
  private static final int UID = 108;
  private static final int GID = 116;
  private static final int SIZE = 124;
  private static final int MTIME = 136;
  private static final int CHKSUM = 148;
  private static final int TYPEFLAG = 156;
  private static final int LINKNAME = 157;
  private static final int MAGIC = 257;
  private static final int DEVMAJOR = 329;
  private static final int DEVMINOR = 337;
  private static final int PREFIX = 345;
  private static final int OLDGNU_SPARSE = 386;
  private static final int OLDGNU_ISEXTENDED = 482;
  private static final int OLDGNU_REALSIZE = 483;
  private static final long UID_MAX = 0xFFFF_FFFFL;

  /** What an entry is, once GNU's aliases are resolved. */
  enum Type {
    FILE,
    DIRECTORY,
    SYMLINK,
    HARDLINK,
    CHAR_DEVICE,
    BLOCK_DEVICE,
    FIFO
  }

  /** A data region of a sparse file: {@code length} bytes at {@code offset}. */
  record Region(long offset, long length) {}

  /**
   * One archive member.
   *
   * @param size the bytes of data that follow in the archive (all data regions, for a sparse file)
   * @param realSize the file's size (its apparent size, for a sparse file)
   * @param sparse the data regions in archive order, or {@code null} for a plain file
   * @param atime the pax access time, or {@code null}
   * @param xattrs the extended attributes from pax records, raw bytes
   */
  record Entry(
      String name,
      String linkName,
      Type type,
      int mode,
      long uid,
      long gid,
      Instant mtime,
      Instant atime,
      int devMajor,
      int devMinor,
      long size,
      long realSize,
      List<Region> sparse,
      Map<String, byte[]> xattrs) {

    boolean isSparse() {
      return sparse != null;
    }
  }

  /** One pax record, raw; the order is kept (GNU.sparse.offset/numbytes pairs depend on it). */
  private record Record(String key, byte[] value) {
    String text() {
      return new String(value, StandardCharsets.UTF_8);
    }
  }

  private final InputStream in;
  private final BiConsumer<String, String> warn;
  private final byte[] block = new byte[BLOCK];
  private final Map<String, Record> globals = new LinkedHashMap<>();
  private long globalBytes;
  private long remaining;
  private long padding;
  private long entries;
  private boolean ended;

  /**
   * @param warn receives (entry name, message) for what GNU tar warns about and goes on
   */
  TarReader(InputStream in, BiConsumer<String, String> warn) {
    this.in = in;
    this.warn = warn;
  }

  /** The next entry, or {@code null} at the end of the archive; skips the rest of the last one. */
  Entry next() throws IOException {
    if (ended) {
      return null;
    }
    skipRest();
    long headerBytes = 0;
    byte[] longName = null;
    byte[] longLink = null;
    List<Record> local = new ArrayList<>();
    String pending = null;
    while (true) {
      if (!readBlock()) {
        return end(pending);
      }
      if (allZero(block)) {
        return end(pending);
      }
      checksum();
      String headerName = cString(block, NAME, 100);
      byte type = block[TYPEFLAG];
      if (type == 'L' || type == 'K' || type == 'x' || type == 'X' || type == 'g') {
        long size = number(headerName, "size", SIZE, 12, 0, Long.MAX_VALUE);
        if (size > MAX_ENTRY_HEADER_BYTES - headerBytes) {
          throw new HostileArchiveException(
              headerName,
              "its headers (PAX or GNU long name) exceed "
                  + (MAX_ENTRY_HEADER_BYTES >> 20)
                  + " MiB");
        }
        if (type == 'g' && size > MAX_GLOBAL_HEADER_BYTES - globalBytes) {
          throw new HostileArchiveException(
              headerName,
              "global PAX headers of the archive exceed "
                  + (MAX_GLOBAL_HEADER_BYTES >> 20)
                  + " MiB");
        }
        headerBytes += size;
        byte[] data = readData(size, headerName);
        switch (type) {
          case 'L' -> longName = data;
          case 'K' -> longLink = data;
          case 'g' -> {
            globalBytes += size;
            for (Record r : pax(data, headerName)) {
              if (r.value().length == 0) {
                globals.remove(r.key());
              } else {
                globals.put(r.key(), r);
              }
            }
          }
          default -> local.addAll(pax(data, headerName));
        }
        pending = pending == null ? headerName : pending;
        continue;
      }
      if (type == 'V') {
        // A GNU volume label: not a file; GNU tar skips it.
        long size = number(headerName, "size", SIZE, 12, 0, Long.MAX_VALUE);
        skipBytes(size + pad(size), headerName);
        continue;
      }
      entries++;
      return entry(headerName, type, longName, longLink, local, headerBytes);
    }
  }

  /** Reads up to {@code len} bytes of the current entry's data; -1 at its end. */
  int read(byte[] b, int off, int len) throws IOException {
    if (remaining == 0) {
      return -1;
    }
    int n = in.read(b, off, (int) Math.min(len, remaining));
    if (n < 0) {
      throw new EOFException("the archive ends inside this entry's data");
    }
    remaining -= n;
    return n;
  }

  /** Entries returned so far. */
  long entries() {
    return entries;
  }

  private Entry end(String pending) {
    ended = true;
    if (pending != null) {
      warn.accept(
          pending,
          "header records at the end of the archive with no entry after them; ignored, as GNU tar"
              + " does");
    }
    return null;
  }

  private Entry entry(
      String headerName,
      byte type,
      byte[] longName,
      byte[] longLink,
      List<Record> local,
      long headerBytes)
      throws IOException {
    boolean ustar = matches(block, MAGIC, "ustar\0");
    boolean gnu = matches(block, MAGIC, "ustar  \0");
    boolean v7 = !ustar && !gnu;

    String name;
    if (longName != null) {
      name = longCString(longName, headerName, "long name");
    } else if (ustar && block[PREFIX] != 0) {
      name = cString(block, PREFIX, 155) + "/" + headerName;
    } else {
      name = headerName;
    }
    String linkName =
        longLink != null
            ? longCString(longLink, name, "long link name")
            : cString(block, LINKNAME, 100);

    int mode = (int) (number(name, "mode", MODE, 8, 0, Long.MAX_VALUE) & 07777);
    long uid = number(name, "uid", UID, 8, 0, UID_MAX);
    long gid = number(name, "gid", GID, 8, 0, UID_MAX);
    long size = number(name, "size", SIZE, 12, 0, Long.MAX_VALUE);
    Instant mtime =
        headerTime(name, number(name, "mtime", MTIME, 12, Long.MIN_VALUE, Long.MAX_VALUE));
    Instant atime = null;
    long devMajor = 0;
    long devMinor = 0;
    if (!v7 && (type == '3' || type == '4')) {
      devMajor = number(name, "devmajor", DEVMAJOR, 8, 0, Integer.MAX_VALUE);
      devMinor = number(name, "devminor", DEVMINOR, 8, 0, Integer.MAX_VALUE);
    }
    if (type == '1') {
      size = 0; // GNU tar: a hard link has no data, whatever its size field says
    }

    // Globals first, then this entry's own records, each overriding what came before.
    Map<String, Record> pax = new LinkedHashMap<>(globals);
    List<Region> paxMap = null;
    Long pendingOffset = null;
    for (Record r : local) {
      switch (r.key()) {
        case "GNU.sparse.offset" -> {
          if (pendingOffset != null) {
            throw new HostileArchiveException(
                name, "GNU.sparse.offset without GNU.sparse.numbytes");
          }
          pendingOffset = decimal(name, r, Long.MAX_VALUE);
        }
        case "GNU.sparse.numbytes" -> {
          if (pendingOffset == null) {
            throw new HostileArchiveException(
                name, "GNU.sparse.numbytes without GNU.sparse.offset");
          }
          if (paxMap == null) {
            paxMap = new ArrayList<>();
          }
          paxMap.add(new Region(pendingOffset, decimal(name, r, Long.MAX_VALUE)));
          pendingOffset = null;
        }
        default -> {
          if (r.value().length == 0) {
            pax.remove(r.key()); // an empty value: the header's own field applies
          } else {
            pax.put(r.key(), r);
          }
        }
      }
    }
    if (pendingOffset != null) {
      throw new HostileArchiveException(name, "GNU.sparse.offset without GNU.sparse.numbytes");
    }

    Map<String, byte[]> xattrs = new LinkedHashMap<>();
    for (Record r : pax.values()) {
      String key = r.key();
      switch (key) {
        case "path" -> name = paxString(name, r);
        case "linkpath" -> linkName = paxString(name, r);
        case "size" -> size = decimal(name, r, Long.MAX_VALUE);
        case "uid" -> uid = decimal(name, r, UID_MAX);
        case "gid" -> gid = decimal(name, r, UID_MAX);
        case "mtime" -> mtime = paxTime(name, r, mtime);
        case "atime" -> atime = paxTime(name, r, null);
        case "SCHILY.devmajor" -> devMajor = decimal(name, r, Integer.MAX_VALUE);
        case "SCHILY.devminor" -> devMinor = decimal(name, r, Integer.MAX_VALUE);
        default -> {
          if (key.startsWith("SCHILY.xattr.")) {
            xattrs.put(key.substring("SCHILY.xattr.".length()), r.value());
          } else if (key.startsWith("LIBARCHIVE.xattr.")) {
            String xattr =
                java.net.URLDecoder.decode(
                    key.substring("LIBARCHIVE.xattr.".length()), StandardCharsets.UTF_8);
            try {
              xattrs.putIfAbsent(xattr, java.util.Base64.getDecoder().decode(r.value()));
            } catch (IllegalArgumentException e) {
              throw new HostileArchiveException(name, "pax record " + key + " is not base64");
            }
          }
        }
      }
    }

    // Sparse files.
    List<Region> sparse = null;
    long realSize = size;
    boolean positioned = false;
    boolean regular = type == '0' || type == 0 || type == '7';
    if (type == 'S') {
      realSize = number(name, "realsize", OLDGNU_REALSIZE, 12, 0, Long.MAX_VALUE);
      sparse = oldGnuMap(name, headerBytes);
    } else if (regular
        && (pax.containsKey("GNU.sparse.major")
            || pax.containsKey("GNU.sparse.map")
            || pax.containsKey("GNU.sparse.numblocks")
            || paxMap != null)) {
      Record sparseName = pax.get("GNU.sparse.name");
      if (sparseName != null) {
        name = paxString(name, sparseName);
      }
      Record major = pax.get("GNU.sparse.major");
      Record minor = pax.get("GNU.sparse.minor");
      if (major != null) {
        if (!major.text().equals("1") || minor == null || !minor.text().equals("0")) {
          throw new HostileArchiveException(
              name,
              "sparse format "
                  + major.text()
                  + "."
                  + (minor == null ? "?" : minor.text())
                  + " is not one GNU tar writes (0.0, 0.1, 1.0)");
        }
        realSize = decimal(name, required(name, pax, "GNU.sparse.realsize"), Long.MAX_VALUE);
        remaining = size;
        padding = pad(size);
        sparse = pax10Map(name, headerBytes);
        size = remaining;
        positioned = true;
      } else {
        realSize = decimal(name, required(name, pax, "GNU.sparse.size"), Long.MAX_VALUE);
        if (paxMap != null) {
          sparse = paxMap;
        } else {
          sparse = pax01Map(name, required(name, pax, "GNU.sparse.map"));
        }
        Record count = pax.get("GNU.sparse.numblocks");
        if (count != null && decimal(name, count, Long.MAX_VALUE) != sparse.size()) {
          throw new HostileArchiveException(
              name,
              "GNU.sparse.numblocks is "
                  + count.text()
                  + " but the sparse map has "
                  + sparse.size()
                  + " regions");
        }
      }
    }
    if (sparse != null) {
      checkMap(name, sparse, size, realSize);
    }

    Type kind;
    switch (type) {
      case '1' -> kind = Type.HARDLINK;
      case '2' -> kind = Type.SYMLINK;
      case '3' -> kind = Type.CHAR_DEVICE;
      case '4' -> kind = Type.BLOCK_DEVICE;
      case '5', 'D' -> kind = Type.DIRECTORY; // D: a GNU incremental dump directory
      case '6' -> kind = Type.FIFO;
      case '0', 0, '7', 'S' ->
          kind = name.endsWith("/") && sparse == null ? Type.DIRECTORY : Type.FILE;
      case 'M' ->
          throw new HostileArchiveException(
              name, "it continues a file from another volume of a multi-volume archive");
      case 'N' ->
          throw new HostileArchiveException(
              name, "old GNU renamed-file records (type N) are not supported");
      default -> {
        warn.accept(
            name,
            "unknown entry type '"
                + printable(type)
                + "', extracted as a regular file as GNU tar"
                + " does");
        kind = Type.FILE;
      }
    }
    if (!positioned) {
      remaining = size;
      padding = pad(size);
    }
    return new Entry(
        name,
        linkName,
        kind,
        mode,
        uid,
        gid,
        mtime,
        atime,
        (int) devMajor,
        (int) devMinor,
        size,
        sparse != null ? realSize : size,
        sparse == null ? null : Collections.unmodifiableList(sparse),
        xattrs);
  }

  /** A header's seconds as an Instant; beyond what Instant holds (a base-256 field), clamped. */
  private Instant headerTime(String name, long seconds) {
    long clamped =
        Math.max(Instant.MIN.getEpochSecond(), Math.min(Instant.MAX.getEpochSecond(), seconds));
    if (clamped != seconds) {
      warn.accept(name, "its mtime " + seconds + " is out of range; " + clamped + " used");
    }
    return Instant.ofEpochSecond(clamped);
  }

  /** The old GNU map: 4 entries in the header, then extension blocks of 21 while flagged. */
  private List<Region> oldGnuMap(String name, long headerBytes) throws IOException {
    List<Region> map = new ArrayList<>();
    boolean more =
        sparseEntries(name, block.clone(), OLDGNU_SPARSE, 4, map) && block[OLDGNU_ISEXTENDED] != 0;
    byte[] ext = new byte[BLOCK];
    while (more) {
      headerBytes += BLOCK;
      if (headerBytes > MAX_ENTRY_HEADER_BYTES) {
        throw new HostileArchiveException(
            name, "its sparse map exceeds " + (MAX_ENTRY_HEADER_BYTES >> 20) + " MiB");
      }
      if (!readFully(ext)) {
        throw new EOFException("the archive ends inside the sparse map of \"" + name + "\"");
      }
      more = sparseEntries(name, ext, 0, 21, map) && ext[504] != 0;
    }
    return map;
  }

  /** Adds up to {@code count} (offset, numbytes) pairs; false when an empty one ended the map. */
  private static boolean sparseEntries(String name, byte[] b, int at, int count, List<Region> map)
      throws IOException {
    for (int i = 0; i < count; i++) {
      int entry = at + i * 24;
      if (b[entry + 12] == 0) {
        return false; // GNU tar: an entry whose numbytes field is empty ends the map
      }
      long offset = number(name, "sparse offset", b, entry, 12, 0, Long.MAX_VALUE);
      long length = number(name, "sparse numbytes", b, entry + 12, 12, 0, Long.MAX_VALUE);
      map.add(new Region(offset, length));
    }
    return true;
  }

  /** GNU.sparse.map (format 0.1): {@code offset,numbytes,offset,numbytes,...}. */
  private static List<Region> pax01Map(String name, Record map) throws HostileArchiveException {
    String[] numbers = map.text().split(",", -1);
    if (numbers.length % 2 != 0) {
      throw new HostileArchiveException(name, "GNU.sparse.map has an odd count of numbers");
    }
    List<Region> regions = new ArrayList<>();
    for (int i = 0; i < numbers.length; i += 2) {
      regions.add(
          new Region(
              decimal(name, "GNU.sparse.map", numbers[i], Long.MAX_VALUE),
              decimal(name, "GNU.sparse.map", numbers[i + 1], Long.MAX_VALUE)));
    }
    return regions;
  }

  /**
   * The format 1.0 map at the start of the data: decimal numbers, one per line (the count, then
   * offset and numbytes pairs), padded to a block; leaves {@link #remaining} at the data after it.
   */
  private List<Region> pax10Map(String name, long headerBytes) throws IOException {
    long mapBytes = 0;
    StringBuilder line = new StringBuilder();
    List<Long> numbers = new ArrayList<>();
    long count = -1;
    while (count < 0 || numbers.size() < 2 * count) {
      int b = dataByte(name);
      mapBytes++;
      if (headerBytes + mapBytes > MAX_ENTRY_HEADER_BYTES) {
        throw new HostileArchiveException(
            name, "its sparse map exceeds " + (MAX_ENTRY_HEADER_BYTES >> 20) + " MiB");
      }
      if (b != '\n') {
        if (b < '0' || b > '9' || line.length() > 19) {
          throw new HostileArchiveException(name, "its sparse map (format 1.0) is malformed");
        }
        line.append((char) b);
        continue;
      }
      long value = decimal(name, "sparse map", line.toString(), Long.MAX_VALUE);
      line.setLength(0);
      if (count < 0) {
        count = value;
      } else {
        numbers.add(value);
      }
    }
    // The map is padded to a block boundary.
    for (long pad = pad(mapBytes); pad > 0; pad--) {
      dataByte(name);
    }
    List<Region> regions = new ArrayList<>();
    for (int i = 0; i < numbers.size(); i += 2) {
      regions.add(new Region(numbers.get(i), numbers.get(i + 1)));
    }
    return regions;
  }

  private int dataByte(String name) throws IOException {
    if (remaining == 0) {
      throw new HostileArchiveException(name, "its sparse map is longer than its data");
    }
    int b = in.read();
    if (b < 0) {
      throw new EOFException("the archive ends inside the sparse map of \"" + name + "\"");
    }
    remaining--;
    return b;
  }

  /**
   * The regions' data must be in the archive: their lengths may not add up to more than the data
   * (GNU tar would read the next headers as data). What GNU tar extracts without a word is logged:
   * regions adding up to less (the rest is skipped), or a map that gives the file another size than
   * its recorded one (GNU tar's file is as long as the map says: see {@link #mapSize}).
   */
  private void checkMap(String name, List<Region> map, long size, long realSize)
      throws HostileArchiveException {
    long total = 0;
    for (Region r : map) {
      if (r.length() > Long.MAX_VALUE - r.offset() || r.length() > Long.MAX_VALUE - total) {
        throw new HostileArchiveException(
            name,
            "its sparse map region of " + r.length() + " bytes at " + r.offset() + " overflows");
      }
      total += r.length();
    }
    if (total > size) {
      throw new HostileArchiveException(
          name, "its sparse map holds " + total + " bytes of data but the archive holds " + size);
    }
    if (total < size) {
      warn.accept(
          name,
          "its sparse map holds "
              + total
              + " bytes of data but the archive holds "
              + size
              + "; the rest is skipped, as GNU tar does");
    }
    long mapSize = mapSize(map);
    if (mapSize != realSize) {
      warn.accept(
          name,
          "its sparse map makes a file of "
              + mapSize
              + " bytes, its header says "
              + realSize
              + "; extracted as the map says, as GNU tar does");
    }
  }

  /**
   * The size of the file GNU tar extracts from a sparse map: each region is written at its offset,
   * and a region of 0 bytes (GNU tar ends a map with one at the file's size when it ends in a hole)
   * truncates the file there.
   */
  static long mapSize(List<Region> map) {
    long size = 0;
    for (Region r : map) {
      size = r.length() == 0 ? r.offset() : Math.max(size, r.offset() + r.length());
    }
    return size;
  }

  private static Record required(String name, Map<String, Record> pax, String key)
      throws HostileArchiveException {
    Record r = pax.get(key);
    if (r == null) {
      throw new HostileArchiveException(name, "sparse file without pax record " + key);
    }
    return r;
  }

  /** The data of a long name: a C string, as GNU tar reads it. */
  private String longCString(byte[] data, String name, String what) {
    int end = 0;
    while (end < data.length && data[end] != 0) {
      end++;
    }
    for (int i = end; i < data.length; i++) {
      if (data[i] != 0) {
        String shown = new String(data, 0, end, StandardCharsets.UTF_8);
        warn.accept(
            shown,
            "its GNU "
                + what
                + " has bytes after a NUL; the name ends at the NUL, as GNU tar reads it");
        break;
      }
    }
    return new String(data, 0, end, StandardCharsets.UTF_8);
  }

  /** A pax path or linkpath: a length-delimited string, which must not hold a NUL. */
  private static String paxString(String name, Record r) throws HostileArchiveException {
    for (byte b : r.value()) {
      if (b == 0) {
        throw new HostileArchiveException(name, "pax record " + r.key() + " contains a NUL byte");
      }
    }
    return r.text();
  }

  /** A pax decimal value as GNU tar's decode_num reads it: digits only, at most {@code max}. */
  private static long decimal(String name, Record r, long max) throws HostileArchiveException {
    return decimal(name, "pax record " + r.key(), r.text(), max);
  }

  private static long decimal(String name, String what, String text, long max)
      throws HostileArchiveException {
    if (text.isEmpty() || text.length() > 19 || !text.chars().allMatch(c -> c >= '0' && c <= '9')) {
      throw new HostileArchiveException(
          name, what + " \"" + printable(text) + "\" is not a decimal number in range");
    }
    long value = Long.parseLong(text);
    if (value > max) {
      throw new HostileArchiveException(
          name, what + " " + value + " is out of range (at most " + max + ")");
    }
    return value;
  }

  private static final java.util.regex.Pattern PAX_TIME =
      java.util.regex.Pattern.compile("-?[0-9]+(\\.[0-9]*)?");

  /**
   * A pax time: {@code [-]seconds[.fraction]}, fractions beyond nanoseconds cut off. As GNU tar's
   * decode_timespec: text after the number is ignored (logged here); a value that is not a number
   * or out of range is logged and {@code fallback} (the header's time) kept.
   */
  private Instant paxTime(String name, Record r, Instant fallback) {
    String text = r.text();
    java.util.regex.Matcher number = PAX_TIME.matcher(text);
    if (!number.lookingAt()) {
      warn.accept(name, "pax record " + r.key() + "=" + printable(text) + " is malformed; ignored");
      return fallback;
    }
    String digits = number.group();
    try {
      BigDecimal seconds = new BigDecimal(digits.endsWith(".") ? digits + "0" : digits);
      BigDecimal floor = seconds.setScale(0, RoundingMode.FLOOR);
      long nanos =
          seconds
              .subtract(floor)
              .movePointRight(9)
              .setScale(0, RoundingMode.FLOOR)
              .longValueExact();
      Instant time = Instant.ofEpochSecond(floor.longValueExact(), nanos);
      if (digits.length() < text.length()) {
        warn.accept(
            name,
            "pax record "
                + r.key()
                + "="
                + printable(text)
                + " has text after the number; the number is used, as GNU tar does");
      }
      return time;
    } catch (ArithmeticException | DateTimeException e) {
      warn.accept(
          name, "pax record " + r.key() + "=" + printable(text) + " is out of range; ignored");
      return fallback;
    }
  }

  /** Parses pax records {@code "LEN KEY=VALUE\n"}; anything else refuses the header. */
  private static List<Record> pax(byte[] data, String name) throws HostileArchiveException {
    List<Record> records = new ArrayList<>();
    int at = 0;
    while (at < data.length) {
      if (data[at] == 0) {
        break; // GNU tar stops at a NUL where a record would start (padding)
      }
      long length = 0;
      int i = at;
      while (i < data.length && data[i] >= '0' && data[i] <= '9' && length < Integer.MAX_VALUE) {
        length = length * 10 + (data[i] - '0');
        i++;
      }
      if (i == at || i >= data.length || data[i] != ' ') {
        throw new HostileArchiveException(
            name, "malformed pax record at byte " + at + ": bad length");
      }
      int end = at + (int) Math.min(length, Integer.MAX_VALUE);
      if (length <= i - at + 1 || end > data.length || end < at) {
        throw new HostileArchiveException(
            name, "malformed pax record at byte " + at + ": length " + length + " out of range");
      }
      if (data[end - 1] != '\n') {
        throw new HostileArchiveException(
            name, "malformed pax record at byte " + at + ": no newline at its end");
      }
      int keyStart = i + 1;
      int eq = keyStart;
      while (eq < end - 1 && data[eq] != '=') {
        eq++;
      }
      if (eq >= end - 1 || eq == keyStart) {
        throw new HostileArchiveException(
            name, "malformed pax record at byte " + at + ": no keyword=value");
      }
      String key = new String(data, keyStart, eq - keyStart, StandardCharsets.UTF_8);
      records.add(new Record(key, Arrays.copyOfRange(data, eq + 1, end - 1)));
      at = end;
    }
    return records;
  }

  /** Header checksum: the unsigned or the signed byte sum, the field counted as blanks. */
  private void checksum() throws IOException {
    long unsigned = 0;
    long signed = 0;
    for (int i = 0; i < BLOCK; i++) {
      byte b = i >= CHKSUM && i < CHKSUM + 8 ? (byte) ' ' : block[i];
      unsigned += b & 0xff;
      signed += b;
    }
    long recorded = octalChecksum(block);
    if (recorded != unsigned && recorded != signed) {
      throw new IOException(
          "corrupt tar header after "
              + entries
              + " entries: header checksum mismatch (recorded "
              + recorded
              + ", computed "
              + unsigned
              + ")");
    }
  }

  /** The checksum field, octal only as GNU tar reads it; -1 when it is not a number. */
  private static long octalChecksum(byte[] b) {
    int i = CHKSUM;
    int lim = CHKSUM + 8;
    if (b[i] == 0) {
      i++;
    }
    while (i < lim && isSpace(b[i])) {
      i++;
    }
    if (i == lim) {
      return -1;
    }
    long value = 0;
    while (i < lim && b[i] >= '0' && b[i] <= '7') {
      value = value * 8 + (b[i] - '0');
      i++;
    }
    if (i < lim && b[i] != 0 && !isSpace(b[i])) {
      return -1;
    }
    return value;
  }

  /** True when {@code head} (at least 512 bytes) is a tar header with a valid checksum. */
  static boolean isHeader(byte[] head, int length) {
    if (length < BLOCK || allZero(Arrays.copyOf(head, BLOCK))) {
      return false;
    }
    long unsigned = 0;
    long signed = 0;
    for (int i = 0; i < BLOCK; i++) {
      byte b = i >= CHKSUM && i < CHKSUM + 8 ? (byte) ' ' : head[i];
      unsigned += b & 0xff;
      signed += b;
    }
    long recorded = octalChecksum(head);
    return recorded == unsigned || recorded == signed;
  }

  private long number(String name, String field, int at, int len, long min, long max)
      throws HostileArchiveException {
    return number(name, field, block, at, len, min, max);
  }

  /** GNU tar's from_header: see the class comment. */
  static long number(String name, String field, byte[] b, int at, int len, long min, long max)
      throws HostileArchiveException {
    int i = at;
    int lim = at + len;
    if (b[i] == 0) {
      i++; // GNU tar: a buggy tar writes a leading NUL when the previous field overflows
    }
    while (true) {
      if (i == lim) {
        throw new HostileArchiveException(
            name, "its " + field + " field is blank where a number is expected");
      }
      if (!isSpace(b[i])) {
        break;
      }
      i++;
    }
    long value;
    if (b[i] >= '0' && b[i] <= '7') {
      value = 0;
      while (i < lim && b[i] >= '0' && b[i] <= '7') {
        if (value > (Long.MAX_VALUE >> 3)) {
          throw new HostileArchiveException(
              name, "its " + field + " field " + field(b, at, len) + " is out of range");
        }
        value = value * 8 + (b[i] - '0');
        i++;
      }
    } else if (b[i] == (byte) 0x80 || b[i] == (byte) 0xff) {
      byte[] bytes = Arrays.copyOfRange(b, i, lim);
      if (bytes[0] == (byte) 0x80) {
        bytes[0] = 0;
      }
      BigInteger big = new BigInteger(bytes); // two's complement: 0xff... is negative
      if (big.bitLength() > 63 || big.longValue() < min || big.longValue() > max) {
        throw new HostileArchiveException(
            name, "its " + field + " field (base-256 " + big + ") is out of range");
      }
      return big.longValue();
    } else {
      value = 0;
    }
    if (i < lim && b[i] != 0 && !isSpace(b[i])) {
      throw new HostileArchiveException(
          name, "its " + field + " field " + field(b, at, len) + " is not a number");
    }
    if (value < min || value > max) {
      throw new HostileArchiveException(
          name, "its " + field + " " + value + " is out of range (at most " + max + ")");
    }
    return value;
  }

  private static String field(byte[] b, int at, int len) {
    StringBuilder s = new StringBuilder("\"");
    for (int i = at; i < at + len; i++) {
      int c = b[i] & 0xff;
      if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
        s.append((char) c);
      } else {
        s.append(String.format("\\x%02x", c));
      }
    }
    return s.append('"').toString();
  }

  private static String printable(String s) {
    String shown = s.length() > 64 ? s.substring(0, 64) + "..." : s;
    return shown.replaceAll("[^\\x20-\\x7e]", "?");
  }

  private static String printable(byte b) {
    return b >= 0x20 && b < 0x7f ? String.valueOf((char) b) : String.format("\\x%02x", b & 0xff);
  }

  private static boolean isSpace(byte b) {
    return b == ' ' || (b >= '\t' && b <= '\r');
  }

  private static boolean matches(byte[] b, int at, String text) {
    for (int i = 0; i < text.length(); i++) {
      if (b[at + i] != (byte) text.charAt(i)) {
        return false;
      }
    }
    return true;
  }

  static String cString(byte[] b, int at, int len) {
    int end = at;
    while (end < at + len && b[end] != 0) {
      end++;
    }
    return new String(b, at, end - at, StandardCharsets.UTF_8);
  }

  private static boolean allZero(byte[] b) {
    for (byte x : b) {
      if (x != 0) {
        return false;
      }
    }
    return true;
  }

  private static long pad(long size) {
    return (BLOCK - size % BLOCK) % BLOCK;
  }

  /** The data of a special header (long name, pax records) and its padding. */
  private byte[] readData(long size, String name) throws IOException {
    byte[] data = new byte[(int) size];
    if (!readFully(data)) {
      throw new EOFException("the archive ends inside the header records of \"" + name + "\"");
    }
    skipBytes(pad(size), name);
    return data;
  }

  /** Reads a header block; false at a clean end of the stream (no byte of the block read). */
  private boolean readBlock() throws IOException {
    int n = in.readNBytes(block, 0, BLOCK);
    if (n == 0) {
      return false;
    }
    if (n < BLOCK) {
      if (allZero(Arrays.copyOf(block, n))) {
        return false; // a short run of end-of-archive zeros
      }
      throw new EOFException("the archive ends inside a header after " + entries + " entries");
    }
    return true;
  }

  private boolean readFully(byte[] b) throws IOException {
    return in.readNBytes(b, 0, b.length) == b.length;
  }

  private void skipRest() throws IOException {
    skipBytes(remaining + padding, "?");
    remaining = 0;
    padding = 0;
  }

  private void skipBytes(long n, String name) throws IOException {
    byte[] scratch = null;
    while (n > 0) {
      long skipped = in.skip(n);
      if (skipped <= 0) {
        if (scratch == null) {
          scratch = new byte[8192];
        }
        int r = in.read(scratch, 0, (int) Math.min(scratch.length, n));
        if (r < 0) {
          throw new EOFException("the archive ends inside the data of an entry");
        }
        skipped = r;
      }
      n -= skipped;
    }
  }
}
