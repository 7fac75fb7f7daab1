package io.chrootbooter.operator.agentapi;

import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.api.v1alpha1.TimelineSummary;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.machine.BootFetches;
import io.chrootbooter.protocol.Timeline;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The operator's side of the boot flight recorder: composes a machine's {@code status.lastBoot},
 * {@code status.lastSwitch} and {@code status.history} from its agent's timelines and the steps
 * this replica served ({@link BootFetches}), and records each ended timeline's steps, once, in
 * {@code chrootbooter_step_seconds{step}} (by the replica whose status write added it to the
 * history).
 */
@ApplicationScoped
public class TimelineRecorder {
  private static final Duration[] BUCKETS = {
    Duration.ofMillis(10),
    Duration.ofMillis(50),
    Duration.ofMillis(100),
    Duration.ofMillis(250),
    Duration.ofMillis(500),
    Duration.ofSeconds(1),
    Duration.ofSeconds(2),
    Duration.ofSeconds(5),
    Duration.ofSeconds(10),
    Duration.ofSeconds(30),
    Duration.ofSeconds(60),
    Duration.ofMinutes(2),
    Duration.ofMinutes(5)
  };

  private final BootFetches fetches;
  private final MeterRegistry registry;
  private final int limit;
  private final Map<String, Timer> steps = new ConcurrentHashMap<>();

  TimelineRecorder(BootFetches fetches, MeterRegistry registry, OperatorConfig config) {
    this.fetches = fetches;
    this.registry = registry;
    this.limit = Math.max(1, config.agent().timelineHistory());
  }

  /** The status' timelines once the report's {@code timelines} of machine {@code mac} are in. */
  FlightRecords.Result apply(String mac, MachineBootStatus old, List<Timeline> timelines) {
    return FlightRecords.apply(old, timelines, t -> withServed(mac, t), limit);
  }

  private Timeline withServed(String mac, Timeline boot) {
    if (boot.steps().isEmpty()) {
      return boot;
    }
    return FlightRecords.instant(boot.steps().get(0).at())
        .map(agentUp -> FlightRecords.withServed(boot, fetches.stepsBefore(mac, agentUp)))
        .orElse(boot);
  }

  /** A status write added these ended timelines to the history: their steps are observed. */
  void added(List<TimelineSummary> summaries) {
    for (TimelineSummary s : summaries) {
      s.stepSeconds()
          .forEach(
              (step, seconds) -> {
                if (Timeline.STEP_NAMES.contains(step) && seconds != null) {
                  steps
                      .computeIfAbsent(step, this::timer)
                      .record(Math.round(seconds * 1e9), TimeUnit.NANOSECONDS);
                }
              });
    }
  }

  private Timer timer(String step) {
    return Timer.builder("chrootbooter.step")
        .description(
            "Steps of the boots, switches and returns machines reported (the flight recorder),"
                + " by step")
        .tag("step", step)
        .serviceLevelObjectives(BUCKETS)
        .register(registry);
  }
}
