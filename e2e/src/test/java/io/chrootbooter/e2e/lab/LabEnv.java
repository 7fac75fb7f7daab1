package io.chrootbooter.e2e.lab;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * What {@code ./lab up} wrote to {@code $LAB_STATE/lab.env}: one {@code KEY=VALUE} per line, values
 * without spaces or quotes (the script refuses to write others).
 */
record LabEnv(Map<String, String> values) {

  LabEnv {
    values = Map.copyOf(values);
  }

  static LabEnv read(Path file) throws IOException {
    Map<String, String> values = new LinkedHashMap<>();
    for (String line : Files.readAllLines(file)) {
      int eq = line.indexOf('=');
      if (eq > 0) {
        values.put(line.substring(0, eq), line.substring(eq + 1));
      }
    }
    return new LabEnv(values);
  }

  /** The value of KEY; the lab always writes the keys this test reads. */
  String get(String key) {
    String value = values.get(key);
    if (value == null) {
      throw new IllegalStateException("lab.env has no " + key + "; it has " + values.keySet());
    }
    return value;
  }

  /** The value of KEY, if the lab wrote it (it writes some keys only for what it set up). */
  Optional<String> find(String key) {
    return Optional.ofNullable(values.get(key));
  }

  Path kubeconfig() {
    return Path.of(get("KUBECONFIG_FILE"));
  }

  /** A machine's folder: console.sock, console.log, serial1.sock, monitor.sock. */
  Path machineDir(String machine) {
    return Path.of(get(machine.toUpperCase(Locale.ROOT) + "_DIR"));
  }

  String ip(String machine) {
    return get(machine.toUpperCase(Locale.ROOT) + "_IP");
  }

  String mac(String machine) {
    return get(machine.toUpperCase(Locale.ROOT) + "_MAC");
  }
}
