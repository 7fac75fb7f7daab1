package io.chrootbooter.agent;

import io.chrootbooter.agent.daemon.RunCommand;
import io.quarkus.runtime.QuarkusApplication;
import io.quarkus.runtime.annotations.QuarkusMain;
import jakarta.enterprise.inject.Instance;
import jakarta.inject.Inject;
import java.util.Arrays;
import picocli.CommandLine;

/**
 * The agent's entry point. The bootstrap starts {@code run} with no arguments on every boot: that
 * path takes its options from the environment ({@link RunCommand#fromEnvironment}) and builds no
 * picocli command model, which costs seconds under emulation (picocli's classes are Java 5 class
 * files, which no CDS or AOT archive holds, so each is read from its jar and verified). Every other
 * command line goes through picocli ({@link AgentCommand}) as usual.
 */
@QuarkusMain
public class AgentMain implements QuarkusApplication {
  private final Instance<CommandLine> commandLine;

  @Inject
  AgentMain(Instance<CommandLine> commandLine) {
    this.commandLine = commandLine;
  }

  /** Whether {@code args} are the bootstrap's own: {@code run} and nothing else. */
  static boolean bootPath(String... args) {
    return Arrays.equals(args, new String[] {"run"});
  }

  @Override
  public int run(String... args) throws Exception {
    if (bootPath(args)) {
      RunCommand run;
      try {
        run = RunCommand.fromEnvironment(System.getenv());
      } catch (RunCommand.InvalidOption e) {
        System.err.println(e.getMessage());
        return CommandLine.ExitCode.USAGE;
      }
      return run.call();
    }
    CommandLine cli = commandLine.get();
    try {
      return cli.execute(args);
    } finally {
      cli.getOut().flush();
      cli.getErr().flush();
    }
  }
}
