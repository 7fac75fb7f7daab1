package io.chrootbooter.agent.console;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;

/**
 * The console's line loop: prompt, read a line, {@link ConsoleParser parse}, call the {@link
 * ConsoleActions}, print. Thin by design; ends at end of input.
 */
public final class ConsoleShell {
  /** The prompt: plain ASCII, no escapes, so a dumb serial line shows it as is. */
  public static final String PROMPT = "bootstrap> ";

  private final ConsoleActions actions;

  public ConsoleShell(ConsoleActions actions) {
    this.actions = actions;
  }

  /** Serves {@code in} until it ends. */
  public void run(BufferedReader in, PrintStream out) throws IOException {
    out.print(PROMPT);
    out.flush();
    String line;
    while ((line = in.readLine()) != null) {
      for (String reply : execute(line)) {
        out.print(reply + "\r\n");
      }
      out.print(PROMPT);
      out.flush();
    }
  }

  /** Executes one line; the lines to print. */
  public List<String> execute(String line) {
    try {
      ConsoleCommand command = ConsoleParser.parse(line);
      if (command instanceof ConsoleCommand.Load load) {
        return actions.load(load);
      } else if (command instanceof ConsoleCommand.Status) {
        return actions.status();
      } else if (command instanceof ConsoleCommand.Return) {
        return actions.returnToBootstrap();
      } else if (command instanceof ConsoleCommand.Resume) {
        return actions.resume();
      } else if (command instanceof ConsoleCommand.Images) {
        return actions.images();
      } else if (command instanceof ConsoleCommand.Help) {
        return ConsoleParser.HELP.lines().toList();
      }
      return List.of();
    } catch (ConsoleParser.UsageException e) {
      return List.of("error: " + e.getMessage());
    } catch (IOException e) {
      return List.of("error: " + String.valueOf(e.getMessage()).replace('\n', ' '));
    }
  }
}
