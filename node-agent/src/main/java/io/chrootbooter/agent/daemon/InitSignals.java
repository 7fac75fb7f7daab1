package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.pivot.Signals;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.OptionalInt;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which signal asks an image's init to power off: the BootImage's {@code spec.stop.signal} when it
 * names one ({@link #powerOffSignal}); otherwise {@code SIGRTMIN+4} for systemd, {@code SIGUSR2}
 * for busybox init, {@code SIGTERM} for anything else (sysvinit), decided by where the init, with
 * its symlinks resolved inside the root, leads ({@link #gracefulSignal}).
 */
final class InitSignals {
  /** The names a BootImage may give, with their numbers on Linux (signal(7), x86 and arm). */
  private static final Map<String, Integer> POWER_OFF =
      Map.of(
          "SIGHUP", Signals.SIGHUP,
          "SIGINT", Signals.SIGINT,
          "SIGQUIT", 3,
          "SIGUSR1", 10,
          "SIGUSR2", Signals.SIGUSR2,
          "SIGTERM", Signals.SIGTERM,
          "SIGPWR", 30);

  private static final Pattern RTMIN = Pattern.compile("SIGRTMIN\\+([0-9]|[12][0-9]|30)");

  private InitSignals() {}

  /**
   * The number of a power-off signal named as the BootImage API names it ({@code SIGTERM}, {@code
   * SIGRTMIN+4}); empty for anything else, SIGKILL and SIGSTOP included (no request to power off).
   */
  static OptionalInt powerOffSignal(String name) {
    Integer known = POWER_OFF.get(name);
    if (known != null) {
      return OptionalInt.of(known);
    }
    Matcher rt = RTMIN.matcher(name);
    return rt.matches()
        ? OptionalInt.of(Signals.SIGRTMIN + Integer.parseInt(rt.group(1)))
        : OptionalInt.empty();
  }

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
