package io.chrootbooter.cli;

/** The exit codes of {@code kubectl boot}, as the README lists them. */
final class Exit {

  /** It did what was asked: the machine runs the image, the test passed, the console detached. */
  static final int OK = 0;

  /** What was asked ran and failed: the machine failed, the test failed, the console broke off. */
  static final int FAILED = 1;

  /** The command line is wrong. */
  static final int USAGE = 2;

  /**
   * The API server or the operator could not be reached, or refused (401, 403, no operator found).
   */
  static final int UNREACHABLE = 3;

  /** The machine, image, test or recorded console does not exist. */
  static final int NOT_FOUND = 4;

  /** {@code --wait} ran out of time. */
  static final int TIMEOUT = 5;

  private Exit() {}
}
