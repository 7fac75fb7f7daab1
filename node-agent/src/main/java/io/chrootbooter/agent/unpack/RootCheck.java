package io.chrootbooter.agent.unpack;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;

/**
 * Pre-flight checks of a prepared root before anything pivots into it: the init exists, is an
 * executable regular file (symlinks resolved inside the root, as they will be after the pivot,
 * never outside), is an ELF of this machine's class and architecture (or a {@code #!} script whose
 * interpreter is), and the mount points the target needs are directories or can be made.
 */
public final class RootCheck {

  /** Directories the pivot mounts into. */
  public static final List<String> MOUNT_POINTS = List.of("/proc", "/sys", "/dev", "/run");

  /** SYMLOOP_MAX as path_resolution(7) applies it. */
  private static final int MAX_LINKS = 40;

  /** e_machine values from elf(5) / the System V ABI. */
  private static final Map<Integer, String> MACHINES =
      Map.of(
          3, "i386", 40, "arm", 62, "x86_64", 183, "aarch64", 243, "riscv64", 21, "ppc64", 22,
          "s390x");

  /**
   * The machine executables must run on.
   *
   * @param bits 32 or 64 (ELF {@code EI_CLASS})
   * @param elfMachine ELF {@code e_machine}
   */
  public record Machine(int bits, int elfMachine) {
    /** This JVM's machine, from {@code os.arch}. */
    public static Machine current() {
      return switch (System.getProperty("os.arch")) {
        case "amd64", "x86_64" -> new Machine(64, 62);
        case "aarch64" -> new Machine(64, 183);
        case "riscv64" -> new Machine(64, 243);
        case "x86", "i386" -> new Machine(32, 3);
        case "arm" -> new Machine(32, 40);
        default ->
            throw new IllegalStateException("unknown os.arch " + System.getProperty("os.arch"));
      };
    }

    @Override
    public String toString() {
      return MACHINES.getOrDefault(elfMachine, "e_machine " + elfMachine);
    }
  }

  /** A prepared root that must not be pivoted into. */
  public static final class RootCheckException extends IOException {
    private static final long serialVersionUID = 1L;

    RootCheckException(String message) {
      super(message);
    }
  }

  private RootCheck() {}

  /** Runs every check; the first failure is thrown naming the check. */
  public static void check(Path root, String init, Machine machine) throws IOException {
    checkInitPath(init);
    checkExecutable(root, init, machine, 0);
    for (String point : MOUNT_POINTS) {
      // Never resolved: the enter step mounts on the path itself, so a symbolic link there (which
      // the bootstrap would follow, not the target) is refused, whatever it points to.
      Path path = root.resolve(point.substring(1));
      BasicFileAttributes attrs = TarExtractor.lstat(path);
      if (attrs == null) {
        continue;
      }
      if (attrs.isSymbolicLink()) {
        throw new RootCheckException(
            "mount point "
                + point
                + " is a symbolic link (to "
                + Files.readSymbolicLink(path)
                + ")");
      }
      if (!attrs.isDirectory()) {
        throw new RootCheckException("mount point " + point + " is not a directory");
      }
    }
  }

  /**
   * The init must be named by an absolute path of plain components: no {@code .} or {@code ..}
   * (which, resolved by the bootstrap, would lead elsewhere than in the target), no empty
   * component, no control character.
   */
  static void checkInitPath(String init) throws RootCheckException {
    if (!init.startsWith("/") || init.length() > 4096) {
      throw new RootCheckException("init \"" + printable(init) + "\" is not an absolute path");
    }
    for (String part : init.substring(1).split("/", -1)) {
      if (part.isEmpty() || part.equals(".") || part.equals("..")) {
        throw new RootCheckException(
            "init \""
                + printable(init)
                + "\" has an empty, \".\" or \"..\" component; name it by its plain absolute path");
      }
    }
    if (!init.chars().allMatch(c -> c >= 0x20 && c != 0x7f)) {
      throw new RootCheckException("init \"" + printable(init) + "\" holds a control character");
    }
  }

  private static String printable(String s) {
    String p = s.replaceAll("[^\\x20-\\x7e]", "?");
    return p.length() > 200 ? p.substring(0, 200) + "..." : p;
  }

  private static void checkExecutable(Path root, String program, Machine machine, int depth)
      throws IOException {
    Path path = resolveInRoot(root, program);
    PosixFileAttributes attrs;
    try {
      attrs = Files.readAttributes(path, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (java.nio.file.NoSuchFileException e) {
      throw new RootCheckException(program + " does not exist in the image");
    }
    if (!attrs.isRegularFile()) {
      throw new RootCheckException(program + " is not a regular file");
    }
    if (!attrs.permissions().contains(PosixFilePermission.OWNER_EXECUTE)
        && !attrs.permissions().contains(PosixFilePermission.GROUP_EXECUTE)
        && !attrs.permissions().contains(PosixFilePermission.OTHERS_EXECUTE)) {
      throw new RootCheckException(program + " is not executable (mode has no x bit)");
    }
    byte[] head = new byte[256];
    int n;
    try (InputStream in = Files.newInputStream(path, LinkOption.NOFOLLOW_LINKS)) {
      n = in.readNBytes(head, 0, head.length);
    }
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
      if (depth >= 4) {
        throw new RootCheckException(program + ": #! interpreters nest deeper than 4 (execve(2))");
      }
      String line = new String(head, 2, n - 2, StandardCharsets.UTF_8).split("\n", 2)[0].trim();
      String interpreter = line.split("\\s+", 2)[0];
      if (!interpreter.startsWith("/")) {
        throw new RootCheckException(
            program + ": #! interpreter \"" + interpreter + "\" is not absolute");
      }
      checkExecutable(root, interpreter, machine, depth + 1);
      return;
    }
    if (n < 20 || head[0] != 0x7f || head[1] != 'E' || head[2] != 'L' || head[3] != 'F') {
      throw new RootCheckException(program + " is neither an ELF executable nor a #! script");
    }
    int bits = head[4] == 2 ? 64 : head[4] == 1 ? 32 : 0;
    ByteOrder order = head[5] == 2 ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
    int elfMachine = ByteBuffer.wrap(head, 18, 2).order(order).getShort() & 0xffff;
    Machine found = new Machine(bits, elfMachine);
    if (elfMachine != machine.elfMachine()) {
      throw new RootCheckException(
          program + " is an " + found + " ELF; this machine is " + machine);
    }
    if (bits != machine.bits()) {
      throw new RootCheckException(
          program
              + " is a "
              + bits
              + "-bit ELF; this machine runs "
              + machine.bits()
              + "-bit "
              + machine);
    }
  }

  /**
   * Resolves {@code path} the way the kernel will after the pivot, with {@code root} as "/":
   * absolute symlinks restart at {@code root}, {@code ..} never climbs above it (like openat2(2)
   * {@code RESOLVE_IN_ROOT}). The result is always inside {@code root}.
   */
  public static Path resolveInRoot(Path root, String path) throws IOException {
    Deque<String> todo = new ArrayDeque<>();
    push(todo, path);
    Deque<String> done = new ArrayDeque<>();
    int links = 0;
    while (!todo.isEmpty()) {
      String part = todo.pop();
      if (part.isEmpty() || part.equals(".")) {
        continue;
      }
      if (part.equals("..")) {
        done.pollLast();
        continue;
      }
      Path candidate = join(root, done).resolve(part);
      if (Files.isSymbolicLink(candidate)) {
        if (++links > MAX_LINKS) {
          throw new RootCheckException(path + ": more than " + MAX_LINKS + " symlinks (ELOOP)");
        }
        String target = Files.readSymbolicLink(candidate).toString();
        if (target.startsWith("/")) {
          done.clear();
        }
        push(todo, target);
      } else {
        done.addLast(part);
      }
    }
    return join(root, done);
  }

  private static void push(Deque<String> todo, String path) {
    String[] parts = path.split("/");
    for (int i = parts.length - 1; i >= 0; i--) {
      todo.push(parts[i]);
    }
  }

  private static Path join(Path root, Deque<String> parts) {
    Path result = root;
    for (String part : parts) {
      result = result.resolve(part);
    }
    return result;
  }
}
