package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.confine.ConfinedMounts;
import io.chrootbooter.agent.pivot.TargetSpec;
import io.chrootbooter.agent.unpack.Overlay;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.ImageFormat;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.jboss.logging.Logger;

/** What a load of a desired state asks of the image loader, and how its target is entered. */
final class LoadSteps {
  private static final Logger LOG = Logger.getLogger(LoadSteps.class);

  private LoadSteps() {}

  /**
   * The image loader's request for {@code state}'s image, once its stop settings and boot timeout
   * are known to be valid (before anything is downloaded or mounted).
   *
   * @throws IllegalArgumentException when the stop settings, the boot timeout or the format are
   *     invalid, or the overlay is not known
   */
  static ImageLoader.Request request(DesiredState state) {
    DesiredState.Image image = state.image();
    StopRule.of(image.stop());
    bootTimeout(state);
    ImageFormat format =
        Optional.ofNullable(image.format())
            .orElseThrow(
                () ->
                    new IllegalArgumentException(
                        "image.format: missing or not known to this agent, which knows "
                            + ImageFormat.names(", ")));
    Overlay overlay = Overlay.parse(state.overlay() == null ? "tmpfs" : state.overlay());
    if (image.confinementOrDefault() == Confinement.Confined) {
      ConfinedMounts.checkDevices(image.devices());
    }
    return new ImageLoader.Request(
        image.url(),
        Optional.ofNullable(image.sha256()),
        format,
        overlay,
        image.kernelModulesOrDefault());
  }

  /**
   * The spec that enters {@code state}'s image at {@code root}: the BootImage's stop signal and
   * grace period, else the init's power-off signal and the agent's {@code --grace}.
   */
  static TargetSpec spec(DesiredState state, Path root, Agent.Settings settings) {
    DesiredState.Image image = state.image();
    StopRule stop = StopRule.of(image.stop());
    String init = image.init() == null ? TargetSpec.DEFAULT_INIT : image.init();
    TargetSpec spec =
        new TargetSpec(
            root,
            init,
            image.url(),
            stop.signal().orElseGet(() -> InitSignals.gracefulSignal(root, init)),
            stop.grace().orElse(settings.grace()),
            settings.targetConsole(),
            image.confinementOrDefault(),
            image.devices());
    LOG.infof(
        "%s: power-off signal %d%s, grace period %d ms%s, %s%s",
        AgentPolicy.describe(state),
        spec.gracefulSignal(),
        stop.signal().isPresent() ? " (BootImage)" : " (from the init)",
        spec.grace().toMillis(),
        stop.grace().isPresent() ? " (BootImage)" : " (--grace)",
        spec.confinement(),
        spec.devices().isEmpty() ? "" : " with " + String.join(" ", spec.devices()));
    return spec;
  }

  /** The state's {@code bootTimeout}; zero (no limit) when unset. */
  static Duration bootTimeout(DesiredState state) {
    String timeout = state.bootTimeout();
    return timeout == null || timeout.isEmpty()
        ? Duration.ZERO
        : GoDuration.parse("bootTimeout", timeout);
  }
}
