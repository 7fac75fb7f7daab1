package io.chrootbooter.pxe.dhcp;

/** What {@link ProxyDhcpPolicy} makes of a request: a {@link Reply}, or {@link Ignored} and why. */
public sealed interface Decision permits Reply, Decision.Ignored {

  /**
   * No answer, and why, for one debug log line.
   *
   * @param reason what was seen and what would have been accepted
   */
  record Ignored(String reason) implements Decision {}
}
