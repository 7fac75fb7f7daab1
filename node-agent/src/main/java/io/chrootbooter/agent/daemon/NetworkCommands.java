package io.chrootbooter.agent.daemon;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * How the network restore reaches the network namespace it works on: busybox's applets ({@code ip},
 * {@code sysctl}) through a command prefix, netlink sockets made in the namespace, and its {@code
 * /proc/…/net}. In the bootstrap that is the agent's own namespace (the machine's); tests prefix
 * the commands with nsenter(1) and name a namespace of their own.
 *
 * @param busybox the command that runs busybox: {@code /bin/busybox}, or {@code nsenter --net=…
 *     /bin/busybox}
 * @param netns the namespace's {@code /proc/PID/ns/net} file; empty for the agent's own
 * @param procNet the namespace's {@code /proc/…/net} directory (legacy iptables' table names)
 */
record NetworkCommands(List<String> busybox, Optional<Path> netns, Path procNet) {
  private static final Logger LOG = Logger.getLogger(NetworkCommands.class);

  NetworkCommands {
    busybox = List.copyOf(busybox);
  }

  /** The agent's own namespace, with {@code busybox}. */
  static NetworkCommands own(Path busybox) {
    return new NetworkCommands(
        List.of(busybox.toString()), Optional.empty(), Path.of("/proc/self/net"));
  }

  /** The namespace {@code pid} is in, entered with nsenter(1). */
  static NetworkCommands of(long pid, Path busybox) {
    Path ns = Path.of("/proc", Long.toString(pid), "ns", "net");
    return new NetworkCommands(
        List.of("nsenter", "--net=" + ns, busybox.toString()),
        Optional.of(ns),
        Path.of("/proc", Long.toString(pid), "net"));
  }

  /** What {@code busybox APPLET ARGS} prints on stdout; empty when it fails. */
  Optional<String> output(String applet, List<String> args) {
    return output(applet, args, false);
  }

  /**
   * What {@code busybox APPLET ARGS} prints on stdout, also when it exits with an error ({@code
   * sysctl net} does for the keys that cannot be read, such as an unset {@code stable_secret}).
   */
  String outputAnyway(String applet, List<String> args) {
    return output(applet, args, true).orElse("");
  }

  private Optional<String> output(String applet, List<String> args, boolean anyway) {
    List<String> command = command(applet, args);
    try {
      Process p =
          new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.DISCARD).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      return p.waitFor() == 0 || anyway ? Optional.of(out) : Optional.empty();
    } catch (IOException e) {
      LOG.warnf("restoring the network: %s: %s", String.join(" ", command), e.getMessage());
      return Optional.empty();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Optional.empty();
    }
  }

  /**
   * Runs {@code busybox APPLET ARGS}; when it fails, adds {@code "APPLET ARGS: what it printed"} to
   * {@code failed}.
   */
  void run(List<String> failed, String applet, List<String> args) {
    String shown = applet + " " + String.join(" ", args);
    try {
      Process p = new ProcessBuilder(command(applet, args)).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      if (p.waitFor() != 0) {
        failed.add(shown + ": " + out);
      }
    } catch (IOException e) {
      failed.add(shown + ": " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      failed.add(shown + ": interrupted");
    }
  }

  private List<String> command(String applet, List<String> args) {
    List<String> command = new ArrayList<>(busybox);
    command.add(applet);
    command.addAll(args);
    return command;
  }
}
