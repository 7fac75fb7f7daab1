package io.chrootbooter.agent.unpack;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Mounts through util-linux or busybox mount(8)/umount(8): they set up loop devices with {@code
 * LOOP_CONFIGURE} and autoclear (loop(4)), which a multithreaded JVM would otherwise have to do by
 * ioctl. Failures name the command and carry its message.
 */
public final class Mounts {
  private Mounts() {}

  /** {@code mount -t TYPE -o OPTIONS SOURCE TARGET}. */
  public static void mount(String type, String options, String source, Path target)
      throws IOException {
    run(List.of("mount", "-t", type, "-o", options, source, target.toString()));
  }

  /** {@code mount -o OPTIONS SOURCE TARGET}, the filesystem type detected by mount(8). */
  public static void mountDetect(String options, String source, Path target) throws IOException {
    run(List.of("mount", "-o", options, source, target.toString()));
  }

  /**
   * Binds {@code source} onto {@code target} read-only: {@code mount -o bind}, then {@code mount -o
   * remount,bind,ro} (a bind mount takes no {@code ro} in its first call). On failure nothing stays
   * mounted.
   */
  public static void bindReadOnly(Path source, Path target) throws IOException {
    run(List.of("mount", "-o", "bind", source.toString(), target.toString()));
    try {
      run(List.of("mount", "-o", "remount,bind,ro", target.toString()));
    } catch (IOException e) {
      try {
        umount(target);
      } catch (IOException again) {
        e.addSuppressed(again);
      }
      throw e;
    }
  }

  /** {@code umount TARGET}; with a loop mount the autoclear loop device goes with it. */
  public static void umount(Path target) throws IOException {
    run(List.of("umount", target.toString()));
  }

  /** The mount points at or below {@code dir}, from proc(5) {@code /proc/self/mountinfo}. */
  public static List<Path> mountsBelow(Path dir) throws IOException {
    List<Path> result = new ArrayList<>();
    Path normalized = dir.toAbsolutePath().normalize();
    for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
      String[] fields = line.split(" ");
      Path point = Path.of(unescape(fields[4]));
      if (point.startsWith(normalized)) {
        result.add(point);
      }
    }
    return List.copyOf(result);
  }

  /** mountinfo escapes space, tab, newline and backslash as octal {@code \\040}. */
  private static String unescape(String field) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < field.length(); i++) {
      char c = field.charAt(i);
      if (c == '\\' && i + 3 < field.length()) {
        out.append((char) Integer.parseInt(field.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }

  private static void run(List<String> command) throws IOException {
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output;
    try {
      output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      if (!process.waitFor(60, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new IOException(String.join(" ", command) + ": no exit after 60 s");
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new InterruptedIOException(String.join(" ", command) + ": interrupted");
    }
    if (process.exitValue() != 0) {
      throw new IOException(
          String.join(" ", command)
              + ": exit "
              + process.exitValue()
              + (output.isEmpty() ? "" : ": " + output));
    }
  }
}
