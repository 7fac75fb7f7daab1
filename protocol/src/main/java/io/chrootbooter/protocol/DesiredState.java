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

  /** This state with {@code heartbeat} ({@link GoDuration}, or null for the agent's default). */
  public DesiredState withHeartbeat(String heartbeat) {
    return toBuilder().heartbeat(heartbeat).build();
  }

  /** This state with {@code commands} to run once the target is healthy. */
  public DesiredState withCommands(List<TestCommand> commands) {
    return toBuilder().commands(commands).build();
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

  /** A builder of a DesiredState, every field unset. */
  public static Builder builder() {
    return new Builder();
  }

  /** A builder that starts from this DesiredState's fields. */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.action = action;
    b.generation = generation;
    b.reason = reason;
    b.image = image;
    b.overlay = overlay;
    b.kernelArgs = kernelArgs;
    b.bootTimeout = bootTimeout;
    b.returnTriggers = returnTriggers;
    b.heartbeat = heartbeat;
    b.commands = commands;
    return b;
  }

  /** Builds a {@link DesiredState}; unset fields are null, the generation 0. */
  public static final class Builder {
    private Action action;
    private long generation;
    private String reason;
    private Image image;
    private String overlay;
    private List<String> kernelArgs;
    private String bootTimeout;
    private ReturnTriggers returnTriggers;
    private String heartbeat;
    private List<TestCommand> commands;

    private Builder() {}

    public Builder action(Action action) {
      this.action = action;
      return this;
    }

    public Builder generation(long generation) {
      this.generation = generation;
      return this;
    }

    public Builder reason(String reason) {
      this.reason = reason;
      return this;
    }

    public Builder image(Image image) {
      this.image = image;
      return this;
    }

    public Builder overlay(String overlay) {
      this.overlay = overlay;
      return this;
    }

    public Builder kernelArgs(List<String> kernelArgs) {
      this.kernelArgs = kernelArgs;
      return this;
    }

    public Builder bootTimeout(String bootTimeout) {
      this.bootTimeout = bootTimeout;
      return this;
    }

    public Builder returnTriggers(ReturnTriggers returnTriggers) {
      this.returnTriggers = returnTriggers;
      return this;
    }

    public Builder heartbeat(String heartbeat) {
      this.heartbeat = heartbeat;
      return this;
    }

    public Builder commands(List<TestCommand> commands) {
      this.commands = commands;
      return this;
    }

    public DesiredState build() {
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

    /** A builder of an Image, every field unset. */
    public static Builder builder() {
      return new Builder();
    }

    /** A builder that starts from this Image's fields. */
    public Builder toBuilder() {
      Builder b = new Builder();
      b.name = name;
      b.url = url;
      b.sha256 = sha256;
      b.format = format;
      b.init = init;
      b.stop = stop;
      b.kernelModules = kernelModules;
      b.confinement = confinement;
      b.devices = devices;
      b.delivery = delivery;
      b.verity = verity;
      return b;
    }

    /** Builds a {@link DesiredState.Image}; a field left unset is null (no devices). */
    public static final class Builder {
      private String name;
      private String url;
      private String sha256;
      private ImageFormat format;
      private String init;
      private Stop stop;
      private KernelModules kernelModules;
      private Confinement confinement;
      private List<String> devices;
      private Delivery delivery;
      private Verity verity;

      private Builder() {}

      public Builder name(String name) {
        this.name = name;
        return this;
      }

      public Builder url(String url) {
        this.url = url;
        return this;
      }

      public Builder sha256(String sha256) {
        this.sha256 = sha256;
        return this;
      }

      public Builder format(ImageFormat format) {
        this.format = format;
        return this;
      }

      public Builder init(String init) {
        this.init = init;
        return this;
      }

      public Builder stop(Stop stop) {
        this.stop = stop;
        return this;
      }

      public Builder kernelModules(KernelModules kernelModules) {
        this.kernelModules = kernelModules;
        return this;
      }

      public Builder confinement(Confinement confinement) {
        this.confinement = confinement;
        return this;
      }

      public Builder devices(List<String> devices) {
        this.devices = devices;
        return this;
      }

      public Builder delivery(Delivery delivery) {
        this.delivery = delivery;
        return this;
      }

      public Builder verity(Verity verity) {
        this.verity = verity;
        return this;
      }

      public Image build() {
        return new Image(
            name,
            url,
            sha256,
            format,
            init,
            stop,
            kernelModules,
            confinement,
            devices,
            delivery,
            verity);
      }
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
