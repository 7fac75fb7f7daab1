package io.chrootbooter.testkit;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/** What a fixture asks of the host: tools on the PATH, root, commands that must succeed. */
public final class Host {
  private Host() {}

  /**
   * Whether {@code tool} is an executable on the PATH, or in /usr/sbin or /sbin, where Debian puts
   * dnsmasq and ip (a root shell has them on its PATH).
   */
  public static boolean onPath(String tool) {
    for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (!d.isEmpty() && Files.isExecutable(Path.of(d, tool))) {
        return true;
      }
    }
    return Files.isExecutable(Path.of("/usr/sbin", tool))
        || Files.isExecutable(Path.of("/sbin", tool));
  }

  /** The first of {@code tools} that is not on the PATH. */
  public static Optional<String> missing(List<String> tools) {
    return tools.stream().filter(t -> !onPath(t)).findFirst();
  }

  /** Whether this process runs as root (the user namespaces' root counts). */
  public static boolean isRoot() {
    try {
      return "0".equals(run("id", "-u").strip());
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * Why network namespaces cannot be made here, or empty when they can: not root, {@code ip}
   * missing, or {@code ip netns add} refused (a container without the privilege).
   */
  public static Optional<String> cannotMakeNamespaces() {
    if (!isRoot()) {
      return Optional.of("needs root for network namespaces");
    }
    if (!onPath("ip")) {
      return Optional.of("ip is not on the PATH (Debian: apt-get install iproute2)");
    }
    String probe = "cbprobe-" + ProcessHandle.current().pid();
    try {
      run("ip", "netns", "add", probe);
      run("ip", "netns", "del", probe);
      return Optional.empty();
    } catch (IOException e) {
      return Optional.of("cannot create network namespaces here: " + e.getMessage());
    }
  }

  /** Runs {@code command} to its end (at most 30 s); its output, or an exception naming it. */
  public static String run(String... command) throws IOException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException(String.join(" ", command) + " did not end within 30 s");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroyForcibly();
      throw new IOException("interrupted while running " + String.join(" ", command), e);
    }
    if (p.exitValue() != 0) {
      throw new IOException(
          String.join(" ", command) + " failed (exit " + p.exitValue() + "): " + out.strip());
    }
    return out;
  }
}
