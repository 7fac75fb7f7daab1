package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.console.ConsoleActions;
import io.chrootbooter.agent.console.ConsoleCommand;
import io.chrootbooter.agent.console.ControllerActions;
import io.chrootbooter.agent.unpack.ImageCache;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The console commands on a running {@link Agent}. */
final class AgentConsole implements ConsoleActions {
  private final Agent agent;
  private final ControllerActions controller;

  AgentConsole(Agent agent) {
    this.agent = agent;
    this.controller =
        new ControllerActions(
            agent.controller(),
            new ControllerActions.Loader() {
              @Override
              public List<String> load(ConsoleCommand.Load load) throws IOException {
                return agent.consoleLoad(load);
              }

              @Override
              public List<String> images() {
                return AgentConsole.this.images();
              }
            });
  }

  @Override
  public List<String> load(ConsoleCommand.Load load) throws IOException {
    return agent.consoleLoad(load);
  }

  @Override
  public List<String> status() {
    List<String> lines = new ArrayList<>();
    lines.add("phase: " + agent.phase());
    List<String> rest = controller.status();
    lines.addAll(rest.subList(1, rest.size())); // its first line is the controller's phase
    lines.addAll(agent.statusLines());
    return lines;
  }

  @Override
  public List<String> returnToBootstrap() {
    return controller.returnToBootstrap();
  }

  @Override
  public List<String> resume() throws IOException {
    return agent.resume();
  }

  @Override
  public List<String> images() {
    ImageCache cache = agent.loader().cache();
    List<ImageCache.Entry> entries = cache.list();
    if (entries.isEmpty()) {
      return List.of("no cached images");
    }
    List<String> lines = new ArrayList<>();
    for (ImageCache.Entry e : entries) {
      lines.add(
          String.format(
              Locale.ROOT,
              "%s  %-8s %8.1f MiB",
              e.sha256(),
              e.format().value(),
              e.bytes() / 1048576.0));
    }
    lines.add(
        String.format(
            Locale.ROOT, "%d images, %.1f MiB", entries.size(), cache.totalBytes() / 1048576.0));
    return lines;
  }
}
