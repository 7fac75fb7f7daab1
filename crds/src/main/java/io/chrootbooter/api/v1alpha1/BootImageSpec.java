package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.Confinement;
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
    @JsonPropertyDescription(CONFINEMENT) Confinement confinement) {

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

  /** A spec with the default kernel modules and confinement. */
  public BootImageSpec(
      ImageSource source,
      ImageFormat format,
      String sha256,
      Boolean insecureSkipVerify,
      String init,
      Architecture architecture,
      StopSpec stop) {
    this(source, format, sha256, insecureSkipVerify, init, architecture, stop, null);
  }

  /** A spec with the default confinement. */
  public BootImageSpec(
      ImageSource source,
      ImageFormat format,
      String sha256,
      Boolean insecureSkipVerify,
      String init,
      Architecture architecture,
      StopSpec stop,
      KernelModules kernelModules) {
    this(source, format, sha256, insecureSkipVerify, init, architecture, stop, kernelModules, null);
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
}
