package io.chrootbooter.operator.boottest;

import io.chrootbooter.api.v1alpha1.AfterTest;
import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.BootTestPromotion;
import io.chrootbooter.api.v1alpha1.BootTestSpec;
import io.chrootbooter.api.v1alpha1.BootTestStatus;
import io.chrootbooter.api.v1alpha1.BootTestStatus.TestPhase;
import io.chrootbooter.api.v1alpha1.MachineSelection;
import io.chrootbooter.api.v1alpha1.MachineTestResult;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckOutcome;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckResult;
import io.chrootbooter.api.v1alpha1.MachineTestResult.MachineTestPhase;
import io.chrootbooter.api.v1alpha1.MachineTestResult.TimelineEntry;
import io.chrootbooter.api.v1alpha1.PromotionStatus;
import io.chrootbooter.api.v1alpha1.PromotionStatus.PromotionPhase;
import io.chrootbooter.api.v1alpha1.PromotionStatus.RolledBack;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.boottest.BootTestRules.Note;
import io.chrootbooter.operator.boottest.BootTestRules.Observation;
import io.chrootbooter.operator.boottest.BootTestRules.Plan;
import io.chrootbooter.operator.boottest.BootTestRules.Release;
import io.chrootbooter.operator.boottest.BootTestRules.Write;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.operator.status.Reason;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The guarded rollout of a BootTest with {@code spec.promote}, as a pure function of what the
 * reconciler observed, like {@link BootTestRules}: while the test runs, the rules decide alone;
 * once every tested machine passed, the machines of {@code promoteTo} are switched in batches of at
 * most {@code maxUnavailable}, each batch run through the same rules as a test of its own (the same
 * holds, checks and timeline), and the next batch starts only when every machine of the last one
 * ended. A machine that passes is released with its spec's {@code imageRef} set to the image; one
 * that fails goes back to its spec (rolled back). At {@code failureThreshold} failures the
 * promotion stops: the machines of the batch still switching are rolled back at once, and no other
 * machine is switched.
 *
 * <p>The machines of both selections are chosen when the test starts; a machine in both is refused
 * then, before anything is held. The test's timeout applies to the test, and again to each batch.
 */
public final class Promotion {
  private static final int MAX_NAMES = 20;

  private Promotion() {}

  /** Whether {@code bt} promotes: its plan comes from {@link #plan}, not from the rules alone. */
  public static boolean applies(BootTest bt) {
    return bt.getSpec() != null && bt.getSpec().promote() != null;
  }

  /** The next step of a test with {@code spec.promote}. */
  public static Plan plan(Observation o) {
    BootTest bt = o.test();
    BootTestSpec spec = bt.getSpec();
    BootTestStatus old = bt.getStatus();
    PromotionStatus p = old == null ? null : old.promotion();
    boolean started = old != null && old.startTime() != null;
    if (!started && BootTestValidator.violations(spec).isEmpty()) {
      List<String> tested = BootTestRules.select(spec, o.machines().values());
      List<String> targets =
          BootTestRules.select(spec.promote().promoteTo(), o.machines().values());
      List<String> both = targets.stream().filter(tested::contains).toList();
      if (!tested.isEmpty() && !both.isEmpty()) {
        return refused(
            o,
            "spec.promote.promoteTo: selects "
                + names(both)
                + ", which spec.machines tests too; a machine is either tested or promoted",
            Reason.InvalidSpec);
      }
      if (!tested.isEmpty() && targets.isEmpty()) {
        return refused(
            o,
            "no MachineBoot of namespace "
                + bt.getMetadata().getNamespace()
                + " matches spec.promote.promoteTo",
            Reason.NoMachines);
      }
      p = waiting(targets, spec);
    }
    if (p == null) {
      return BootTestRules.plan(o); // refused by the rules (an invalid spec): nothing to promote
    }
    List<Write> writes = new ArrayList<>();
    List<Note> notes = new ArrayList<>();
    BootTestStatus testPart = old;
    if (p.phase() == PromotionPhase.Waiting) {
      Plan test = BootTestRules.plan(o);
      writes.addAll(test.writes());
      notes.addAll(test.notes());
      testPart = test.status();
      if (testPart.phase() == TestPhase.Failed) {
        p = notStarted(p, testPart);
        return new Plan(status(o, testPart, p), writes, notes, Optional.empty());
      }
      if (testPart.phase() != TestPhase.Passed) {
        return new Plan(status(o, testPart, p), writes, notes, test.requeue());
      }
      p = start(o, p, notes);
    }
    if (p.phase() == PromotionPhase.Promoting) {
      p = step(o, testPart, p, writes, notes);
    }
    return new Plan(
        status(o, testPart, p),
        writes,
        notes,
        p.phase() == PromotionPhase.Promoting ? Optional.of(BootTestRules.POLL) : Optional.empty());
  }

  /** Every tested machine passed: the promotion starts. */
  private static PromotionStatus start(Observation o, PromotionStatus p, List<Note> notes) {
    BootTestSpec spec = o.test().getSpec();
    BootTestPromotion promote = spec.promote();
    String message =
        "promoting BootImage "
            + spec.imageRef()
            + " to "
            + p.total()
            + (p.total() == 1 ? " machine" : " machines")
            + ", at most "
            + promote.maxUnavailableOrDefault()
            + " at a time; it stops at "
            + promote.failureThresholdOrDefault()
            + (promote.failureThresholdOrDefault() == 1 ? " failure" : " failures");
    notes.add(new Note(null, false, Reason.PromotionStarted, message));
    List<MachineTestResult> machines =
        p.machines().stream().map(m -> withMessage(m, "waiting for its batch")).toList();
    return new PromotionStatus(
        PromotionPhase.Promoting,
        progress(0, p.total()),
        p.total(),
        0,
        0,
        0,
        List.of(),
        null,
        BootTestRules.stamp(o.now()),
        null,
        message,
        machines,
        List.of());
  }

  /** One step of a promotion in progress: its batch advanced, stopped, or the next one begun. */
  private static PromotionStatus step(
      Observation o,
      BootTestStatus testPart,
      PromotionStatus p,
      List<Write> writes,
      List<Note> notes) {
    BootTest bt = o.test();
    BootTestSpec spec = bt.getSpec();
    BootTestPromotion promote = spec.promote();
    String test = bt.getMetadata().getName();
    Instant now = o.now();
    Map<String, MachineTestResult> machines = new LinkedHashMap<>();
    p.machines().forEach(m -> machines.put(m.name(), m));
    List<RolledBack> rolledBack = new ArrayList<>(p.rolledBack());
    List<String> batch = new ArrayList<>(p.batchMachines());
    int batchNo = p.batch() == null ? 0 : p.batch();
    String batchStart = p.batchStartTime();
    PromotionPhase phase = PromotionPhase.Promoting;
    String message = p.message();

    String abort = null;
    List<String> violations = BootTestValidator.violations(spec);
    Long generation = bt.getMetadata().getGeneration();
    if (!violations.isEmpty()) {
      abort = String.join("; ", violations);
    } else if (testPart.observedGeneration() != null
        && !testPart.observedGeneration().equals(generation)) {
      abort =
          "spec: changed while the test ran; a BootTest's spec is fixed once it starts (delete"
              + " it and create it again)";
    }

    if (!batch.isEmpty() && abort == null) {
      BootTest batchTest =
          batchTest(bt, testPart.observedGeneration(), batch, batchStart, machines);
      Plan bp =
          BootTestRules.plan(
              new Observation(
                  batchTest, o.image(), o.machines(), o.liveTests(), now, o.consoles(), true));
      writes.addAll(bp.writes());
      notes.addAll(bp.notes());
      for (MachineTestResult r : bp.status().machines()) {
        MachineTestResult before = machines.put(r.name(), r);
        boolean wasDone = before != null && before.phase() != null && before.phase().done();
        if (!wasDone && failed(r) && r.startTime() != null) {
          rolledBack.add(new RolledBack(r.name(), r.previousImage(), r.message()));
          notes.add(
              new Note(
                  r.name(),
                  true,
                  Reason.RolledBack,
                  "failed as BootTest "
                      + test
                      + " promoted BootImage "
                      + spec.imageRef()
                      + " ("
                      + r.message()
                      + "): rolled back, it follows its spec again"));
          notes.add(
              new Note(null, true, Reason.RolledBack, r.name() + " rolled back: " + r.message()));
        }
      }
    }

    int threshold = promote.failureThresholdOrDefault();
    int failures = failures(machines);
    if (abort != null || failures >= threshold) {
      String why =
          abort != null
              ? abort
              : "failureThreshold "
                  + threshold
                  + " reached ("
                  + failures
                  + (failures == 1 ? " failure" : " failures")
                  + ")";
      for (String name : batch) {
        MachineTestResult r = machines.get(name);
        if (r == null || (r.phase() != null && r.phase().done())) {
          continue;
        }
        machines.put(name, stopped(r, "stopped: " + why, now));
        if (r.startTime() != null && (heldBy(o, name, test) || heldNow(writes, name))) {
          writes.add(new Release(name, AfterTest.Restore, null));
          rolledBack.add(
              new RolledBack(
                  name, r.previousImage(), "switching when the promotion stopped: " + why));
          notes.add(
              new Note(
                  name,
                  true,
                  Reason.RolledBack,
                  "BootTest "
                      + test
                      + " stopped its promotion of BootImage "
                      + spec.imageRef()
                      + " ("
                      + why
                      + "): rolled back, it follows its spec again"));
          notes.add(
              new Note(
                  null,
                  true,
                  Reason.RolledBack,
                  name + " rolled back: switching when the promotion stopped"));
        }
      }
      for (MachineTestResult r : List.copyOf(machines.values())) {
        if (r.startTime() == null && r.phase() == MachineTestPhase.Pending) {
          machines.put(r.name(), withMessage(r, "not promoted: the promotion stopped"));
        }
      }
      phase = PromotionPhase.Stopped;
      message =
          "stopped: "
              + why
              + "; "
              + progress(promoted(machines), machines.size())
              + rolledBackText(rolledBack);
      notes.add(new Note(null, true, Reason.PromotionStopped, message));
    } else if (!batch.isEmpty() && batch.stream().allMatch(n -> done(machines.get(n)))) {
      List<String> passed = batch.stream().filter(n -> passed(machines.get(n))).toList();
      List<String> back = batch.stream().filter(n -> !passed(machines.get(n))).toList();
      notes.add(
          new Note(
              null,
              !back.isEmpty(),
              Reason.PromotionBatch,
              "batch "
                  + batchNo
                  + " done: "
                  + (passed.isEmpty() ? "none promoted" : names(passed) + " promoted")
                  + (back.isEmpty() ? "" : "; " + names(back) + " failed")
                  + "; "
                  + progress(promoted(machines), machines.size())));
      batch = List.of();
    }

    if (phase == PromotionPhase.Promoting && batch.isEmpty()) {
      List<String> next =
          machines.values().stream()
              .filter(r -> r.startTime() == null && r.phase() == MachineTestPhase.Pending)
              .map(MachineTestResult::name)
              .limit(promote.maxUnavailableOrDefault())
              .toList();
      if (next.isEmpty()) {
        phase = PromotionPhase.Promoted;
        message = progress(promoted(machines), machines.size()) + rolledBackText(rolledBack);
        notes.add(new Note(null, !rolledBack.isEmpty(), Reason.Promoted, message));
      } else {
        batch = next;
        batchNo++;
        batchStart = BootTestRules.stamp(now);
        int batches =
            (machines.size() + promote.maxUnavailableOrDefault() - 1)
                / promote.maxUnavailableOrDefault();
        for (String name : next) {
          machines.put(name, withMessage(machines.get(name), "waiting for its turn"));
        }
        message =
            "batch "
                + batchNo
                + " of at most "
                + batches
                + ": "
                + names(next)
                + "; "
                + progress(promoted(machines), machines.size());
        notes.add(
            new Note(
                null,
                false,
                Reason.PromotionBatch,
                "batch "
                    + batchNo
                    + ": switching "
                    + names(next)
                    + " to BootImage "
                    + spec.imageRef()));
      }
    } else if (phase == PromotionPhase.Promoting) {
      message =
          "batch "
              + batchNo
              + ": "
              + names(batch)
              + "; "
              + progress(promoted(machines), machines.size());
    }
    List<MachineTestResult> results = List.copyOf(machines.values());
    return new PromotionStatus(
        phase,
        progress(promoted(machines), machines.size()),
        machines.size(),
        promoted(machines),
        failures(machines),
        batchNo,
        batch,
        batchStart,
        p.startTime(),
        phase.done() ? BootTestRules.stamp(now) : null,
        BootTestRules.clip(message),
        results,
        rolledBack);
  }

  /**
   * The batch as a BootTest of its own for the rules: its machines by name, as many at a time as
   * the batch has, passing ones kept, failing ones rolled back ({@link Observation#promotion()}).
   */
  private static BootTest batchTest(
      BootTest bt,
      Long generation,
      List<String> batch,
      String batchStart,
      Map<String, MachineTestResult> machines) {
    BootTestSpec spec = bt.getSpec();
    BootTest t = new BootTest();
    ObjectMeta meta = new ObjectMeta();
    meta.setName(bt.getMetadata().getName());
    meta.setNamespace(bt.getMetadata().getNamespace());
    meta.setGeneration(generation);
    t.setMetadata(meta);
    t.setSpec(
        new BootTestSpec(
            spec.imageRef(),
            new MachineSelection(null, batch),
            Math.max(1, batch.size()),
            spec.checks(),
            spec.timeout(),
            AfterTest.Keep,
            null));
    t.setStatus(
        new BootTestStatus(
            TestPhase.Running,
            generation,
            batchStart,
            null,
            0,
            0,
            batch.stream().map(machines::get).toList(),
            List.of()));
    return t;
  }

  /** Refused when the test starts: nothing is held. */
  private static Plan refused(Observation o, String why, Reason reason) {
    BootTest bt = o.test();
    String now = BootTestRules.stamp(o.now());
    Long generation = bt.getMetadata().getGeneration();
    PromotionStatus p =
        new PromotionStatus(
            PromotionPhase.NotStarted,
            null,
            0,
            0,
            0,
            0,
            List.of(),
            null,
            null,
            now,
            BootTestRules.clip(why),
            List.of(),
            List.of());
    BootTestStatus status =
        new BootTestStatus(
            TestPhase.Failed,
            generation,
            now,
            now,
            0,
            0,
            List.of(),
            Conditions.merge(
                bt.getStatus() == null ? List.of() : bt.getStatus().conditions(),
                List.of(
                    condition("Complete", false, reason, why, generation),
                    condition("Failed", true, reason, why, generation),
                    condition("Running", false, reason, why, generation),
                    condition("Promoted", false, reason, why, generation),
                    condition("RolledBack", false, reason, why, generation)),
                o.now()),
            p);
    return new Plan(
        status, List.of(), List.of(new Note(null, true, reason, why)), Optional.empty());
  }

  private static PromotionStatus waiting(List<String> targets, BootTestSpec spec) {
    List<MachineTestResult> machines =
        targets.stream()
            .map(
                name ->
                    new MachineTestResult(
                        name,
                        MachineTestPhase.Pending,
                        "waiting for the test to pass",
                        null,
                        null,
                        null,
                        spec.checksOrEmpty().stream()
                            .map(
                                c ->
                                    new CheckResult(
                                        c.nameOrDefault(),
                                        c.kind(),
                                        CheckOutcome.Pending,
                                        null,
                                        null,
                                        null))
                            .toList(),
                        List.of(),
                        null,
                        null,
                        null,
                        null))
            .toList();
    return new PromotionStatus(
        PromotionPhase.Waiting,
        progress(0, targets.size()),
        targets.size(),
        0,
        0,
        0,
        List.of(),
        null,
        null,
        null,
        "waiting for the test to pass",
        machines,
        List.of());
  }

  private static PromotionStatus notStarted(PromotionStatus p, BootTestStatus testPart) {
    String why = "not started: the test did not pass";
    return new PromotionStatus(
        PromotionPhase.NotStarted,
        p.progress(),
        p.total(),
        0,
        0,
        0,
        List.of(),
        null,
        null,
        testPart.completionTime(),
        why,
        p.machines().stream()
            .map(m -> withMessage(m, "not promoted: the test did not pass"))
            .toList(),
        List.of());
  }

  /** The whole status: the test's part, the promotion, and the counts and conditions of both. */
  private static BootTestStatus status(Observation o, BootTestStatus testPart, PromotionStatus p) {
    BootTest bt = o.test();
    BootTestStatus old = bt.getStatus();
    List<MachineTestResult> all = new ArrayList<>(testPart.machines());
    all.addAll(p.machines());
    int passed = (int) all.stream().filter(Promotion::passed).count();
    int failed = (int) all.stream().filter(Promotion::failed).count();
    TestPhase phase;
    Reason reason;
    String message;
    String testMessage =
        Conditions.find(testPart.conditions(), "Running")
            .filter(c -> "True".equals(c.getStatus()))
            .or(() -> Conditions.find(testPart.conditions(), "Failed"))
            .or(() -> Conditions.find(testPart.conditions(), "Complete"))
            .map(Condition::getMessage)
            .orElse("");
    switch (p.phase()) {
      case Waiting -> {
        phase = testPart.phase();
        reason = Reason.TestRunning;
        message =
            testMessage
                + "; then promotes to "
                + p.total()
                + (p.total() == 1 ? " machine" : " machines");
      }
      case Promoting -> {
        phase = TestPhase.Running;
        reason = Reason.TestRunning;
        message = "the test passed; promoting: " + p.message();
      }
      case Promoted -> {
        phase = failed == 0 ? TestPhase.Passed : TestPhase.Failed;
        reason = failed == 0 ? Reason.TestPassed : Reason.TestFailed;
        message = "the test passed; " + p.message();
      }
      case Stopped -> {
        phase = TestPhase.Failed;
        reason = Reason.PromotionStopped;
        message = "the test passed; the promotion " + p.message();
      }
      default -> {
        phase = TestPhase.Failed;
        reason = testPart.phase() == TestPhase.Failed ? Reason.TestFailed : Reason.InvalidSpec;
        message = testMessage;
      }
    }
    boolean ended = phase == TestPhase.Passed || phase == TestPhase.Failed;
    Long generation = testPart.observedGeneration();
    boolean anyBack = !p.rolledBack().isEmpty();
    Reason promotedReason =
        switch (p.phase()) {
          case Promoted -> Reason.Promoted;
          case Stopped -> Reason.PromotionStopped;
          case NotStarted -> Reason.TestFailed;
          default -> Reason.TestRunning;
        };
    List<Condition> desired =
        List.of(
            condition("Complete", phase == TestPhase.Passed, reason, message, generation),
            condition("Failed", phase == TestPhase.Failed, reason, message, generation),
            condition("Running", !ended, reason, message, generation),
            condition(
                "Promoted",
                p.phase() == PromotionPhase.Promoted,
                promotedReason,
                p.progress() == null
                        || (p.message() != null && p.message().startsWith(p.progress()))
                    ? p.message()
                    : p.progress() + ": " + p.message(),
                generation),
            condition(
                "RolledBack",
                anyBack,
                anyBack ? Reason.RolledBack : promotedReason,
                anyBack
                    ? "rolled back: " + rolledBackNames(p.rolledBack())
                    : "no machine rolled back",
                generation));
    String completion =
        ended
            ? (old != null && old.completionTime() != null && old.phase() == phase
                ? old.completionTime()
                : BootTestRules.stamp(o.now()))
            : null;
    return new BootTestStatus(
        phase,
        generation,
        testPart.startTime(),
        completion,
        passed,
        failed,
        testPart.machines(),
        Conditions.merge(old == null ? List.of() : old.conditions(), desired, o.now()),
        p);
  }

  /** Ends a machine of a stopped batch: checks running end in Error, those not run are skipped. */
  private static MachineTestResult stopped(MachineTestResult r, String why, Instant now) {
    List<CheckResult> checks = new ArrayList<>();
    for (CheckResult c : r.checks()) {
      if (c.result() == CheckOutcome.Running) {
        Long took =
            c.startTime() == null
                ? null
                : Duration.between(Instant.parse(c.startTime()), now).toMillis();
        checks.add(
            new CheckResult(
                c.name(), c.kind(), CheckOutcome.Error, c.startTime(), took, clip(why)));
      } else if (c.result() == CheckOutcome.Pending) {
        checks.add(new CheckResult(c.name(), c.kind(), CheckOutcome.Skipped, null, null, null));
      } else {
        checks.add(c);
      }
    }
    List<TimelineEntry> timeline = new ArrayList<>(r.timeline());
    timeline.add(new TimelineEntry(BootTestRules.stamp(now), clip("Error: " + why)));
    if (r.startTime() != null) {
      timeline.add(
          new TimelineEntry(
              BootTestRules.stamp(now), "released (rolled back): it follows its spec"));
    }
    return new MachineTestResult(
        r.name(),
        MachineTestPhase.Error,
        clip(why),
        r.startTime(),
        BootTestRules.stamp(now),
        r.previousImage(),
        checks,
        timeline,
        null,
        null,
        null,
        r.startTime() == null ? null : true);
  }

  private static MachineTestResult withMessage(MachineTestResult r, String message) {
    return new MachineTestResult(
        r.name(),
        r.phase(),
        message,
        r.startTime(),
        r.completionTime(),
        r.previousImage(),
        r.checks(),
        r.timeline(),
        r.stage(),
        r.stageSince(),
        r.returnBaseline(),
        r.released());
  }

  /** Whether the machine is held by {@code test} (so a release has something to remove). */
  private static boolean heldBy(Observation o, String name, String test) {
    return TestHold.of(o.machines().get(name)).filter(h -> h.test().equals(test)).isPresent();
  }

  /** Whether this step holds the machine (a batch taken and stopped in the same step). */
  private static boolean heldNow(List<Write> writes, String name) {
    return writes.stream()
        .anyMatch(w -> w instanceof BootTestRules.Hold && w.machine().equals(name));
  }

  private static boolean done(MachineTestResult r) {
    return r != null
        && r.phase() != null
        && r.phase().done()
        && (r.startTime() == null || Boolean.TRUE.equals(r.released()));
  }

  private static boolean passed(MachineTestResult r) {
    return r != null && r.phase() == MachineTestPhase.Passed;
  }

  private static boolean failed(MachineTestResult r) {
    return r != null
        && (r.phase() == MachineTestPhase.Failed || r.phase() == MachineTestPhase.Error);
  }

  /** The failures that count towards failureThreshold: machines switched that then failed. */
  private static int failures(Map<String, MachineTestResult> machines) {
    return (int) machines.values().stream().filter(r -> r.startTime() != null && failed(r)).count();
  }

  private static int promoted(Map<String, MachineTestResult> machines) {
    return (int) machines.values().stream().filter(Promotion::passed).count();
  }

  static String progress(int promoted, int total) {
    return promoted + "/" + total + " promoted";
  }

  private static String rolledBackText(List<RolledBack> rolledBack) {
    return rolledBack.isEmpty() ? "" : "; rolled back: " + rolledBackNames(rolledBack);
  }

  private static String rolledBackNames(List<RolledBack> rolledBack) {
    List<String> out = new ArrayList<>();
    for (RolledBack r : rolledBack) {
      out.add(r.name() + (r.reason() == null ? "" : " (" + r.reason() + ")"));
    }
    return clip(String.join(", ", out));
  }

  /** Names, the first {@link #MAX_NAMES} of them. */
  private static String names(List<String> names) {
    if (names.size() <= MAX_NAMES) {
      return String.join(", ", names);
    }
    return String.join(", ", names.subList(0, MAX_NAMES))
        + " and "
        + (names.size() - MAX_NAMES)
        + " more";
  }

  private static String clip(String s) {
    return BootTestRules.clip(s);
  }

  private static Condition condition(
      String type, boolean status, Reason reason, String message, Long generation) {
    return new ConditionBuilder()
        .withType(type)
        .withStatus(status ? "True" : "False")
        .withReason(reason.name())
        .withMessage(clip(message))
        .withObservedGeneration(generation)
        .build();
  }
}
