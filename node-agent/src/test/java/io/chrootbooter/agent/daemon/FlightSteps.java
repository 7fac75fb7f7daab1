package io.chrootbooter.agent.daemon;

import java.util.List;

/** The flight recorder's step sequences the agent's tests expect, written once. */
final class FlightSteps {
  /** A machine's first boot: from the agent's start to the image's health report. */
  static final List<String> FIRST_BOOT =
      List.of(
          "agent-up",
          "enrolled",
          "desired-state",
          "download",
          "verify",
          "mount",
          "pivot-root",
          "init-exec",
          "healthy");

  /**
   * A switch to another image whose running image had to be killed: its return, then the next
   * image's load, to that image's health report.
   */
  static final List<String> FORCED_SWITCH =
      List.of(
          "desired-state",
          "return-trigger",
          "grace",
          "forced",
          "teardown",
          "bootstrap-ready",
          "download",
          "verify",
          "mount",
          "pivot-root",
          "init-exec",
          "healthy");

  private FlightSteps() {}
}
