package io.chrootbooter.agent.fetch;

import java.io.IOException;

/** The image's SHA-256 is not the declared one: the image is discarded, never used. */
public final class DigestMismatchException extends IOException {
  private static final long serialVersionUID = 1L;

  public DigestMismatchException(String source, String actual, String expected) {
    super("sha256 of " + source + " is " + actual + "; expected " + expected);
  }
}
