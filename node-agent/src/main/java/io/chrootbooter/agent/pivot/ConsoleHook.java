package io.chrootbooter.agent.pivot;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * What stands between a target and the machine's consoles while it runs (the agent's console relay,
 * {@code io.chrootbooter.agent.relay}): started before the target is entered, released once its
 * last process is gone.
 */
public interface ConsoleHook {
  /** Starts for the boot of {@code spec}; its console is the machine's. */
  Consoles start(TargetSpec spec) throws IOException;

  /** The consoles of one boot. */
  interface Consoles extends Teardown.Step {
    /** The target's stdin, stdout and stderr, which the enter step binds over its /dev/console. */
    Path console();

    /**
     * Further device nodes of the target's {@code /dev}, by name ({@code ttyS0}, {@code tty1}), and
     * the node the enter step binds over each.
     */
    Map<String, Path> binds();
  }
}
