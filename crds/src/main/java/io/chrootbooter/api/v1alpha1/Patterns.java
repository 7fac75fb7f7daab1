package io.chrootbooter.api.v1alpha1;

import io.chrootbooter.protocol.GoDuration;

/**
 * The regular expressions of the API schema. They are used twice: in the generated CRD (the API
 * server enforces them) and by the reconcilers and the agent, which never trust that the API server
 * did. Each is valid in both Go's RE2 and {@link java.util.regex}.
 */
public final class Patterns {
  /** A MAC address in lower-case colon notation, the only form stored in a spec. */
  public static final String MAC = "^([0-9a-f]{2}:){5}[0-9a-f]{2}$";

  /** A SHA-256 digest: 64 lower-case hex digits. */
  public static final String SHA256 = "^[0-9a-f]{64}$";

  /** An http or https URL without whitespace or quoting characters. */
  public static final String HTTP_URL = "^https?://[A-Za-z0-9._~:/?#\\[\\]@!()*+,;=%-]+$";

  /**
   * One kernel argument: letters, digits and {@code _ . : / , = + @ -}, not starting with {@code -}
   * (a {@code --} would hand the rest of the command line to init). No whitespace, quotes, {@code $
   * { } ; | &} or backticks: nothing iPXE or a shell would interpret.
   */
  public static final String KERNEL_ARG = "^[A-Za-z0-9_.][A-Za-z0-9_.:/,=+@-]{0,255}$";

  /** An absolute path inside the image, used for {@code init}. */
  public static final String ABSOLUTE_PATH = "^/[A-Za-z0-9._+/-]{0,255}$";

  /** A Kubernetes object name (RFC 1123 subdomain). */
  public static final String OBJECT_NAME = "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$";

  /** A key of a Secret's or ConfigMap's data (Kubernetes {@code IsConfigMapKey}). */
  public static final String SECRET_KEY = "^[-._a-zA-Z0-9]{1,253}$";

  /** A SMBIOS system UUID. */
  public static final String UUID =
      "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

  /** The overlay of the target's root: {@code tmpfs}, {@code none}, or a block device. */
  public static final String OVERLAY = "^(tmpfs|none|/dev/[A-Za-z0-9._/-]{1,128})$";

  /** A duration such as {@code 90s}, {@code 5m} or {@code 1h30m}. */
  public static final String DURATION = GoDuration.PATTERN;

  /**
   * A signal that asks an init to power off, by name: {@code SIGRTMIN+n} is glibc's (34 + n), as
   * systemd reads it ({@code SIGRTMIN+4}: power off). SIGKILL and SIGSTOP are no requests.
   */
  public static final String STOP_SIGNAL =
      "^SIG(HUP|INT|QUIT|TERM|USR1|USR2|PWR|RTMIN\\+([0-9]|[12][0-9]|30))$";

  /** A serial device name under {@code /dev}, such as {@code ttyS1}. */
  public static final String TTY = "^tty[A-Za-z0-9]{1,16}$";

  /** The magic string that asks for a return when it arrives on the serial port. */
  public static final String MAGIC = "^[A-Za-z0-9_:.-]{4,64}$";

  private Patterns() {}
}
