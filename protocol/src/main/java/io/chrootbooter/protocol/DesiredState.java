package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

/**
 * What the operator wants a machine to do: the data of one {@code desired} event on {@code GET
 * /agent/v1/machines/{mac}/desired}. The agent ignores fields it does not know and reads an action
 * or format it does not know as null, so an older agent keeps working with a newer operator (it
 * skips a state without an action, and fails the load of an image without a format, naming the
 * formats it knows); the operator leaves out what is null.
 *
 * <p>The strings the agent must check before use ({@code overlay}, {@code bootTimeout}, the stop
 * settings) stay strings here: the agent never trusts what the stream sends, and a value it refuses
 * fails that load with a message in the status rather than dropping the whole event.
 *
 * @param action {@link Action#Run} the image, go to the {@link Action#Bootstrap}, or {@link
 *     Action#Hold}: keep doing what it does ({@code reason} says why)
 * @param generation the MachineBoot's {@code metadata.generation}; the agent applies a generation
 *     once per image ({@link Image#identity()}): a BootImage re-mirrored under the same generation
 *     is applied
 * @param reason why the operator holds; null otherwise
 * @param image the image to run; null unless {@code Run}
 * @param overlay the writable layer: {@code tmpfs}, {@code none} or a block device
 * @param kernelArgs extra kernel arguments; never null
 * @param bootTimeout how long the target may take to report healthy ({@link GoDuration}); null for
 *     no limit
 * @param returnTriggers the triggers the MachineBoot enables, defaults applied; null on a {@code
 *     Hold}, which changes nothing
 * @param heartbeat how often the agent sends its full status report even when nothing changed
 *     ({@link GoDuration}), so that the operator knows it is alive; null: the agent's default,
 *     {@link #DEFAULT_HEARTBEAT}
 * @param commands the commands of a BootTest's {@code command} checks, for the agent to run in the
 *     target once it reported healthy ({@link TestCommand}); empty (and left out) otherwise
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public record DesiredState(
    Action action,
    long generation,
    String reason,
    Image image,
    String overlay,
    List<String> kernelArgs,
    String bootTimeout,
    ReturnTriggers returnTriggers,
    String heartbeat,
    @JsonInclude(JsonInclude.Include.NON_EMPTY) List<TestCommand> commands) {

  /** The heartbeat of an agent whose operator names none. */
  public static final String DEFAULT_HEARTBEAT = "15s";

  /** A desired state without a heartbeat: the agent's default applies. */
  public DesiredState(
      Action action,
      long generation,
      String reason,
      Image image,
      String overlay,
      List<String> kernelArgs,
      String bootTimeout,
      ReturnTriggers returnTriggers) {
    this(action, generation, reason, image, overlay, kernelArgs, bootTimeout, returnTriggers, null);
  }

  /** A desired state without commands to run. */
  public DesiredState(
      Action action,
      long generation,
      String reason,
      Image image,
      String overlay,
      List<String> kernelArgs,
      String bootTimeout,
      ReturnTriggers returnTriggers,
      String heartbeat) {
    this(
        action,
        generation,
        reason,
        image,
        overlay,
        kernelArgs,
        bootTimeout,
        returnTriggers,
        heartbeat,
        List.of());
  }

  /** This state with {@code heartbeat} ({@link GoDuration}, or null for the agent's default). */
  public DesiredState withHeartbeat(String heartbeat) {
    return new DesiredState(
        action,
        generation,
        reason,
        image,
        overlay,
        kernelArgs,
        bootTimeout,
        returnTriggers,
        heartbeat,
        commands);
  }

  /** This state with {@code commands} to run once the target is healthy. */
  public DesiredState withCommands(List<TestCommand> commands) {
    return new DesiredState(
        action,
        generation,
        reason,
        image,
        overlay,
        kernelArgs,
        bootTimeout,
        returnTriggers,
        heartbeat,
        commands);
  }

  public DesiredState {
    kernelArgs = kernelArgs == null ? List.of() : List.copyOf(kernelArgs);
    commands = commands == null ? List.of() : List.copyOf(commands);
    if (returnTriggers == null && action != Action.Hold) {
      returnTriggers = ReturnTriggers.DEFAULTS;
    }
  }

  /** Whether this state names an image to run. */
  public boolean runs() {
    return action == Action.Run && image != null && image.url() != null;
  }

  /**
   * The image to run.
   *
   * @param name the BootImage's name; null for an image typed at the console
   * @param url where the agent fetches it: the operator's image store
   * @param sha256 its digest, 64 lower-case hex digits; null when the BootImage waives verification
   * @param format its format; null when absent or not known to the reader
   * @param init the init program; null for {@code /sbin/init}
   * @param stop the BootImage's {@code spec.stop}; null when unset
   * @param kernelModules whose kernel modules the target sees; null (an older operator, or an
   *     unknown value) means {@link KernelModules#DEFAULT}
   * @param confinement how the target is confined: the MachineBoot's {@code spec.confinement}, else
   *     the BootImage's; null (an older operator, or an unknown value) means {@link
   *     Confinement#DEFAULT}
   * @param devices device nodes of the machine, such as {@code /dev/vdb}, that a {@link
   *     Confinement#Confined} target sees in its private {@code /dev} (the MachineBoot's {@code
   *     spec.devices}); never null, ignored by a {@link Confinement#Machine} target, which sees
   *     them all
   * @param delivery how the agent gets the bytes; null (an older operator, or an unknown value)
   *     means {@link Delivery#DEFAULT}
   * @param verity the image's dm-verity hash tree; set for a squashfs image whose tree the operator
   *     has computed, required for {@link Delivery#Lazy}
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public record Image(
      String name,
      String url,
      String sha256,
      ImageFormat format,
      String init,
      Stop stop,
      KernelModules kernelModules,
      Confinement confinement,
      @JsonInclude(JsonInclude.Include.NON_EMPTY) List<String> devices,
      Delivery delivery,
      Verity verity) {

    public Image {
      devices = devices == null ? List.of() : List.copyOf(devices);
    }

    /** An image with the default kernel modules and confinement. */
    public Image(
        String name, String url, String sha256, ImageFormat format, String init, Stop stop) {
      this(name, url, sha256, format, init, stop, null);
    }

    /** An image with the default confinement, downloaded whole. */
    public Image(
        String name,
        String url,
        String sha256,
        ImageFormat format,
        String init,
        Stop stop,
        KernelModules kernelModules) {
      this(name, url, sha256, format, init, stop, kernelModules, null, List.of(), null, null);
    }

    /** An image downloaded whole, without a hash tree. */
    public Image(
        String name,
        String url,
        String sha256,
        ImageFormat format,
        String init,
        Stop stop,
        KernelModules kernelModules,
        Confinement confinement,
        List<String> devices) {
      this(name, url, sha256, format, init, stop, kernelModules, confinement, devices, null, null);
    }

    /** How the target is confined, the default applied. */
    public Confinement confinementOrDefault() {
      return confinement == null ? Confinement.DEFAULT : confinement;
    }

    /** Whose kernel modules the target sees, the default applied. */
    public KernelModules kernelModulesOrDefault() {
      return kernelModules == null ? KernelModules.DEFAULT : kernelModules;
    }

    /** How the agent gets the bytes, the default applied. */
    public Delivery deliveryOrDefault() {
      return delivery == null ? Delivery.DEFAULT : delivery;
    }

    /** The init a BootImage without {@code init} boots. */
    public static final String DEFAULT_INIT = "/sbin/init";

    /**
     * What booting this image boots: the content (its digest; the URL only when there is none), the
     * format, the init, the kernel modules the target sees, its confinement and (when Confined) the
     * devices it sees. Two desired states of one MachineBoot generation with different identities
     * name different images (the BootImage was re-mirrored, or its init, kernel modules or
     * confinement changed); the same identity at another URL is the same image. The stop settings
     * are no part of it: they change how a target ends, not what runs.
     */
    public Identity identity() {
      return new Identity(
          sha256 != null ? "sha256:" + sha256 : "url:" + url,
          format,
          init == null || init.isEmpty() ? DEFAULT_INIT : init,
          kernelModulesOrDefault(),
          confinementOrDefault(),
          confinementOrDefault() == Confinement.Confined ? devices : List.of());
    }
  }

  /** See {@link Image#identity()}. */
  public record Identity(
      String content,
      ImageFormat format,
      String init,
      KernelModules kernelModules,
      Confinement confinement,
      List<String> devices) {}

  /**
   * The BootImage's {@code spec.stop}, as sent: the agent checks it before use.
   *
   * @param signal the power-off signal's name, such as {@code SIGTERM} or {@code SIGRTMIN+4}
   * @param gracePeriod a {@link GoDuration} such as {@code 30s}
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public record Stop(String signal, String gracePeriod) {}

  /**
   * Which return triggers the MachineBoot enables; absent fields mean the defaults.
   *
   * @param hotkey Ctrl+Alt+F12 on the console keyboard
   * @param serial the magic string on a serial port
   * @param helper {@code /.bootstrap-return} inside the target
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public record ReturnTriggers(Boolean hotkey, Serial serial, Boolean helper) {
    /** Every trigger on, the serial one on the machine's default port. */
    public static final ReturnTriggers DEFAULTS = new ReturnTriggers(null, null, null);

    public ReturnTriggers {
      hotkey = hotkey == null || hotkey;
      serial = serial == null ? Serial.DEFAULTS : serial;
      helper = helper == null || helper;
    }
  }

  /**
   * The serial magic-string trigger.
   *
   * @param enabled whether the port is watched
   * @param device the port under {@code /dev}; null when the spec names none: then the port of the
   *     kernel command line's {@code cb.serial=}, else {@link #DEFAULT_DEVICE}
   * @param magic the string that asks for a return
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public record Serial(Boolean enabled, String device, String magic) {
    /** The port watched when neither the spec nor the kernel command line names one. */
    public static final String DEFAULT_DEVICE = "ttyS1";

    /** The magic string when the spec names none. */
    public static final String DEFAULT_MAGIC = "RETURN_TO_BOOTSTRAP";

    static final Serial DEFAULTS = new Serial(null, null, null);

    public Serial {
      enabled = enabled == null || enabled;
      magic = magic == null ? DEFAULT_MAGIC : magic;
    }
  }
}
