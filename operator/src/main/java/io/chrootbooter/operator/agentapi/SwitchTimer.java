package io.chrootbooter.operator.agentapi;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.protocol.Action;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.StatusReport;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Times image switches as the operator sees them: from the moment this replica pushed a {@code Run}
 * state of a new generation on the machine's desired-state stream to the moment a report saying
 * {@code Running} with that {@code appliedGeneration} reached this replica — download, verify,
 * mount, and the return of the previous image when one ran, plus the network both ways and the
 * agent's at most one report a second. Recorded as {@code
 * chrootbooter_switch_seconds{trigger,image}}: {@code trigger} is {@code SpecChange} when an image
 * was running at the push, {@code Bootstrap} when the machine waited in the bootstrap (a first
 * boot, or after a return); {@code image} is the BootImage's name, so there are at most two series
 * per BootImage name. When the last BootImage of a name is deleted, its series are removed from
 * this replica's registry (they disappear from {@code /q/metrics}; what Prometheus scraped before
 * stays in its history).
 *
 * <p>Only the replica that pushed can time a switch. With several replicas, a machine's reports may
 * reach another replica than its stream (the Helm chart's Service keeps a client on one replica
 * with session affinity, so they normally do not); such switches are not timed, and a pending timer
 * is dropped when the next generation is pushed.
 */
@ApplicationScoped
public class SwitchTimer {
  private static final Duration[] BUCKETS = {
    Duration.ofMillis(250),
    Duration.ofMillis(500),
    Duration.ofSeconds(1),
    Duration.ofSeconds(2),
    Duration.ofSeconds(5),
    Duration.ofSeconds(10),
    Duration.ofSeconds(30),
    Duration.ofSeconds(60),
    Duration.ofMinutes(2),
    Duration.ofMinutes(5),
    Duration.ofMinutes(10)
  };

  /** A pushed generation waiting for its Running report. */
  private record Pending(long generation, long pushedNanos, String trigger, String image) {}

  /** A series: trigger and image. */
  private record Series(String trigger, String image) {}

  private final MeterRegistry registry;
  private final Map<String, Pending> pending = new ConcurrentHashMap<>();

  private final Map<Series, Timer> timers = new ConcurrentHashMap<>();
  private final MachineDirectory directory;

  SwitchTimer(MeterRegistry registry, MachineDirectory directory) {
    this.registry = registry;
    this.directory = directory;
    directory.onResourceChange(this::changed);
  }

  /** A BootImage deleted, the last of its name: its series go. */
  private void changed(io.fabric8.kubernetes.api.model.HasMetadata resource) {
    if (!(resource instanceof io.chrootbooter.api.v1alpha1.BootImage image)
        || image.getMetadata() == null) {
      return;
    }
    String name = image.getMetadata().getName();
    boolean exists =
        directory.images().stream().anyMatch(i -> name.equals(i.getMetadata().getName()));
    if (exists) {
      return;
    }
    timers
        .entrySet()
        .removeIf(
            e -> {
              if (name.equals(e.getKey().image())) {
                registry.remove(e.getValue());
                return true;
              }
              return false;
            });
  }

  /** A desired state went out on a stream of {@code mac}; {@code machine} is its MachineBoot. */
  void pushed(String mac, DesiredState state, Optional<MachineBoot> machine, long nanos) {
    if (state.action() != Action.Run || state.image() == null) {
      return;
    }
    long generation = state.generation();
    if (runsAlready(machine, generation)) {
      return; // a reconnect: nothing switches
    }
    MachinePhase phase =
        machine.map(MachineBoot::getStatus).map(s -> s.phase()).orElse(MachinePhase.Pending);
    String trigger = phase == MachinePhase.Running ? "SpecChange" : "Bootstrap";
    pending.compute(
        mac,
        (m, p) ->
            p != null && p.generation() == generation
                ? p
                : new Pending(
                    generation,
                    nanos,
                    trigger,
                    state.image().name() == null ? "" : state.image().name()));
  }

  /** A report from {@code mac} arrived at this replica. */
  void reported(String mac, StatusReport report, long nanos) {
    Long applied = report.appliedGeneration();
    if (applied == null || report.phase() != MachinePhase.Running) {
      return;
    }
    Pending p = pending.get(mac);
    if (p != null && applied >= p.generation() && pending.remove(mac, p)) {
      if (applied == p.generation()) {
        timers
            .computeIfAbsent(new Series(p.trigger(), p.image()), this::timer)
            .record(nanos - p.pushedNanos(), TimeUnit.NANOSECONDS);
      }
    }
  }

  /** The status says the machine runs this generation's image already, as last reconciled. */
  private static boolean runsAlready(Optional<MachineBoot> machine, long generation) {
    return machine
        .map(MachineBoot::getStatus)
        .filter(s -> s.phase() == MachinePhase.Running)
        .flatMap(s -> s.conditions().stream().filter(c -> "Ready".equals(c.getType())).findFirst())
        .filter(c -> "True".equals(c.getStatus()))
        .map(c -> c.getObservedGeneration() != null && c.getObservedGeneration() == generation)
        .orElse(false);
  }

  private Timer timer(Series series) {
    return Timer.builder("chrootbooter.switch")
        .description(
            "Image switches, from the desired state pushed to the agent to its report of Running"
                + " that generation")
        .tag("trigger", series.trigger())
        .tag("image", series.image())
        .serviceLevelObjectives(BUCKETS)
        .register(registry);
  }
}
