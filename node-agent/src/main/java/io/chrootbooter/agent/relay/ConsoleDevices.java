package io.chrootbooter.agent.relay;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Which devices the relay stands in for, from the kernel command line: each {@code console=NAME}
 * (options after a comma ignored) and {@code /dev/console}. Devices that are one terminal share one
 * relay, since two readers of one terminal would split what is typed between them: {@code
 * /dev/console} is the last of {@code /sys/class/tty/console/active} (the kernel's rule), and
 * {@code tty0} is the foreground virtual terminal ({@code /sys/class/tty/tty0/active}). Pure.
 */
public final class ConsoleDevices {
  /** The name of {@code /dev/console} in a plan. */
  public static final String CONSOLE = "console";

  /** One real device and the names under the target's {@code /dev} that stand for it. */
  public record Device(Path real, List<String> names) {
    public boolean isConsole() {
      return names.contains(CONSOLE);
    }
  }

  private ConsoleDevices() {}

  /**
   * The devices to relay.
   *
   * @param cmdline the bootstrap kernel's command line
   * @param targetConsole the console the agent gives a target ({@code --target-console})
   * @param dev the bootstrap's {@code /dev}
   * @param consoleActive {@code /sys/class/tty/console/active}, when readable
   * @param foregroundVt {@code /sys/class/tty/tty0/active} ({@code tty1}), when readable
   * @param excluded devices the relay must not read (the serial trigger's port)
   */
  public static List<Device> plan(
      String cmdline,
      Path targetConsole,
      Path dev,
      Optional<String> consoleActive,
      Optional<String> foregroundVt,
      Set<Path> excluded) {
    Optional<String> vt = foregroundVt.map(String::strip).filter(ConsoleDevices::validName);
    Map<Path, List<String>> byReal = new LinkedHashMap<>();
    Path consoleReal = targetConsole;
    if (targetConsole.equals(dev.resolve(CONSOLE))) {
      Optional<String> last =
          consoleActive
              .map(String::strip)
              .filter(s -> !s.isEmpty())
              .map(s -> s.split("\\s+"))
              .map(words -> words[words.length - 1])
              .filter(ConsoleDevices::validName);
      if (last.isPresent()) {
        consoleReal = dev.resolve(canonical(last.get(), vt));
      }
    }
    byReal.computeIfAbsent(consoleReal, k -> new ArrayList<>()).add(CONSOLE);
    for (String name : consoleNames(cmdline)) {
      String real = canonical(name, vt);
      List<String> names = byReal.computeIfAbsent(dev.resolve(real), k -> new ArrayList<>());
      for (String n : name.equals(real) ? List.of(name) : List.of(name, real)) {
        if (!names.contains(n)) {
          names.add(n);
        }
      }
    }
    List<Device> plan = new ArrayList<>();
    for (Map.Entry<Path, List<String>> e : byReal.entrySet()) {
      if (!excluded.contains(e.getKey())) {
        plan.add(new Device(e.getKey(), List.copyOf(e.getValue())));
      }
    }
    return List.copyOf(plan);
  }

  /** The device names of the command line's {@code console=} words, in order, each once. */
  static List<String> consoleNames(String cmdline) {
    List<String> names = new ArrayList<>();
    for (String word : cmdline.strip().split("\\s+")) {
      if (!word.startsWith("console=")) {
        continue;
      }
      String name = word.substring("console=".length());
      int comma = name.indexOf(',');
      if (comma >= 0) {
        name = name.substring(0, comma);
      }
      if (validName(name) && !names.contains(name)) {
        names.add(name);
      }
    }
    return names;
  }

  /** A terminal's name: {@code tty} or {@code hvc} and up to 16 letters or digits. */
  static boolean validName(String name) {
    return name.matches("(tty|hvc)[A-Za-z0-9]{0,16}") && !name.equals("tty");
  }

  private static String canonical(String name, Optional<String> vt) {
    return name.equals("tty0") && vt.isPresent() ? vt.get() : name;
  }
}
