package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/** Shared test helpers: running tools, skipping without them, describing trees. */
public final class Fixtures {
  private Fixtures() {}

  /** Skips the test unless it runs as root (owners, device nodes, mounts need it). */
  public static void assumeRoot() {
    Assumptions.assumeTrue(
        "root".equals(System.getProperty("user.name")), "needs root: owners, mknod and mounts");
  }

  /** Skips the test unless {@code tool} is on the PATH, naming the Debian package. */
  public static void assumeTool(String tool, String debianPackage) {
    boolean found =
        Stream.of(System.getenv("PATH").split(":"))
            .anyMatch(dir -> Files.isExecutable(Path.of(dir, tool)));
    Assumptions.assumeTrue(
        found, tool + " is not installed (Debian package " + debianPackage + ")");
  }

  /** Runs a command, failing the test with its output when it exits non-zero. */
  public static String run(Path dir, String... command) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("%s finished", List.of(command)).isTrue();
    assertThat(p.exitValue()).as("%s exit code; output: %s", List.of(command), out).isZero();
    return out;
  }

  /**
   * Everything a root filesystem keeps, per relative path: type and mode, owner, size, mtime,
   * device number, link target, hard-link group and xattrs (getfattr(1) {@code -m -}, hex).
   */
  static Map<String, String> manifest(Path root) throws IOException, InterruptedException {
    Map<String, String> result = new TreeMap<>();
    Map<Object, String> firstByInode = new TreeMap<>();
    List<Path> paths;
    try (Stream<Path> walk = Files.walk(root)) {
      paths = walk.sorted().toList();
    }
    for (Path path : paths) {
      String rel = root.relativize(path).toString();
      Map<String, Object> a = Files.readAttributes(path, "unix:*", LinkOption.NOFOLLOW_LINKS);
      StringBuilder line = new StringBuilder();
      line.append(
          String.format("mode=%o uid=%s gid=%s", a.get("mode"), a.get("uid"), a.get("gid")));
      boolean dir = Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS);
      if (!dir) {
        line.append(" size=").append(a.get("size"));
      }
      if (!rel.isEmpty()) {
        line.append(" mtime=").append(a.get("lastModifiedTime"));
      }
      line.append(" rdev=").append(a.get("rdev"));
      if (Files.isSymbolicLink(path)) {
        line.append(" -> ").append(Files.readSymbolicLink(path));
      }
      if (!dir && ((Integer) a.get("nlink")) > 1) {
        String first = firstByInode.putIfAbsent(((Number) a.get("ino")).longValue(), rel);
        line.append(" hardlink-group=").append(first == null ? rel : first);
      }
      result.put(rel.isEmpty() ? "." : rel, line.toString());
    }
    String xattrs = run(root, "getfattr", "-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", ".");
    List<String> blocks = new ArrayList<>();
    for (String block : xattrs.split("\n\n")) {
      if (!block.isBlank()) {
        blocks.add(block.trim());
      }
    }
    result.put("(xattrs)", String.join("\n", blocks.stream().sorted().toList()));
    return result;
  }
}
