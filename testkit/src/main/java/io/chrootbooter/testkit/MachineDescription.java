package io.chrootbooter.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/**
 * A lab machine as {@code machine.properties} describes it, the file {@code ./lab} reads too: the
 * MAC and address of machine number {@code n} (m1 is 1), and QEMU's machine, CPU, processors,
 * memory and NIC.
 */
public record MachineDescription(
    String macPrefix,
    int macFirst,
    int addressFirst,
    String machine,
    String cpu,
    int smp,
    int memoryMib,
    String nic) {

  /** The description in this module's {@code machine.properties}. */
  public static MachineDescription lab() {
    Properties p = new Properties();
    try (InputStream in = MachineDescription.class.getResourceAsStream("machine.properties")) {
      if (in == null) {
        throw new IllegalStateException(
            "machine.properties is missing beside " + MachineDescription.class);
      }
      p.load(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new MachineDescription(
        get(p, "mac.prefix"),
        Integer.parseInt(get(p, "mac.first")),
        Integer.parseInt(get(p, "address.first")),
        get(p, "qemu.machine"),
        get(p, "qemu.cpu"),
        Integer.parseInt(get(p, "qemu.smp")),
        Integer.parseInt(get(p, "qemu.memory")),
        get(p, "qemu.nic"));
  }

  private static String get(Properties p, String key) {
    String value = p.getProperty(key);
    if (value == null || value.isBlank()) {
      throw new IllegalStateException("machine.properties has no " + key);
    }
    return value.strip();
  }

  /** The MAC of machine {@code n}: {@code 52:54:00:12:34:56} for m1. */
  public String mac(int n) {
    int last = macFirst + n;
    if (n < 1 || last > 0xff) {
      throw new IllegalArgumentException("machine number " + n + " has no MAC in this lab");
    }
    return String.format("%s:%02x", macPrefix, last);
  }

  /**
   * The fixed address of machine {@code n} in {@code subnet} (three octets): {@code .101} for m1.
   */
  public String address(String subnet, int n) {
    int last = addressFirst + n;
    if (n < 1 || last > 254) {
      throw new IllegalArgumentException("machine number " + n + " has no address in this lab");
    }
    return subnet + "." + last;
  }
}
