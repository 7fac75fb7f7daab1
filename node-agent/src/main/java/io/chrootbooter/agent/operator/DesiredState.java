package io.chrootbooter.agent.operator;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import java.util.List;

/**
 * What the operator wants this machine to do: the data of one {@code desired} event. Unknown fields
 * are ignored, so an older agent keeps working with a newer operator.
 *
 * @param action {@code Run} the image, go to the {@code Bootstrap}, or {@code Hold}: keep doing
 *     what it does ({@code reason} says why)
 * @param generation the MachineBoot's generation; the agent applies a generation once per image
 *     ({@link Image#identity()}): a BootImage re-mirrored under the same generation is applied
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record DesiredState(
    String action,
    long generation,
    String reason,
    Image image,
    String overlay,
    List<String> kernelArgs,
    String bootTimeout,
    ReturnTriggers returnTriggers) {

  public static final String RUN = "Run";
  public static final String BOOTSTRAP = "Bootstrap";
  public static final String HOLD = "Hold";

  public DesiredState {
    kernelArgs = kernelArgs == null ? List.of() : List.copyOf(kernelArgs);
    returnTriggers = returnTriggers == null ? ReturnTriggers.DEFAULTS : returnTriggers;
  }

  /**
   * The image to run.
   *
   * @param stop the BootImage's {@code spec.stop}; null when unset
   */
  @JsonIgnoreProperties(ignoreUnknown = true)
  public record Image(
      String name, String url, String sha256, String format, String init, Stop stop) {

    /**
     * What booting this image boots: the content (its digest; the URL only when there is none), the
     * format and the init. Two desired states of one MachineBoot generation with different
     * identities name different images (the BootImage was re-mirrored, or its init changed); the
     * same identity at another URL is the same image. The stop settings are no part of it: they
     * change how a target ends, not what runs.
     */
    public Identity identity() {
      return new Identity(
          sha256 != null ? "sha256:" + sha256 : "url:" + url,
          format,
          init == null || init.isEmpty() ? "/sbin/init" : init);
    }
  }

  /** See {@link Image#identity()}. */
  public record Identity(String content, String format, String init) {}

  /**
   * The BootImage's {@code spec.stop}, as sent: the agent checks it before use ({@code
   * daemon.StopRule}).
   *
   * @param signal the power-off signal's name, such as {@code SIGTERM} or {@code SIGRTMIN+4}
   * @param gracePeriod a duration such as {@code 30s}
   */
  @JsonIgnoreProperties(ignoreUnknown = true)
  public record Stop(String signal, String gracePeriod) {}

  /** Which return triggers the MachineBoot enables; absent fields mean the defaults. */
  @JsonIgnoreProperties(ignoreUnknown = true)
  public record ReturnTriggers(Boolean hotkey, Serial serial, Boolean helper) {
    static final ReturnTriggers DEFAULTS = new ReturnTriggers(true, Serial.DEFAULTS, true);

    public ReturnTriggers {
      hotkey = hotkey == null || hotkey;
      serial = serial == null ? Serial.DEFAULTS : serial;
      helper = helper == null || helper;
    }
  }

  /**
   * The serial magic-string trigger.
   *
   * @param device the port under {@code /dev}; null when the spec names none: then the port of the
   *     kernel command line's {@code cb.serial=}, else {@code ttyS1}
   */
  @JsonIgnoreProperties(ignoreUnknown = true)
  public record Serial(Boolean enabled, String device, String magic) {
    static final Serial DEFAULTS = new Serial(true, null, "RETURN_TO_BOOTSTRAP");

    public Serial {
      enabled = enabled == null || enabled;
      magic = magic == null ? "RETURN_TO_BOOTSTRAP" : magic;
    }
  }

  /** Whether this state names an image to run. */
  public boolean runs() {
    return RUN.equals(action) && image != null && image.url() != null;
  }
}
