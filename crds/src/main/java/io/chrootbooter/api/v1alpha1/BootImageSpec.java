package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.Delivery;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.KernelModules;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;

/** The desired state of a {@link BootImage}: an OS root filesystem image. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "has(self.sha256) || (has(self.insecureSkipVerify) && self.insecureSkipVerify)",
    message = "sha256 is required unless insecureSkipVerify is true")
@ValidationRule(
    value = BootImageSpec.LAZY_RULE,
    message = "delivery Lazy is for squashfs images only")
public record BootImageSpec(
    @Required @JsonPropertyDescription("Where the image comes from.") ImageSource source,
    @JsonPropertyDescription(
            "The image format: squashfs (loop-mounted) or a tarball (tar, tar.gz, tar.xz,"
                + " tar.zst; extracted while downloading). Inferred from the URL when absent.")
        ImageFormat format,
    @Pattern(Patterns.SHA256)
        @JsonPropertyDescription(
            "The SHA-256 of the image file, 64 lower-case hex digits. The image is never served"
                + " or booted when the measured digest differs. Required unless"
                + " insecureSkipVerify is true.")
        String sha256,
    @JsonPropertyDescription(
            "Accept the image without a sha256. Anyone who can change the bytes at the source"
                + " then decides what the machines run.")
        Boolean insecureSkipVerify,
    @Pattern(Patterns.ABSOLUTE_PATH)
        @JsonPropertyDescription(
            "The init program started as PID 1 inside the image. Default: /sbin/init.")
        String init,
    @JsonPropertyDescription("The CPU architecture the image is built for. Default: amd64.")
        Architecture architecture,
    @JsonPropertyDescription(
            "How a return ends the image's target: the power-off signal for its init and the grace"
                + " period before the agent kills it. Unset: chosen from the init, and the"
                + " agent's --grace.")
        StopSpec stop,
    @JsonPropertyDescription(
            "Whose kernel modules and firmware the image sees. Images run on the bootstrap's"
                + " kernel, so modules an image ships for its own kernel do not load."
                + " Bootstrap (default): the bootstrap kernel's complete /lib/modules/<version>"
                + " and the firmware Debian ships for it are bound read-only into the image"
                + " (modprobe, udev and systemd-modules-load work as on an installed system); an"
                + " image that has its own /lib/modules/<running version> keeps it, and its own"
                + " firmware files win. Image: only what the image ships. None: nothing is"
                + " bound.")
        KernelModules kernelModules,
    @JsonPropertyDescription(CONFINEMENT) Confinement confinement,
    @JsonPropertyDescription(
            "How machines get the image's bytes. Download (default): the whole image is"
                + " downloaded and its sha256 checked before it is mounted. Lazy (squashfs"
                + " only): the image is attached as a read-only block device whose blocks are"
                + " fetched from the operator on first read and each checked by the kernel's"
                + " dm-verity against the hash tree the operator computed from the verified"
                + " image (status.verity), so the image's init starts before the download ends;"
                + " a block that fails the check is an I/O error, never used.")
        Delivery delivery) {

  /**
   * The schema's rule for {@code delivery}: Lazy only for squashfs, declared or inferred from the
   * URL's ending.
   */
  static final String LAZY_RULE =
      "!has(self.delivery) || self.delivery != 'Lazy' || (has(self.format) ? self.format =="
          + " 'squashfs' : self.source.url.matches('(?i)[.](squashfs|sqfs|sfs|img)([?#].*)?$'))";

  /** What {@code kubectl explain} says of {@code confinement}, here and on a MachineBoot. */
  static final String CONFINEMENT =
      "How much of the machine the image's system may touch. Machine (default): it is root of"
          + " the machine, as if installed; the bootstrap keeps only its own files and memory out"
          + " of its reach. Confined: for images you do not trust. Its bounding set lacks"
          + " CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_BOOT, CAP_SYS_TIME, CAP_MKNOD,"
          + " CAP_SYS_PTRACE, CAP_SYSLOG, CAP_BPF and CAP_PERFMON; a seccomp filter refuses"
          + " kexec_load, kexec_file_load, init_module, finit_module, delete_module,"
          + " open_by_handle_at, perf_event_open, bpf and a reboot that acts on the machine;"
          + " /proc/sys, /proc/sysrq-trigger and /sys are read-only; /dev is a private tmpfs with"
          + " null, zero, full, random, urandom, tty, console, ptmx, pts and the MachineBoot's"
          + " spec.devices. The kernel modules tree stays visible, read-only. It still holds"
          + " CAP_SYS_ADMIN (systemd needs it), so it is not a sandbox against a system that sets"
          + " out to undo its mounts: see SECURITY.md.";

  /** How machines get the bytes, the default applied. */
  public Delivery deliveryOrDefault() {
    return delivery == null ? Delivery.DEFAULT : delivery;
  }

  /** How the image's target is confined, the default applied. */
  public Confinement confinementOrDefault() {
    return confinement == null ? Confinement.DEFAULT : confinement;
  }

  /** Whose kernel modules the image sees, the default applied. */
  public KernelModules kernelModulesOrDefault() {
    return kernelModules == null ? KernelModules.DEFAULT : kernelModules;
  }

  /** The init path, with the default applied. */
  public String initOrDefault() {
    return init == null ? "/sbin/init" : init;
  }

  /** Whether verification was explicitly waived. */
  public boolean skipVerify() {
    return Boolean.TRUE.equals(insecureSkipVerify);
  }

  /** A builder of a BootImageSpec, every field unset. */
  public static Builder builder() {
    return new Builder();
  }

  /** A builder that starts from this BootImageSpec's fields. */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.source = source;
    b.format = format;
    b.sha256 = sha256;
    b.insecureSkipVerify = insecureSkipVerify;
    b.init = init;
    b.architecture = architecture;
    b.stop = stop;
    b.kernelModules = kernelModules;
    b.confinement = confinement;
    b.delivery = delivery;
    return b;
  }

  /** Builds a {@link BootImageSpec}; a field left unset is null. */
  public static final class Builder {
    private ImageSource source;
    private ImageFormat format;
    private String sha256;
    private Boolean insecureSkipVerify;
    private String init;
    private Architecture architecture;
    private StopSpec stop;
    private KernelModules kernelModules;
    private Confinement confinement;
    private Delivery delivery;

    private Builder() {}

    public Builder source(ImageSource source) {
      this.source = source;
      return this;
    }

    public Builder format(ImageFormat format) {
      this.format = format;
      return this;
    }

    public Builder sha256(String sha256) {
      this.sha256 = sha256;
      return this;
    }

    public Builder insecureSkipVerify(Boolean insecureSkipVerify) {
      this.insecureSkipVerify = insecureSkipVerify;
      return this;
    }

    public Builder init(String init) {
      this.init = init;
      return this;
    }

    public Builder architecture(Architecture architecture) {
      this.architecture = architecture;
      return this;
    }

    public Builder stop(StopSpec stop) {
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

    public Builder delivery(Delivery delivery) {
      this.delivery = delivery;
      return this;
    }

    public BootImageSpec build() {
      return new BootImageSpec(
          source,
          format,
          sha256,
          insecureSkipVerify,
          init,
          architecture,
          stop,
          kernelModules,
          confinement,
          delivery);
    }
  }
}
