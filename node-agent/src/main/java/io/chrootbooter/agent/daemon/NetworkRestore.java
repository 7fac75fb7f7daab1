package io.chrootbooter.agent.daemon;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Puts the bootstrap's network back after a target ran: the target shares the machine's network
 * namespace (it owns the real NIC), so it may have flushed addresses, taken the link down or
 * replaced the default route. The lease that the bootstrap's DHCP client recorded ({@code CB_NET_*}
 * from {@code /run/bootstrap/net.env}) is applied again with {@code ip … replace}, which changes
 * nothing when nothing was changed.
 *
 * @param iface the boot interface
 * @param address the leased address with its prefix, e.g. {@code 10.77.0.50/24}
 * @param router the default gateway, empty when the lease had none
 */
record NetworkRestore(Path busybox, String iface, String address, Optional<String> router) {
  private static final Logger LOG = Logger.getLogger(NetworkRestore.class);

  /** From the lease variables, empty when the bootstrap had no lease. */
  static Optional<NetworkRestore> fromLease(Path busybox, java.util.Map<String, String> env) {
    String iface = env.getOrDefault("CB_NET_IFACE", "");
    String ip = env.getOrDefault("CB_NET_IP", "");
    String mask = env.getOrDefault("CB_NET_MASK", "24");
    if (!iface.matches("[A-Za-z0-9_.:-]{1,15}") || !ip.matches("[0-9.]{7,15}")) {
      return Optional.empty();
    }
    String router = env.getOrDefault("CB_NET_ROUTER", "");
    return Optional.of(
        new NetworkRestore(
            busybox,
            iface,
            ip + "/" + (mask.matches("[0-9]{1,2}") ? mask : "24"),
            router.matches("[0-9.]{7,15}") ? Optional.of(router) : Optional.empty()));
  }

  /** The commands that restore the lease. */
  List<List<String>> commands() {
    String bb = busybox.toString();
    List<List<String>> commands = new ArrayList<>();
    commands.add(List.of(bb, "ip", "link", "set", iface, "up"));
    commands.add(List.of(bb, "ip", "addr", "replace", address, "dev", iface));
    router.ifPresent(
        r ->
            commands.add(List.of(bb, "ip", "route", "replace", "default", "via", r, "dev", iface)));
    return commands;
  }

  /** Applies the lease again; a failing command is logged, the rest still run. */
  void restore() {
    for (List<String> command : commands()) {
      try {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes()).strip();
        if (p.waitFor() != 0) {
          LOG.warnf(
              "restoring the network: %s: %s",
              String.join(" ", command.subList(1, command.size())), out);
        }
      } catch (IOException e) {
        LOG.warnf("restoring the network: %s", e.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }
}
