package io.chrootbooter.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.KubernetesClientTimeoutException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * Waits (through a watch) until a MachineBoot's status describes the spec's generation and says
 * done or failed, printing each phase it passes through.
 */
final class MachineWait {

  /** How a wait ended. */
  enum Outcome {
    DONE,
    FAILED,
    DELETED
  }

  private final Cluster cluster;
  private final PrintStream out;
  private String stuck;

  MachineWait(Cluster cluster, PrintStream out) {
    this.cluster = cluster;
    this.out = out;
  }

  /** Stalled reasons that need a change of the spec: waiting longer changes nothing. */
  private static final java.util.Set<String> STUCK =
      java.util.Set.of("ImageFailed", "InvalidSpec", "DuplicateMacAddress");

  /**
   * Waits until the machine's status, of {@code generation} or later, satisfies {@code done}
   * (returns DONE), or says it failed (returns FAILED): phase Failed from an agent report newer
   * than {@code before} (the status when the spec was changed: a machine that had failed before
   * keeps that phase until its agent reports again), or the condition Stalled for a reason only a
   * spec change cures (ImageFailed, InvalidSpec, DuplicateMacAddress; the message is in {@link
   * #stuck()}). Throws a TIMEOUT error after {@code timeout}.
   */
  Outcome await(
      String machine,
      long generation,
      JsonNode before,
      Predicate<JsonNode> done,
      Duration timeout) {
    long start = System.nanoTime();
    String[] last = {null};
    Outcome[] outcome = {null};
    String reportBefore = Json.text(before, "lastReportTime");
    boolean[] otherPhaseSeen = {!"Failed".equals(Json.text(before, "phase"))};
    Predicate<GenericKubernetesResource> check =
        r -> {
          if (r == null) {
            outcome[0] = Outcome.DELETED;
            return true;
          }
          JsonNode mb = Json.tree(r);
          JsonNode status = mb.path("status");
          String phase = Json.text(status, "phase");
          String image = Json.text(status, "currentImage");
          String shown =
              (phase == null ? "(no phase yet)" : phase) + (image == null ? "" : " " + image);
          if (!Objects.equals(shown, last[0])) {
            last[0] = shown;
            out.printf(
                "%6.1fs  %s  %s%s%n",
                (System.nanoTime() - start) / 1e9,
                machine,
                Terminal.printable(shown),
                progress(status));
            out.flush();
          }
          if (!"Failed".equals(phase)) {
            otherPhaseSeen[0] = true;
          }
          if (status.path("observedGeneration").asLong(-1) < generation) {
            return false;
          }
          for (JsonNode c : status.path("conditions")) {
            if ("Stalled".equals(Json.text(c, "type"))
                && "True".equals(Json.text(c, "status"))
                && STUCK.contains(Json.text(c, "reason"))
                && c.path("observedGeneration").asLong(generation) >= generation) {
              stuck = Json.text(c, "reason") + ": " + Json.text(c, "message");
              outcome[0] = Outcome.FAILED;
              return true;
            }
          }
          if ("Failed".equals(phase)
              && (otherPhaseSeen[0]
                  || !Objects.equals(reportBefore, Json.text(status, "lastReportTime")))) {
            outcome[0] = Outcome.FAILED;
            return true;
          }
          if (done.test(status)) {
            outcome[0] = Outcome.DONE;
            return true;
          }
          return false;
        };
    try {
      cluster
          .in(Cluster.MACHINE_BOOT)
          .withName(machine)
          .waitUntilCondition(check, timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (KubernetesClientTimeoutException e) {
      throw new CliException(
          Exit.TIMEOUT,
          "machineboot "
              + machine
              + " is still "
              + (last[0] == null ? "without a status" : last[0])
              + " after "
              + GoDurations.format(timeout));
    } catch (KubernetesClientException e) {
      throw cluster.translate(e, "machineboot " + machine);
    }
    if (outcome[0] == Outcome.DELETED) {
      throw new CliException(
          Exit.NOT_FOUND, "machineboot " + machine + " was deleted while waiting");
    }
    return outcome[0];
  }

  /** Why the machine is stuck, when a Stalled condition ended the wait; else null. */
  String stuck() {
    return stuck;
  }

  private static String progress(JsonNode status) {
    if (!"Downloading".equals(Json.text(status, "phase"))) {
      return "";
    }
    JsonNode p = status.path("progress");
    if (!p.has("bytes")) {
      return "";
    }
    long bytes = p.path("bytes").asLong();
    String s = "  " + Bytes.format(bytes);
    if (p.has("total")) {
      s += " of " + Bytes.format(p.path("total").asLong());
    }
    if (p.has("bytesPerSecond")) {
      s += " at " + Bytes.format(p.path("bytesPerSecond").asLong()) + "/s";
    }
    return s;
  }
}
