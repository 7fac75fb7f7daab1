package io.chrootbooter.testkit;

import java.nio.file.Path;
import java.util.List;

/**
 * A program that makes a lab network with a process in it and ends without closing it, as a test
 * JVM killed half way does; {@link LabNetworkTest} runs it and looks at what is left.
 */
final class AbandonedLab {
  private AbandonedLab() {}

  public static void main(String[] args) throws Exception {
    LabNetwork net = LabNetwork.create(args[0], "10.79.0", "fd79::", Path.of(args[1]));
    net.spawn("sleeper", net.namespace(), List.of("sleep", args[2]));
    System.out.println("lab " + net.namespace() + " up");
    System.exit(0); // no close(): the shutdown hook is all that is left
  }
}
