package io.chrootbooter.agent.pivot;

import java.io.IOException;

/** Sending signals by number, which {@link ProcessHandle} cannot (it knows only TERM and KILL). */
public interface Signals {
  int SIGHUP = 1;
  int SIGINT = 2;
  int SIGKILL = 9;
  int SIGUSR2 = 12;
  int SIGTERM = 15;

  /**
   * glibc's {@code SIGRTMIN}: the kernel's 32 plus the two glibc reserves for itself (signal(7)).
   * systemd, linked against glibc, reads {@code SIGRTMIN+4} as "power off".
   */
  int SIGRTMIN = 34;

  /** kill(2); a process that is already gone is not an error. */
  void kill(long pid, int signal) throws IOException;

  /**
   * Parses {@code SIGTERM}, {@code TERM}, {@code SIGRTMIN+4}, {@code 12}.
   *
   * @throws IllegalArgumentException naming the accepted forms
   */
  static int parse(String name) {
    String n = name.strip().toUpperCase(java.util.Locale.ROOT);
    if (n.startsWith("SIG")) {
      n = n.substring(3);
    }
    if (n.matches("[0-9]+")) {
      return Integer.parseInt(n);
    }
    if (n.startsWith("RTMIN+") && n.substring(6).matches("[0-9]+")) {
      return SIGRTMIN + Integer.parseInt(n.substring(6));
    }
    return switch (n) {
      case "HUP" -> SIGHUP;
      case "INT" -> SIGINT;
      case "KILL" -> SIGKILL;
      case "USR2" -> SIGUSR2;
      case "TERM" -> SIGTERM;
      case "RTMIN" -> SIGRTMIN;
      default ->
          throw new IllegalArgumentException(
              "signal \""
                  + name
                  + "\" is not one of SIGHUP, SIGINT, SIGKILL, SIGUSR2, SIGTERM, SIGRTMIN+n or a"
                  + " number");
    };
  }
}
