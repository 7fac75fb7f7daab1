package io.chrootbooter.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code kubectl boot switch m1 debian-12 [--wait [--timeout 10m]]}. */
@Command(
    name = "switch",
    mixinStandardHelpOptions = true,
    description = {
      "Switch a machine to a BootImage: sets the MachineBoot's spec.imageRef (and clears"
          + " spec.state). With --wait, waits until the machine runs the image or fails,"
          + " printing each phase.",
      "Example: kubectl boot switch m1 debian-12 --wait"
    })
final class SwitchCommand implements Callable<Integer> {

  @ParentCommand KubectlBoot top;

  @Parameters(index = "0", paramLabel = "MACHINE", description = "The MachineBoot.")
  String machine;

  @Parameters(index = "1", paramLabel = "BOOTIMAGE", description = "The BootImage to run.")
  String image;

  @Option(names = "--wait", description = "Wait until the machine runs the image or fails.")
  boolean wait;

  @Option(
      names = "--timeout",
      defaultValue = "10m",
      paramLabel = "DURATION",
      description = "How long --wait waits, such as 90s or 10m (default: ${DEFAULT-VALUE}).")
  String timeout;

  @Override
  public Integer call() {
    Json.name(machine, "machine");
    Json.name(image, "bootimage");
    Duration limit = GoDurations.parse(timeout, "--timeout");
    Cluster c = top.cluster();
    GenericKubernetesResource mb = c.machine(machine);
    imageExists(c, image);
    GenericKubernetesResource patched = setExclusive(c, mb, "imageRef", image, "state");
    top.out.println("machineboot.boot.chrootbooter.io/" + machine + " switched to " + image);
    heldNote(top, patched);
    if (!wait) {
      return Exit.OK;
    }
    long generation = generation(patched);
    long start = System.nanoTime();
    MachineWait waiter = new MachineWait(c, top.out);
    MachineWait.Outcome outcome =
        waiter.await(
            machine,
            generation,
            Json.tree(patched).path("status"),
            s ->
                "Running".equals(Json.text(s, "phase"))
                    && image.equals(Json.text(s, "currentImage")),
            limit);
    return finish(top, c, machine, waiter, outcome, machine + " runs " + image, start);
  }

  static void imageExists(Cluster c, String image) {
    try {
      if (c.in(Cluster.BOOT_IMAGE).withName(image).get() == null) {
        throw new CliException(
            Exit.NOT_FOUND, "bootimage " + image + " not found in namespace " + c.namespace());
      }
    } catch (KubernetesClientException e) {
      if (e.getCode() != 403) {
        throw c.translate(e, "bootimage " + image);
      }
      // Not allowed to read BootImages: the operator says so in the machine's status instead.
    }
  }

  /**
   * Sets one of the spec's exclusive fields ({@code imageRef} or {@code state}) and removes the
   * other, as a JSON Patch (a merge patch's {@code null} removes a field on a real API server but
   * is stored as {@code null} by some others). {@code mb} is the MachineBoot as last read: its spec
   * says whether there is a field to remove; a patch refused because the spec changed in between is
   * made again from a fresh read.
   */
  static GenericKubernetesResource setExclusive(
      Cluster c, GenericKubernetesResource mb, String set, String value, String remove) {
    String machine = mb.getMetadata().getName();
    GenericKubernetesResource current = mb;
    for (int attempt = 0; ; attempt++) {
      JsonNode spec = Json.tree(current).path("spec");
      com.fasterxml.jackson.databind.node.ArrayNode ops = Json.MAPPER.createArrayNode();
      ops.addObject().put("op", "add").put("path", "/spec/" + set).put("value", value);
      if (spec.has(remove)) {
        ops.addObject().put("op", "remove").put("path", "/spec/" + remove);
      }
      try {
        return c.in(Cluster.MACHINE_BOOT)
            .withName(machine)
            .patch(PatchContext.of(PatchType.JSON), Json.write(ops));
      } catch (KubernetesClientException e) {
        if (attempt >= 2 || (e.getCode() != 422 && e.getCode() != 500)) {
          throw c.translate(e, "machineboot " + machine);
        }
        current = c.machine(machine);
      }
    }
  }

  static long generation(GenericKubernetesResource r) {
    Long g = r.getMetadata().getGeneration();
    return g == null ? 0 : g;
  }

  /** Says so when a BootTest holds the machine: the edit waits until the test releases it. */
  static void heldNote(KubectlBoot top, GenericKubernetesResource mb) {
    String heldBy = Json.text(Json.tree(mb), "status", "heldBy");
    if (heldBy != null) {
      top.err.println(
          "note: boottest "
              + heldBy
              + " holds "
              + mb.getMetadata().getName()
              + "; the change applies once the test releases it");
    }
  }

  static int finish(
      KubectlBoot top,
      Cluster c,
      String machine,
      MachineWait waiter,
      MachineWait.Outcome outcome,
      String success,
      long start) {
    double seconds = (System.nanoTime() - start) / 1e9;
    if (outcome == MachineWait.Outcome.DONE) {
      top.out.printf("%s (%.1f s)%n", success, seconds);
      return Exit.OK;
    }
    if (waiter.stuck() != null) {
      throw new CliException(
          Exit.FAILED,
          "machineboot "
              + machine
              + " is stalled: "
              + Cluster.firstLine(Terminal.printable(waiter.stuck())));
    }
    JsonNode status = Json.tree(c.machine(machine)).path("status");
    String error = Json.text(status, "error");
    throw new CliException(
        Exit.FAILED,
        "machineboot "
            + machine
            + " failed"
            + (error == null ? "" : ": " + Cluster.firstLine(Terminal.printable(error))));
  }
}
