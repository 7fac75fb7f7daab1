package io.chrootbooter.operator.agentapi;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.Timeline;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The status' timelines from reported ones, as a pure function: repeats change nothing, the history
 * holds ended ones only, newest first and bounded, and a boot gets the operator's steps in front.
 */
class FlightRecordsTest {
  private static final Instant T = Instant.parse("2026-03-01T10:00:00Z");

  private static Timeline timeline(String image, Instant start, boolean done, String... names) {
    List<Timeline.Step> steps = new ArrayList<>();
    for (int i = 0; i < names.length; i++) {
      boolean last = i == names.length - 1;
      steps.add(
          new Timeline.Step(
              names[i], start.plusSeconds(i).toString(), last && !done ? null : 1.0, null));
    }
    return new Timeline(
        image,
        null,
        names[0].equals(Timeline.AGENT_UP) ? null : "SpecChange",
        start.toString(),
        done ? names.length : names.length - 1.0,
        done ? Timeline.SUCCEEDED : null,
        null,
        steps);
  }

  private static MachineBootStatus status(FlightRecords.Result r) {
    return MachineBootStatus.builder()
        .phase(MachinePhase.Running)
        .currentImage("one")
        .observedGeneration(1L)
        .build()
        .withTimelines(r.lastBoot(), r.lastSwitch(), r.history());
  }

  @Test
  void repeatsChangeNothingAndTheHistoryIsBoundedNewestFirst() {
    Timeline boot = timeline("one", T, true, "agent-up", "desired-state", "download", "healthy");
    FlightRecords.Result first = FlightRecords.apply(null, List.of(boot), t -> t, 3);
    assertThat(first.lastBoot()).isEqualTo(boot);
    assertThat(first.lastSwitch()).isNull();
    assertThat(first.added()).hasSize(1);
    MachineBootStatus s = status(first);

    FlightRecords.Result again = FlightRecords.apply(s, List.of(boot), t -> t, 3);
    assertThat(again.differsFrom(s)).isFalse();
    assertThat(again.added()).isEmpty();

    for (int i = 1; i <= 4; i++) {
      Timeline sw = timeline("two", T.plusSeconds(60L * i), true, "desired-state", "healthy");
      FlightRecords.Result r = FlightRecords.apply(s, List.of(sw), t -> t, 3);
      assertThat(r.added()).hasSize(1);
      s = status(r);
    }
    assertThat(s.history())
        .extracting(h -> h.started())
        .containsExactly(
            T.plusSeconds(240).toString(),
            T.plusSeconds(180).toString(),
            T.plusSeconds(120).toString());
    assertThat(s.lastBoot()).as("kept while switches come").isEqualTo(boot);
    assertThat(s.lastSwitch().started()).isEqualTo(T.plusSeconds(240).toString());

    Timeline running = timeline("two", T.plusSeconds(600), false, "desired-state", "download");
    FlightRecords.Result inProgress = FlightRecords.apply(s, List.of(running), t -> t, 3);
    assertThat(inProgress.lastSwitch()).isEqualTo(running);
    assertThat(inProgress.history()).isEqualTo(s.history());
    assertThat(inProgress.added()).isEmpty();
    assertThat(FlightRecords.apply(s, null, t -> t, 3).differsFrom(s)).isFalse();
  }

  @Test
  void aBootGetsTheOperatorsStepsInFrontAndStillAddsUp() {
    Timeline boot = timeline("one", T, true, "agent-up", "enrolled", "healthy");
    List<Timeline.Step> served =
        List.of(
            new Timeline.Step(Timeline.SCRIPT_SERVED, T.minusSeconds(10).toString(), 1.5, null),
            new Timeline.Step(Timeline.KERNEL_SERVED, T.minusMillis(8500).toString(), 8.5, "x"));
    Timeline withServed = FlightRecords.withServed(boot, served);
    assertThat(withServed.steps())
        .extracting(Timeline.Step::name)
        .containsExactly("script-served", "kernel-served", "agent-up", "enrolled", "healthy");
    assertThat(withServed.started()).isEqualTo(T.minusSeconds(10).toString());
    assertThat(withServed.seconds()).isEqualTo(13.0);
    assertThat(FlightRecords.withServed(withServed, served)).as("once").isEqualTo(withServed);
    Timeline sw = timeline("two", T, true, "desired-state", "healthy");
    assertThat(
            FlightRecords.apply(null, List.of(sw), t -> FlightRecords.withServed(t, served), 10)
                .lastSwitch())
        .as("a switch gets none")
        .isEqualTo(sw);
  }
}
