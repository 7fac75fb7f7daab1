package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.agent.fetch.DownloadProgress;
import io.chrootbooter.protocol.Action;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import io.chrootbooter.protocol.Timeline;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The flight recorder's rules on a clock the test moves: what begins and ends a timeline, and that
 * the steps always add up to it. The real steps of a real switch are {@link FlightRecorderTest}'s.
 */
class FlightRecorderRulesTest {
  private static final String SHA = "ab".repeat(32);
  private Instant now = Instant.parse("2026-03-01T10:00:00Z");
  private final FlightRecorder recorder =
      new FlightRecorder(
          new Clock() {
            @Override
            public ZoneOffset getZone() {
              return ZoneOffset.UTC;
            }

            @Override
            public Clock withZone(java.time.ZoneId zone) {
              return this;
            }

            @Override
            public Instant instant() {
              return now;
            }
          });

  private void tick(long millis) {
    now = now.plusMillis(millis);
  }

  private static DesiredState run(long generation, String name, String bootTimeout) {
    return DesiredState.builder()
        .action(Action.Run)
        .generation(generation)
        .image(
            DesiredState.Image.builder()
                .name(name)
                .url("http://op/i/" + name)
                .sha256(SHA)
                .format(ImageFormat.SQUASHFS)
                .build())
        .overlay("tmpfs")
        .bootTimeout(bootTimeout)
        .build();
  }

  /** A load of {@code state} up to the init's exec, each step 100 ms. */
  private void loadAndEnter(DesiredState state, Duration bootTimeout) {
    tick(100);
    recorder.loadStarted(state, bootTimeout);
    tick(100);
    recorder.loadPhase(MachinePhase.Downloading);
    recorder.progress(new DownloadProgress(1 << 20, 1 << 20, 1e7, java.util.Optional.empty()));
    tick(100);
    recorder.loadPhase(MachinePhase.Verifying);
    tick(100);
    recorder.loadPhase(MachinePhase.Mounting);
    tick(100);
    recorder.step(Timeline.PIVOT_ROOT, now, null);
    tick(100);
    recorder.step(Timeline.INIT_EXEC, now, null);
    tick(100);
    recorder.step(Timeline.HEALTHY, now, null);
  }

  private static List<String> names(Timeline t) {
    return t.steps().stream().map(Timeline.Step::name).toList();
  }

  private static void assertAddsUp(Timeline t) {
    double sum = t.steps().stream().mapToDouble(s -> s.seconds() == null ? 0 : s.seconds()).sum();
    assertThat(t.seconds()).isCloseTo(sum, org.assertj.core.api.Assertions.within(1e-9));
    assertThat(t.started()).isEqualTo(t.steps().get(0).at());
  }

  @Test
  void aBootFollowsTheFirstDesiredStateAndEndsWhenHealthy() {
    recorder.agentUp(now, "b1");
    tick(500);
    recorder.enrolling(now);
    tick(300);
    DesiredState one = run(1, "one", null);
    recorder.desiredArrived(one);
    loadAndEnter(one, Duration.ZERO);
    Timeline running = recorder.timelines().get(0);
    assertThat(running.result()).isNull();
    assertThat(running.steps().get(running.steps().size() - 1).seconds()).isNull();
    tick(2000);
    recorder.healthy(now);

    Timeline boot = recorder.timelines().get(0);
    assertThat(boot.boot()).isTrue();
    assertThat(names(boot)).containsExactlyElementsOf(FlightSteps.FIRST_BOOT);
    assertThat(boot.result()).isEqualTo(Timeline.SUCCEEDED);
    assertThat(boot.trigger()).isNull();
    assertThat(boot.seconds()).isEqualTo(3.5);
    assertThat(boot.steps().get(0).detail()).isEqualTo("boot id b1");
    assertThat(boot.steps().get(3).detail()).isEqualTo("1.00 MiB at 10.5 MB/s");
    assertThat(boot.steps().get(8).seconds()).isEqualTo(2.0);
    assertAddsUp(boot);
  }

  @Test
  void aNewGenerationsReturnBeginsItsSwitchAndABootTimeoutFailsIt() {
    DesiredState one = run(1, "one", null);
    recorder.desiredArrived(one);
    loadAndEnter(one, Duration.ZERO);
    recorder.healthy(now);

    tick(10_000);
    DesiredState two = run(2, "two", "30s");
    recorder.desiredArrived(two);
    tick(5);
    recorder.returnTriggered(ReturnTrigger.SpecChange, "spec generation 2", now);
    tick(5);
    recorder.step(Timeline.GRACE, now, "signal 12, grace period 1000 ms");
    tick(1000);
    recorder.step(Timeline.FORCED, now, "SIGKILL after the grace period");
    tick(50);
    recorder.step(Timeline.TEARDOWN, now, null);
    tick(50);
    recorder.step(Timeline.BOOTSTRAP_READY, now, null);
    tick(10);
    recorder.returnEnded(now);
    loadAndEnter(two, Duration.ofSeconds(30));
    tick(30_000);
    recorder.returnTriggered(ReturnTrigger.BootTimeout, "not healthy within 30000 ms", now);

    List<Timeline> all = recorder.timelines();
    Timeline sw = all.get(1);
    assertThat(names(sw)).containsExactlyElementsOf(FlightSteps.FORCED_SWITCH);
    assertThat(sw.trigger()).isEqualTo("SpecChange");
    assertThat(sw.image()).isEqualTo("two");
    assertThat(sw.result()).isEqualTo(Timeline.FAILED);
    assertThat(sw.message()).contains("bootTimeout");
    assertAddsUp(sw);
    // The boot timeout's return is a timeline of its own, in progress until the bootstrap is ready.
    assertThat(all.get(0).trigger()).isEqualTo("BootTimeout");
    assertThat(all.get(0).image()).isNull();
    assertThat(all.get(0).result()).isNull();
    tick(200);
    recorder.step(Timeline.TEARDOWN, now, null);
    tick(20);
    recorder.returnEnded(now);
    Timeline back = recorder.timelines().get(0);
    assertThat(names(back)).containsExactly("return-trigger", "teardown");
    assertThat(back.result()).isEqualTo(Timeline.SUCCEEDED);
    assertThat(back.seconds()).isEqualTo(0.22);
    assertThat(recorder.timelines()).hasSize(3);
  }

  @Test
  void anImageThatNeverReportsHealthyEndsAtItsInitsExecAndAFailedLoadFails() {
    DesiredState one = run(1, "one", null);
    recorder.desiredArrived(one);
    loadAndEnter(one, Duration.ZERO);
    Instant exec = now;
    tick(FlightRecorder.HEALTH_WAIT.toMillis() + 1);
    Timeline ran = recorder.timelines().get(0);
    assertThat(ran.result()).isEqualTo(Timeline.SUCCEEDED);
    assertThat(ran.message()).startsWith("no health report within");
    assertThat(names(ran)).endsWith("init-exec").doesNotContain("healthy");
    assertThat(Instant.parse(ran.started()).plusMillis(Math.round(ran.seconds() * 1000)))
        .isEqualTo(exec);

    DesiredState two = run(2, "two", null);
    recorder.desiredArrived(two);
    recorder.loadStarted(two, Duration.ZERO);
    tick(100);
    recorder.loadPhase(MachinePhase.Downloading);
    tick(100);
    recorder.loadFailed("sha256 mismatch");
    Timeline failed = recorder.timelines().get(0);
    assertThat(names(failed)).containsExactly("desired-state", "download");
    assertThat(failed.result()).isEqualTo(Timeline.FAILED);
    assertThat(failed.message()).isEqualTo("sha256 mismatch");
    assertAddsUp(failed);
  }
}
