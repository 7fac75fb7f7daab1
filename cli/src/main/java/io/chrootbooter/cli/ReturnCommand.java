package io.chrootbooter.cli;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code kubectl boot return m1 [--wait]}. */
@Command(
    name = "return",
    mixinStandardHelpOptions = true,
    description = {
      "Return a machine to the bootstrap: sets the MachineBoot's spec.state to Bootstrap (and"
          + " clears spec.imageRef). With --wait, waits until the machine is in the bootstrap.",
      "Example: kubectl boot return m1 --wait"
    })
final class ReturnCommand implements Callable<Integer> {

  @ParentCommand KubectlBoot top;

  @Parameters(index = "0", paramLabel = "MACHINE", description = "The MachineBoot.")
  String machine;

  @Option(names = "--wait", description = "Wait until the machine is in the bootstrap.")
  boolean wait;

  @Option(
      names = "--timeout",
      defaultValue = "5m",
      paramLabel = "DURATION",
      description = "How long --wait waits (default: ${DEFAULT-VALUE}).")
  String timeout;

  @Override
  public Integer call() {
    Json.name(machine, "machine");
    Duration limit = GoDurations.parse(timeout, "--timeout");
    Cluster c = top.cluster();
    GenericKubernetesResource mb = c.machine(machine);
    GenericKubernetesResource patched =
        SwitchCommand.setExclusive(c, mb, "state", "Bootstrap", "imageRef");
    top.out.println("machineboot.boot.chrootbooter.io/" + machine + " returning to the bootstrap");
    SwitchCommand.heldNote(top, patched);
    if (!wait) {
      return Exit.OK;
    }
    long start = System.nanoTime();
    MachineWait waiter = new MachineWait(c, top.out);
    MachineWait.Outcome outcome =
        waiter.await(
            machine,
            SwitchCommand.generation(patched),
            Json.tree(patched).path("status"),
            s -> "Bootstrap".equals(Json.text(s, "phase")),
            limit);
    return SwitchCommand.finish(
        top, c, machine, waiter, outcome, machine + " is in the bootstrap", start);
  }
}
