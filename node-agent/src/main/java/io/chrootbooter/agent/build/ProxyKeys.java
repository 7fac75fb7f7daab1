package io.chrootbooter.agent.build;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * Numbers the recorder proxy keys of Quarkus' {@code generated-bytecode.jar} canonically, so that
 * two builds of one commit give the same bytes.
 *
 * <p>Quarkus' bytecode recorders name the objects one build step hands to another {@code
 * "proxykeyN"}, N from one JVM-wide counter; build steps run on a thread pool, so the same object
 * gets another N from one build to the next (one build thread would fix the order, but Quarkus 3.33
 * deadlocks on one thread). The keys are only names: a key is written by one recorded class and
 * read by others, always as the same string constant. Renaming every key by one bijection therefore
 * keeps the program as it was. The bijection here depends on nothing a build varies: classes in
 * name order, and within a class the constant pool's order (which follows the code, not N); each
 * key gets the next number the first time it is seen.
 *
 * <p>Usage: {@code java -cp <agent jar> io.chrootbooter.agent.build.ProxyKeys <jar>} rewrites the
 * jar in place, keeping its entries' order, names, times and comments.
 */
public final class ProxyKeys {
  private static final Pattern KEY = Pattern.compile("proxykey[0-9]+");

  private ProxyKeys() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      System.err.println("usage: ProxyKeys <generated-bytecode.jar>");
      System.exit(2);
    }
    Path jar = Path.of(args[0]);
    Path tmp = jar.resolveSibling(jar.getFileName() + ".tmp");
    int keys;
    try {
      keys = canonicalise(jar, tmp);
      Files.move(tmp, jar, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
    System.out.println("ProxyKeys: " + keys + " proxy keys numbered canonically in " + jar);
  }

  /** Writes {@code in} with canonical proxy keys to {@code out}; returns how many keys it has. */
  static int canonicalise(Path in, Path out) throws IOException {
    // Each entry read once, in the jar's order; the jar is small (~150 kB).
    Map<ZipEntry, byte[]> entries = new LinkedHashMap<>();
    try (ZipFile zip = new ZipFile(in.toFile())) {
      for (Enumeration<? extends ZipEntry> e = zip.entries(); e.hasMoreElements(); ) {
        ZipEntry entry = e.nextElement();
        entries.put(entry, read(zip, entry));
      }
    }
    Map<String, String> renames = new LinkedHashMap<>();
    List<ZipEntry> byName = new ArrayList<>(entries.keySet());
    byName.sort(java.util.Comparator.comparing(ZipEntry::getName));
    for (ZipEntry entry : byName) {
      if (entry.getName().endsWith(".class")) {
        for (String s : utf8s(entries.get(entry))) {
          if (KEY.matcher(s).matches() && !renames.containsKey(s)) {
            renames.put(s, "proxykey" + renames.size());
          }
        }
      }
    }
    try (ZipOutputStream zout = new ZipOutputStream(Files.newOutputStream(out))) {
      for (Map.Entry<ZipEntry, byte[]> e : entries.entrySet()) {
        ZipEntry entry = e.getKey();
        byte[] bytes =
            entry.getName().endsWith(".class") ? rename(e.getValue(), renames) : e.getValue();
        ZipEntry copy = new ZipEntry(entry.getName());
        copy.setTime(entry.getTime());
        if (entry.getComment() != null) {
          copy.setComment(entry.getComment());
        }
        zout.putNextEntry(copy);
        zout.write(bytes);
        zout.closeEntry();
      }
    }
    return renames.size();
  }

  private static byte[] read(ZipFile zip, ZipEntry entry) throws IOException {
    try (InputStream in = zip.getInputStream(entry)) {
      return in.readAllBytes();
    }
  }

  /** The CONSTANT_Utf8 strings of a class file, in constant-pool order. */
  static List<String> utf8s(byte[] classFile) throws IOException {
    List<String> strings = new ArrayList<>();
    walk(classFile, (s, out) -> strings.add(s), null);
    return strings;
  }

  /** The class file with each CONSTANT_Utf8 that {@code renames} names replaced. */
  static byte[] rename(byte[] classFile, Map<String, String> renames) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(classFile.length);
    walk(classFile, (s, out) -> out.writeUTF(renames.getOrDefault(s, s)), bytes);
    return bytes.toByteArray();
  }

  private interface Utf8Visitor {
    void visit(String value, DataOutputStream out) throws IOException;
  }

  /**
   * Reads the constant pool (JVM specification §4.4), handing each CONSTANT_Utf8 to {@code
   * visitor}; with {@code sink}, copies the class file there, the visitor writing each Utf8's
   * length and bytes. Entries are referred to by index, never by offset, so a Utf8 may change its
   * length.
   */
  private static void walk(byte[] classFile, Utf8Visitor visitor, OutputStream sink)
      throws IOException {
    DataInputStream in = new DataInputStream(new java.io.ByteArrayInputStream(classFile));
    DataOutputStream out =
        new DataOutputStream(sink == null ? OutputStream.nullOutputStream() : sink);
    int magic = in.readInt();
    if (magic != 0xCAFEBABE) {
      throw new IOException("not a class file");
    }
    out.writeInt(magic);
    out.writeShort(in.readUnsignedShort()); // minor
    out.writeShort(in.readUnsignedShort()); // major
    int count = in.readUnsignedShort();
    out.writeShort(count);
    for (int i = 1; i < count; i++) {
      int tag = in.readUnsignedByte();
      out.writeByte(tag);
      int size;
      switch (tag) {
        case 1 -> {
          visitor.visit(in.readUTF(), out);
          continue;
        }
        case 7, 8, 16, 19, 20 -> size = 2;
        case 15 -> size = 3;
        case 3, 4, 9, 10, 11, 12, 17, 18 -> size = 4;
        case 5, 6 -> {
          size = 8;
          i++; // takes two entries
        }
        default -> throw new IOException("constant pool tag " + tag + " at entry " + i);
      }
      out.write(in.readNBytes(size));
    }
    out.write(in.readAllBytes());
    out.flush();
  }
}
