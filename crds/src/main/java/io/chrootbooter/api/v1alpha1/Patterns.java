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
   * One kernel argument: a key of lower-case letters, digits and {@code _ . : / , + @ -} (at most
   * 128), optionally {@code =} and a value of letters, digits and {@code _ . : / , = + @ -} (at
   * most 255); not starting with {@code -} (a {@code --} would hand the rest of the command line to
   * init). No whitespace, quotes, {@code $ { } ; | &} or backticks: nothing iPXE or a shell would
   * interpret. No upper case in the key: the kernel hands every {@code NAME=value} word it does not
   * know to init's environment ({@code CB_DEBUG=1}, {@code JAVA_TOOL_OPTIONS=...}), and every
   * kernel parameter that matters is lower case.
   */
  public static final String KERNEL_ARG =
      "^[a-z0-9_.][a-z0-9_.:/,+@-]{0,127}(=[A-Za-z0-9_.:/,=+@-]{0,255})?$";

  /**
   * Kernel arguments a spec may not set, as a CEL rule over a MachineBoot spec (the reconciler and
   * the iPXE renderer check the same in Java): {@code init=} and {@code rdinit=} choose the program
   * the kernel runs as PID 1, {@code initrd=} and {@code bootif=} the operator sets, {@code cb.*}
   * are the bootstrap's settings and {@code cb_*} would reach init's environment.
   */
  public static final String KERNEL_ARGS_RESERVED_RULE =
      "!has(self.kernelArgs) || self.kernelArgs.all(a, !(a == 'init' || a.startsWith('init=')"
          + " || a == 'rdinit' || a.startsWith('rdinit=') || a == 'initrd'"
          + " || a.startsWith('initrd=') || a == 'bootif' || a.startsWith('bootif=')"
          + " || a.startsWith('cb.') || a.startsWith('cb_')))";

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

  /**
   * A device node of the machine a Confined image sees, such as {@code /dev/vdb} or {@code
   * /dev/disk/by-id/virtio-data}: below {@code /dev}, no {@code .} or {@code ..} component, no
   * doubled slash.
   */
  public static final String DEVICE = "^/dev(/[A-Za-z0-9_:+@-][A-Za-z0-9._:+@-]{0,127}){1,4}$";

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
