package io.chrootbooter.operator.image;

import io.chrootbooter.operator.status.Reason;

/**
 * A download that retrying cannot fix: the BootImage is marked Failed with {@link #reason()} and is
 * tried again only when its spec changes.
 */
public class MirrorFailure extends RuntimeException {
  private final Reason reason;

  public MirrorFailure(Reason reason, String message) {
    super(message);
    this.reason = reason;
  }

  public Reason reason() {
    return reason;
  }
}
