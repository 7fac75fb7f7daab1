package io.chrootbooter.agent.console;

import io.chrootbooter.agent.pivot.LastReturn;
import io.chrootbooter.agent.pivot.TargetControl;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The console's {@code status}, {@code return} and {@code resume} on a {@link TargetControl}.
 * {@code load} and {@code images} belong to the image pipeline and are delegated.
 */
public final class ControllerActions implements ConsoleActions {
  /** Loads an image (download, verify, mount, boot) on behalf of the console. */
  public interface Loader {
    List<String> load(ConsoleCommand.Load load) throws IOException;

    List<String> images() throws IOException;
  }

  private final TargetControl controller;
  private final Loader loader;

  public ControllerActions(TargetControl controller, Loader loader) {
    this.controller = controller;
    this.loader = loader;
  }

  @Override
  public List<String> load(ConsoleCommand.Load load) throws IOException {
    return loader.load(load);
  }

  @Override
  public List<String> status() {
    List<String> lines = new ArrayList<>();
    lines.add("phase: " + controller.phase());
    controller
        .session()
        .ifPresent(
            s ->
                lines.add(
                    "image: " + s.spec().imageUrl() + " (init PID " + s.target().initPid() + ")"));
    controller.lastReturn().ifPresent(r -> lines.add("last return: " + describe(r)));
    return lines;
  }

  /** {@code Hotkey (Ctrl+Alt+F12) at 2026-...Z, 212 ms, forced, init signal 9 (SIGKILL)}. */
  static String describe(LastReturn r) {
    return r.trigger()
        + (r.reason().isEmpty() ? "" : " (" + r.reason() + ")")
        + " at "
        + r.time()
        + ", "
        + r.duration().toMillis()
        + " ms, "
        + (r.forced() ? "forced" : "graceful")
        + (r.initExit().isEmpty() ? "" : ", init " + r.initExit());
  }

  @Override
  public List<String> returnToBootstrap() {
    Optional<LastReturn> r =
        controller.trigger(ReturnTrigger.Console, "return typed at the console");
    return r.map(x -> List.of("back in the bootstrap: " + describe(x)))
        .orElse(List.of("no target is running (phase " + controller.phase() + ")"));
  }

  @Override
  public List<String> resume() throws IOException {
    boolean boot = controller.resume();
    return List.of(
        boot
            ? "console override ended; booting the spec's image"
            : "following the spec (phase " + controller.phase() + ")");
  }

  @Override
  public List<String> images() throws IOException {
    return loader.images();
  }
}
