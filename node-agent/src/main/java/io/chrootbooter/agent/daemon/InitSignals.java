package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.pivot.Signals;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Which signal asks an image's init to power off: {@code SIGRTMIN+4} for systemd, {@code SIGUSR2}
 * for busybox init, {@code SIGTERM} for anything else (sysvinit). Decided by where the init, with
 * its symlinks resolved inside the root, leads.
 */
final class InitSignals {
  private InitSignals() {}

  static int gracefulSignal(Path root, String init) {
    String target = resolve(root, init);
    if (target.contains("systemd")) {
      return Signals.SIGRTMIN + 4;
    }
    if (target.endsWith("/busybox") || target.equals("busybox")) {
      return Signals.SIGUSR2;
    }
    return Signals.SIGTERM;
  }

  /** Follows symlinks as the root sees them (absolute links are relative to the root). */
  static String resolve(Path root, String init) {
    String path = init;
    for (int hops = 0; hops < 16; hops++) {
      Path inRoot = root.resolve(path.replaceFirst("^/+", ""));
      if (!Files.isSymbolicLink(inRoot)) {
        return path;
      }
      try {
        String link = Files.readSymbolicLink(inRoot).toString();
        path =
            link.startsWith("/") ? link : Path.of(path).resolveSibling(link).normalize().toString();
      } catch (IOException e) {
        return path;
      }
    }
    return path;
  }
}
