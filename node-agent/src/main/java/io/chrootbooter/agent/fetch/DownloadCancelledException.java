package io.chrootbooter.agent.fetch;

import java.io.InterruptedIOException;

/** A download stopped by {@link CancelSignal#cancel()}. */
public final class DownloadCancelledException extends InterruptedIOException {
  private static final long serialVersionUID = 1L;

  public DownloadCancelledException(String source, long bytes) {
    super("download of " + source + " cancelled after " + bytes + " bytes");
  }
}
