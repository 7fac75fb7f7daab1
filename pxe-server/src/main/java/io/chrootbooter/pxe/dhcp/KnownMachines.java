package io.chrootbooter.pxe.dhcp;

/** Whether the operator has a MachineBoot for a MAC; may block on I/O, so never called inline. */
@FunctionalInterface
public interface KnownMachines {
  /**
   * @param mac lower-case colon form, e.g. {@code 52:54:00:12:34:56}
   */
  boolean isKnown(String mac);
}
