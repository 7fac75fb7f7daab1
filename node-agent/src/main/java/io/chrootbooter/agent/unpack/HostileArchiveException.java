package io.chrootbooter.agent.unpack;

import java.io.IOException;

/**
 * An archive entry that would write outside the new root, or that the extractor refuses for safety;
 * the message names the entry and the rule.
 */
public final class HostileArchiveException extends IOException {
  private static final long serialVersionUID = 1L;

  public HostileArchiveException(String entry, String reason) {
    super("archive entry \"" + entry + "\" refused: " + reason);
  }
}
