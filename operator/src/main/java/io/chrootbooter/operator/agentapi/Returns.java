package io.chrootbooter.operator.agentapi;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.ReturnTrigger;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;

/**
 * The returns to the bootstrap that agents report ({@code lastReturn} of a status report): each is
 * recorded once, when the report that first carries it is written into the MachineBoot's status — a
 * report repeating the return already in the status records nothing, and since status writes are
 * serialised by resourceVersion, a return is recorded by exactly one replica. Each goes into the
 * histogram {@code chrootbooter_return_seconds{trigger}} (the agent's own measure, from the trigger
 * to the bootstrap being ready again) and becomes an Event whose reason is the trigger.
 */
@ApplicationScoped
public class Returns {
  /**
   * The triggers the agent knows. Any other name an agent sends is counted and recorded as {@code
   * Other}: a label per invented name would let one machine grow the metrics without bound.
   */
  static final Set<String> TRIGGERS =
      Arrays.stream(ReturnTrigger.values()).map(Enum::name).collect(Collectors.toUnmodifiableSet());

  private static final Duration[] BUCKETS = {
    Duration.ofMillis(50),
    Duration.ofMillis(100),
    Duration.ofMillis(250),
    Duration.ofMillis(500),
    Duration.ofSeconds(1),
    Duration.ofMillis(2500),
    Duration.ofSeconds(5),
    Duration.ofSeconds(10),
    Duration.ofSeconds(30),
    Duration.ofSeconds(60)
  };

  private final EventRecorder events;
  private final MeterRegistry registry;
  private final Map<String, Timer> timers = new ConcurrentHashMap<>();

  Returns(EventRecorder events, MeterRegistry registry) {
    this.events = events;
    this.registry = registry;
  }

  /** Whether {@code reported} is a return the status {@code before} does not hold yet. */
  static boolean isNew(MachineBoot before, LastReturn reported) {
    return reported != null
        && (before.getStatus() == null
            || !Objects.equals(reported, before.getStatus().lastReturn()));
  }

  /**
   * The report holding {@code reported} was written over the status {@code before}: records the
   * return when it is new there.
   */
  void written(MachineBoot before, LastReturn reported) {
    if (!isNew(before, reported)) {
      return;
    }
    String trigger = label(reported.trigger());
    if (reported.durationMillis() != null) {
      timers
          .computeIfAbsent(trigger, this::timer)
          .record(Duration.ofMillis(reported.durationMillis()));
    }
    events.record(before, "Normal", trigger, message(reported));
  }

  /** The metric label and Event reason for a reported trigger name. */
  static String label(String trigger) {
    return TRIGGERS.contains(trigger) ? trigger : "Other";
  }

  /** The Event message: {@code returned to the bootstrap in 159 ms: Ctrl+Alt+F12}. */
  static String message(LastReturn r) {
    StringBuilder m = new StringBuilder("returned to the bootstrap");
    if (r.durationMillis() != null) {
      m.append(" in ").append(r.durationMillis()).append(" ms");
    }
    if (!TRIGGERS.contains(r.trigger())) {
      m.append(" (trigger ").append(r.trigger()).append(')');
    }
    if (r.reason() != null && !r.reason().isBlank()) {
      m.append(": ").append(r.reason());
    }
    return m.toString();
  }

  private Timer timer(String trigger) {
    return Timer.builder("chrootbooter.return")
        .description(
            "Returns to the bootstrap as the agents measure them, from the trigger to the"
                + " bootstrap being ready")
        .tag("trigger", trigger)
        .serviceLevelObjectives(BUCKETS)
        .register(registry);
  }
}
