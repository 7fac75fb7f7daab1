package io.chrootbooter.agent.console;

import java.io.IOException;
import java.util.List;

/**
 * What the console can make the agent do; the console only parses and prints. Each method returns
 * the lines to print; an {@link IOException} is printed as one {@code error:} line.
 */
public interface ConsoleActions {
  List<String> load(ConsoleCommand.Load load) throws IOException;

  List<String> status() throws IOException;

  List<String> returnToBootstrap() throws IOException;

  List<String> resume() throws IOException;

  List<String> images() throws IOException;
}
