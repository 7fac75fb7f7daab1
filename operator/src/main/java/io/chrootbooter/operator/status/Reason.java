package io.chrootbooter.operator.status;

/** The {@code reason} of a condition or event: one CamelCase constant per cause. */
public enum Reason {
  /** A spec field breaks a rule of the API; the message names field, value and rule. */
  InvalidSpec,
  /** A BootTest holds the machine (condition HeldByTest); the message names it. */
  HeldByTest,
  /** A BootTest took a machine, or released it; the message says what it runs now. */
  TestSwitch,
  /** A BootTest is in progress (condition Running). */
  TestRunning,
  /** Every machine of a BootTest passed every check (condition Complete). */
  TestPassed,
  /** A machine of a BootTest failed a check or ended in Error (condition Failed). */
  TestFailed,
  /** No MachineBoot matches a BootTest's spec.machines (or spec.promote.promoteTo). */
  NoMachines,
  /** A passed BootTest starts promoting its image to the machines of spec.promote.promoteTo. */
  PromotionStarted,
  /** A batch of a promotion started or ended; the message names its machines. */
  PromotionBatch,
  /** A promotion stopped: it reached its failureThreshold, or its spec changed. */
  PromotionStopped,
  /** Every machine of a promotion had its turn (condition Promoted). */
  Promoted,
  /** A machine of a promotion failed and went back to its spec (condition RolledBack). */
  RolledBack,
  /** Another MachineBoot already claims the same MAC address. */
  DuplicateMacAddress,
  /** The BootImage named by imageRef does not exist (yet). */
  WaitingForImage,
  /** The BootImage exists but is not Ready. */
  ImageNotReady,
  /** The BootImage failed; the machine cannot boot it until it is fixed. */
  ImageFailed,
  /** The spec is valid and the image is known; no agent has reported yet. */
  WaitingForAgent,
  /** The agent is working towards the desired state (downloading, mounting, returning…). */
  Progressing,
  /** The declared image runs. */
  Running,
  /** The machine waits in the bootstrap, as declared. */
  InBootstrap,
  /** A human at the console returned the machine; the spec applies again when it changes. */
  ConsoleOverride,
  /** The agent reported a failure. */
  AgentFailed,
  /**
   * A block of the machine's running Lazy image failed its dm-verity check: the read failed, the
   * machine returned to the bootstrap; the message names the block.
   */
  VerityMismatch,
  /** The image is mirrored, verified and served by the operator. */
  ImageReady,
  /** The operator is downloading the image into its store. */
  Mirroring,
  /** The downloaded bytes do not have the declared SHA-256; they were deleted. */
  ChecksumMismatch,
  /**
   * The source answered with an HTTP status that retrying cannot change (404, 403…), or its host
   * (or that of a redirect) resolves to an address the operator refuses to fetch from.
   */
  SourceRejected,
  /** The bytes are not in the declared format. */
  FormatMismatch,
  /** The store has no room for the image. */
  InsufficientSpace,
  /** The download kept failing; it is retried when the spec changes. */
  MirrorFailed,
  /**
   * The https source's certificate is not signed by a trusted CA or does not name the host; tried
   * again when the spec or its caBundle Secret changes.
   */
  SourceUntrusted,
  /** The Secret named by spec.source.caBundle does not exist (yet) or cannot be read. */
  WaitingForCaBundle,
  /** The caBundle Secret lacks the key, or the key holds no PEM certificate. */
  InvalidCaBundle,
  /** An agent's report moved the machine to another phase; the message names both. */
  PhaseChanged,
  /**
   * The machine's agent has not been heard from for {@code cb.agent.lost-after}; the message says
   * when it last was. The phase still says what the machine was last doing.
   */
  AgentLost,
  /** The agent of a machine marked AgentLost was heard from again. */
  AgentBack,
  /** The agent reported another kernel boot id than the machine's status showed: it rebooted. */
  MachineRebooted,
  /**
   * A boot nonce was presented again after it had been exchanged for a session: a replay, or a
   * bystander that won the race against the machine. The message names both source addresses.
   */
  EnrolmentReplayed
}
