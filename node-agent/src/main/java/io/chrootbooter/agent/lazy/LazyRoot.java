package io.chrootbooter.agent.lazy;

import io.chrootbooter.protocol.Verity;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The block stack of a Lazy image: the NBD server's export attached as {@code /dev/nbdN}
 * (nbd-client, read-only, 4 KiB blocks, with a timeout so a read of a block the network cannot
 * bring fails instead of hanging), the hash tree on a read-only loop device, a dm-verity device
 * over both ({@code dmsetup create} with a verity table: libdevmapper only, where {@code
 * veritysetup} would add libcryptsetup and its crypto libraries), and squashfs mounted read-only
 * from it. Every block the kernel reads is checked against the root hash from the desired state; a
 * block that fails is an I/O error for that read only ({@link #corruption()} names it).
 *
 * <p>{@link #close()} takes down what {@link #attach} set up, in reverse, on every path: the mount,
 * the dm device, the loop device, the NBD device; the server and its cache are the caller's.
 */
public final class LazyRoot implements AutoCloseable {
  private static final Pattern CORRUPTED =
      Pattern.compile("verity: (\\d+:\\d+): data block (\\d+) is corrupted");
  private static final long COMMAND_SECONDS = 30;

  private final String name;
  private final Deque<Step> undo = new ArrayDeque<>();
  private String nbd;
  private String loop;
  private String dmMajorMinor;
  private String dataMajorMinor;
  private Path mountPoint;

  private interface Step {
    void run() throws IOException;
  }

  private LazyRoot(String name) {
    this.name = name;
  }

  /**
   * A block that failed its check: the dm device, {@code data} (a block of the image) or {@code
   * metadata} (a block of the hash tree), and the block's number (4 KiB blocks; -1 when the
   * kernel's log no longer names it).
   */
  public record Corruption(String device, String kind, long block) {}

  /**
   * Whether this kernel can carry a Lazy root: the nbd and dm-verity modules load (or are built in)
   * and nbd-client, dmsetup and losetup are there; empty when it can, else what is missing.
   */
  public static Optional<String> missing() {
    for (String module : List.of("nbd", "dm_verity", "loop")) {
      try {
        run(List.of("modprobe", module));
      } catch (IOException e) {
        // Built in, or absent: the checks below tell.
      }
    }
    if (!Files.isDirectory(Path.of("/sys/block/nbd0"))) {
      return Optional.of("the kernel has no nbd driver (/sys/block/nbd0; module nbd)");
    }
    if (!Files.exists(Path.of("/dev/mapper/control"))
        && !Files.isDirectory(Path.of("/sys/module/dm_mod"))) {
      return Optional.of("the kernel has no device mapper (/dev/mapper/control; module dm_mod)");
    }
    if (!Files.isDirectory(Path.of("/sys/module/dm_verity"))) {
      return Optional.of("the kernel has no dm-verity target (module dm_verity)");
    }
    for (String tool : List.of("nbd-client", "dmsetup", "losetup")) {
      try {
        run(List.of("sh", "-c", "command -v " + tool));
      } catch (IOException e) {
        return Optional.of(tool + " is not installed");
      }
    }
    return Optional.empty();
  }

  /**
   * Attaches {@code server}'s export ({@code size} bytes) with the hash tree in {@code tree} and
   * mounts the verified squashfs read-only at {@code target}. {@code name} names the dm device (a
   * name of letters, digits and '-').
   */
  public static LazyRoot attach(
      NbdServer server,
      String exportName,
      long size,
      Path tree,
      Verity verity,
      String name,
      Path target,
      java.time.Duration timeout)
      throws IOException {
    if (!name.matches("[A-Za-z0-9-]{1,64}")) {
      throw new IllegalArgumentException("dm device name " + name);
    }
    checkVerity(verity, size);
    LazyRoot root = new LazyRoot(name);
    boolean ok = false;
    try {
      root.nbd = freeNbd();
      run(
          List.of(
              "nbd-client",
              "-unix",
              server.socket().toString(),
              root.nbd,
              "-name",
              exportName,
              "-readonly",
              "-block-size",
              "4096",
              "-timeout",
              String.valueOf(Math.max(1, timeout.toSeconds()))));
      String nbd = root.nbd;
      root.dataMajorMinor =
          Files.readString(Path.of("/sys/block", Path.of(nbd).getFileName().toString(), "dev"))
              .trim();
      root.undo.push(() -> run(List.of("nbd-client", "-d", nbd)));
      root.loop = run(List.of("losetup", "-r", "-f", "--show", tree.toString())).trim();
      String loop = root.loop;
      root.undo.push(() -> run(List.of("losetup", "-d", loop)));
      String table =
          "0 "
              + size / 512
              + " verity 1 "
              + root.nbd
              + " "
              + root.loop
              + " 4096 4096 "
              + verity.dataBlocks()
              + " 1 "
              + Verity.ALGORITHM
              + " "
              + verity.rootHash()
              + " "
              + verity.salt();
      run(List.of("dmsetup", "create", name, "--readonly", "--table", table));
      root.undo.push(() -> run(List.of("dmsetup", "remove", name)));
      root.dmMajorMinor =
          run(List.of("dmsetup", "info", "-c", "--noheadings", "-o", "major,minor", name))
              .trim()
              .replace(' ', ':');
      Files.createDirectories(target);
      // devtmpfs makes /dev/dm-N; /dev/mapper/NAME is udev's (or dmsetup's, when it sees no udev).
      run(
          List.of(
              "mount",
              "-t",
              "squashfs",
              "-o",
              "ro",
              root.verityDevice().toString(),
              target.toString()));
      root.mountPoint = target;
      root.undo.push(() -> run(List.of("umount", target.toString())));
      ok = true;
      return root;
    } finally {
      if (!ok) {
        root.close();
      }
    }
  }

  /** The NBD device, such as {@code /dev/nbd0}. */
  public String nbdDevice() {
    return nbd;
  }

  /** The dm device, {@code /dev/dm-N}. */
  public Path verityDevice() {
    return Path.of("/dev/dm-" + dmMajorMinor.substring(dmMajorMinor.indexOf(':') + 1));
  }

  /** Where the squashfs is mounted. */
  public Path mountPoint() {
    return mountPoint;
  }

  /** The NBD device's {@code major:minor}: how dm-verity names the data device in its log. */
  public String dataDevice() {
    return dataMajorMinor;
  }

  /** Whether dm-verity found a corrupted block on this device: {@code dmsetup status} ends in C. */
  public boolean corrupted() throws IOException {
    return run(List.of("dmsetup", "status", name)).trim().endsWith(" C");
  }

  /**
   * The first block dm-verity found corrupted on this device, if any: {@code dmsetup status} says
   * whether one was ({@code C}), the kernel's log which.
   */
  public Optional<Corruption> corruption() throws IOException {
    if (!corrupted()) {
      return Optional.empty();
    }
    String log = run(List.of("dmesg"));
    Matcher m = CORRUPTED.matcher(log);
    long block = -1;
    while (block < 0 && m.find()) {
      // The kernel names the data device, not the verity device.
      if (m.group(1).equals(dataMajorMinor)) {
        block = Long.parseLong(m.group(2));
        break;
      }
    }
    return Optional.of(new Corruption(verityDevice().toString(), "data", block));
  }

  /** Unmounts and detaches everything, in reverse; the first failure is thrown after all ran. */
  @Override
  public void close() throws IOException {
    IOException first = null;
    while (!undo.isEmpty()) {
      try {
        undo.pop().run();
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

  private static void checkVerity(Verity verity, long size) {
    if (verity == null
        || verity.rootHash() == null
        || !verity.rootHash().matches("[0-9a-f]{64}")
        || verity.salt() == null
        || !verity.salt().matches("([0-9a-f]{2}){0,256}")
        || verity.dataBlocks() == null
        || verity.dataBlocks() * 4096 != size) {
      throw new IllegalArgumentException(
          "the desired state's verity "
              + verity
              + " does not describe an image of "
              + size
              + " bytes (root hash: 64 hex digits, salt: hex, dataBlocks * 4096 = the size)");
    }
  }

  /** The first {@code /dev/nbdN} with no client: its size is 0 and it has no pid. */
  private static String freeNbd() throws IOException {
    for (int i = 0; i < 256; i++) {
      Path sys = Path.of("/sys/block/nbd" + i);
      if (!Files.isDirectory(sys)) {
        break;
      }
      if (!Files.exists(sys.resolve("pid"))
          && Files.readString(sys.resolve("size")).trim().equals("0")) {
        return "/dev/nbd" + i;
      }
    }
    throw new IOException("no free NBD device (/sys/block/nbd*)");
  }

  /** Runs a command; its output, or an IOException naming it and carrying its output. */
  static String run(List<String> command) throws IOException {
    // Output to a file, not a pipe: a command that leaves a daemon behind (nbd-client without
    // netlink) would hold a pipe open for ever.
    Path out = Files.createTempFile("cb-lazy-", ".out");
    try {
      Process p =
          new ProcessBuilder(command)
              .redirectErrorStream(true)
              .redirectOutput(out.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
              .start();
      try {
        if (!p.waitFor(COMMAND_SECONDS, TimeUnit.SECONDS)) {
          p.destroyForcibly();
          throw new IOException(
              String.join(" ", command) + " did not end in " + COMMAND_SECONDS + " s");
        }
      } catch (InterruptedException e) {
        p.destroyForcibly();
        Thread.currentThread().interrupt();
        throw new InterruptedIOException(String.join(" ", command) + " interrupted");
      }
      String text = Files.readString(out, StandardCharsets.UTF_8);
      if (p.exitValue() != 0) {
        throw new IOException(
            String.join(" ", command) + " failed (exit " + p.exitValue() + "): " + text.trim());
      }
      return text;
    } finally {
      Files.deleteIfExists(out);
    }
  }
}
