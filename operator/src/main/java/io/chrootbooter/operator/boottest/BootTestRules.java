package io.chrootbooter.operator.boottest;

import io.chrootbooter.api.v1alpha1.AfterTest;
import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.BootTestSpec;
import io.chrootbooter.api.v1alpha1.BootTestStatus;
import io.chrootbooter.api.v1alpha1.BootTestStatus.TestPhase;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootSpec;
import io.chrootbooter.api.v1alpha1.MachineTestResult;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckOutcome;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckResult;
import io.chrootbooter.api.v1alpha1.MachineTestResult.MachineTestPhase;
import io.chrootbooter.api.v1alpha1.MachineTestResult.TimelineEntry;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.machine.MachineBootValidator;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.operator.status.Reason;
import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.LabelSelectorRequirement;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a BootTest does next, as a pure function of what the reconciler observed: the test, its
 * BootImage, the MachineBoots of its namespace, the BootTests that exist and the time. The answer
 * is the status to write, the holds to set or release on MachineBoots, the events to record and
 * when to look again. {@code BootTestRulesTest} runs every step of a machine's test through it.
 *
 * <p>A machine's test: {@code Pending} until a slot is free (parallelism), the image is Ready and
 * no other test holds the machine; {@code Switching}: the test holds it and sends it to the
 * bootstrap (stage {@code Bootstrap}), then to the image under test (stage {@code Image}), each
 * under a new generation ({@link TestHold}); {@code Checking}: the checks in order; then {@code
 * Passed}, {@code Failed} (a check failed; the rest are skipped) or {@code Error} (it could not be
 * tested), and the test releases it as {@code afterTest} says.
 */
public final class BootTestRules {
  /** How often a test in progress is looked at. */
  static final Duration POLL = Duration.ofSeconds(1);

  /**
   * A healthy check passes this long after its timeout when the agent has not returned the target:
   * time for the agent's BootTimeout return to reach the status.
   */
  static final Duration HEALTHY_MARGIN = Duration.ofSeconds(2);

  private static final int MAX_TIMELINE = 40;
  private static final int MAX_MESSAGE = 1000;

  private BootTestRules() {}

  /**
   * What the reconciler observed.
   *
   * @param image the BootImage under test, if it exists
   * @param machines the MachineBoots of the test's namespace, by name
   * @param liveTests the names of the BootTests of the namespace that exist and are not being
   *     deleted: a hold by any other test is stale and may be taken over
   * @param consoles the machines' recorded consoles, for the console checks
   * @param promotion the machines are a batch of a promotion ({@link Promotion}): one that passes
   *     keeps the image (as {@link AfterTest#Keep}), any other is rolled back (as {@link
   *     AfterTest#Restore}), whatever afterTest says; and the batch's end is no event of its own
   */
  public record Observation(
      BootTest test,
      Optional<BootImage> image,
      Map<String, MachineBoot> machines,
      Set<String> liveTests,
      Instant now,
      Consoles consoles,
      boolean promotion) {

    /** The observation of a test (not of a promotion's batch) without consoles. */
    public Observation(
        BootTest test,
        Optional<BootImage> image,
        Map<String, MachineBoot> machines,
        Set<String> liveTests,
        Instant now) {
      this(test, image, machines, liveTests, now, Consoles.NONE, false);
    }

    /** The observation of a test (not of a promotion's batch). */
    public Observation(
        BootTest test,
        Optional<BootImage> image,
        Map<String, MachineBoot> machines,
        Set<String> liveTests,
        Instant now,
        Consoles consoles) {
      this(test, image, machines, liveTests, now, consoles, false);
    }

    public Observation {
      consoles = consoles == null ? Consoles.NONE : consoles;
    }
  }

  /** A change of a MachineBoot. */
  public sealed interface Write {
    /** The MachineBoot's name. */
    String machine();
  }

  /**
   * Set {@code hold} on the machine; {@code resourceVersion} (when not null) is the version the
   * decision was made on, so a concurrent change fails the write instead of being overwritten.
   */
  public record Hold(String machine, TestHold hold, String resourceVersion) implements Write {}

  /** Remove the hold and do what {@code after} says (Keep: {@code imageRef} in the spec). */
  public record Release(String machine, AfterTest after, String imageRef) implements Write {}

  /**
   * An event: on the MachineBoot {@code machine}, or on the BootTest when it is null.
   *
   * @param warning a Warning, else Normal
   */
  public record Note(String machine, boolean warning, Reason reason, String message) {}

  /** What to do. */
  public record Plan(
      BootTestStatus status, List<Write> writes, List<Note> notes, Optional<Duration> requeue) {}

  /** The MachineBoots {@code spec} selects among {@code machines}, by name, in name order. */
  public static List<String> select(BootTestSpec spec, Collection<MachineBoot> machines) {
    return select(spec.machines(), machines);
  }

  /** The MachineBoots {@code selection} selects among {@code machines}, by name, in name order. */
  public static List<String> select(
      io.chrootbooter.api.v1alpha1.MachineSelection selection, Collection<MachineBoot> machines) {
    TreeSet<String> names = new TreeSet<>(selection.namesOrEmpty());
    LabelSelector selector = selection.selector();
    if (selector != null) {
      for (MachineBoot mb : machines) {
        if (matches(selector, mb.getMetadata().getLabels())) {
          names.add(mb.getMetadata().getName());
        }
      }
    }
    return List.copyOf(names);
  }

  /** Whether {@code labels} satisfy {@code selector}, as the API server's label selectors do. */
  public static boolean matches(LabelSelector selector, Map<String, String> labels) {
    Map<String, String> l = labels == null ? Map.of() : labels;
    if (selector.getMatchLabels() != null) {
      for (var e : selector.getMatchLabels().entrySet()) {
        if (!Objects.equals(l.get(e.getKey()), e.getValue())) {
          return false;
        }
      }
    }
    if (selector.getMatchExpressions() != null) {
      for (LabelSelectorRequirement r : selector.getMatchExpressions()) {
        String value = l.get(r.getKey());
        List<String> values = r.getValues() == null ? List.of() : r.getValues();
        boolean ok =
            switch (r.getOperator() == null ? "" : r.getOperator()) {
              case "In" -> value != null && values.contains(value);
              case "NotIn" -> value == null || !values.contains(value);
              case "Exists" -> value != null;
              case "DoesNotExist" -> value == null;
              default -> false;
            };
        if (!ok) {
          return false;
        }
      }
    }
    return true;
  }

  /** The next step of {@code o.test()}. */
  public static Plan plan(Observation o) {
    BootTest bt = o.test();
    BootTestSpec spec = bt.getSpec();
    BootTestStatus old = bt.getStatus();
    Long generation = bt.getMetadata().getGeneration();
    List<Write> writes = new ArrayList<>();
    List<Note> notes = new ArrayList<>();
    String now = stamp(o.now());
    List<Machine> machines = new ArrayList<>();
    if (old != null) {
      old.machines().forEach(m -> machines.add(new Machine(m)));
    }
    String startTime = old == null ? null : old.startTime();
    boolean started = startTime != null;

    List<String> violations = BootTestValidator.violations(spec);
    String abort = null;
    Reason abortReason = null;
    if (!violations.isEmpty()) {
      abort = String.join("; ", violations);
      abortReason = Reason.InvalidSpec;
    } else if (started
        && old.observedGeneration() != null
        && !old.observedGeneration().equals(generation)) {
      abort =
          "spec: changed while the test ran; a BootTest's spec is fixed once it starts (delete"
              + " it and create it again)";
      abortReason = Reason.InvalidSpec;
    }
    if (abort != null) {
      for (Machine m : machines) {
        if (!m.phase.done()) {
          m.end(MachineTestPhase.Error, abort, o.now());
        }
        release(m, o, spec, writes, notes);
      }
      return finish(
          bt, machines, startTime == null ? now : startTime, o, writes, notes, abort, abortReason);
    }

    if (!started) {
      startTime = now;
      List<String> chosen = select(spec, o.machines().values());
      if (chosen.isEmpty()) {
        return finish(
            bt,
            machines,
            startTime,
            o,
            writes,
            notes,
            "no MachineBoot of namespace "
                + bt.getMetadata().getNamespace()
                + " matches spec.machines",
            Reason.NoMachines);
      }
      for (String name : chosen) {
        machines.add(Machine.pending(name, spec));
      }
      notes.add(
          new Note(
              null,
              false,
              Reason.TestRunning,
              "testing BootImage "
                  + spec.imageRef()
                  + " on "
                  + chosen.size()
                  + (chosen.size() == 1 ? " machine: " : " machines: ")
                  + String.join(", ", chosen)));
    }

    Instant deadline = Instant.parse(startTime).plus(spec.timeoutOrDefault());
    boolean timedOut = !o.now().isBefore(deadline);
    Optional<String> imageProblem = imageProblem(spec.imageRef(), o.image());
    boolean imageFailed = imageProblem.isPresent() && imageProblem.get().contains(" failed");

    long active = machines.stream().filter(Machine::active).count();
    for (Machine m : machines) {
      if (m.phase.done()) {
        release(m, o, spec, writes, notes);
        continue;
      }
      MachineBoot mb = o.machines().get(m.name);
      if (timedOut) {
        m.end(
            MachineTestPhase.Error,
            "the test's timeout of "
                + GoDuration.format(spec.timeoutOrDefault())
                + " passed while the machine was "
                + m.phase,
            o.now());
      } else if (m.phase == MachineTestPhase.Pending) {
        if (mb == null) {
          // Perhaps applied together with the test: it waits, until the test's timeout.
          m.message = "waiting for MachineBoot " + m.name + ", which does not exist";
        } else if (imageFailed) {
          m.end(MachineTestPhase.Error, imageProblem.get(), o.now());
        } else if (imageProblem.isPresent()) {
          m.message = imageProblem.get();
        } else if (heldByOther(mb, bt, o.liveTests())) {
          m.message = "waiting: BootTest " + TestHold.of(mb).get().test() + " holds the machine";
        } else if (!MachineBootValidator.violations(mb.getSpec()).isEmpty()) {
          m.end(
              MachineTestPhase.Error,
              "the MachineBoot's spec is invalid: "
                  + String.join("; ", MachineBootValidator.violations(mb.getSpec())),
              o.now());
        } else if (active < spec.parallelismOrDefault()) {
          take(m, mb, bt, o, writes, notes);
          active++;
        } else {
          m.message = "waiting for a free slot (parallelism " + spec.parallelismOrDefault() + ")";
        }
      } else {
        advance(m, mb, bt, o, writes);
        if (m.phase.done()) {
          active--; // its slot is free for the machines after it
        }
      }
      if (m.phase.done()) {
        notes.add(
            new Note(
                null,
                m.phase != MachineTestPhase.Passed,
                m.phase == MachineTestPhase.Passed ? Reason.TestPassed : Reason.TestFailed,
                m.name + ": " + m.phase + (m.message == null ? "" : ": " + m.message)));
        release(m, o, spec, writes, notes);
      }
    }
    return finish(bt, machines, startTime, o, writes, notes, null, null);
  }

  /** Why the image cannot be tested (yet); empty when it is Ready. */
  static Optional<String> imageProblem(String ref, Optional<BootImage> image) {
    if (image.isEmpty()) {
      return Optional.of("waiting for BootImage " + ref + ", which does not exist");
    }
    var status = image.get().getStatus();
    if (status != null
        && (status.phase() == BootImagePhase.Failed
            || Conditions.isTrue(status.conditions(), "Stalled"))) {
      String why =
          Conditions.find(status.conditions(), "Stalled")
              .map(c -> ": " + c.getMessage())
              .orElse("");
      return Optional.of("BootImage " + ref + " failed" + why);
    }
    if (status == null || status.phase() != BootImagePhase.Ready || status.servedUrl() == null) {
      return Optional.of("waiting for BootImage " + ref + " to be Ready");
    }
    return Optional.empty();
  }

  /** Whether another BootTest, one that exists, holds {@code mb}. */
  static boolean heldByOther(MachineBoot mb, BootTest bt, Set<String> liveTests) {
    return TestHold.of(mb)
        .filter(h -> !h.test().equals(bt.getMetadata().getName()))
        .filter(h -> liveTests.contains(h.test()))
        .isPresent();
  }

  /** The test takes the machine: it holds it and sends it to the bootstrap. */
  private static void take(
      Machine m, MachineBoot mb, BootTest bt, Observation o, List<Write> writes, List<Note> notes) {
    // A stale hold (its test is gone) keeps the spec it saved: that is what the machine had.
    Optional<TestHold> stale = TestHold.of(mb);
    MachineBootSpec kept = stale.map(TestHold::spec).orElse(mb.getSpec());
    long generation = nextGeneration(mb, o.now());
    TestHold hold = new TestHold(bt.getMetadata().getName(), generation, null, null, kept);
    writes.add(new Hold(m.name, hold, mb.getMetadata().getResourceVersion()));
    m.phase = MachineTestPhase.Switching;
    m.stage = "Bootstrap";
    m.stageSince = stamp(o.now());
    m.startTime = stamp(o.now());
    m.previousImage = mb.getStatus() == null ? null : mb.getStatus().currentImage();
    m.returnBaseline = returnTime(mb);
    m.consoleBaseline =
        ConsoleCheck.baseline(o.consoles(), bt.getMetadata().getNamespace(), m.name);
    m.message = "returning to the bootstrap";
    m.log(o.now(), "held by the test; sent to the bootstrap");
    notes.add(
        new Note(
            m.name,
            false,
            Reason.TestSwitch,
            "held by BootTest "
                + bt.getMetadata().getName()
                + ", which tests BootImage "
                + bt.getSpec().imageRef()
                + "; edits of the spec apply once it releases the machine"));
  }

  /** One machine in Switching or Checking, as far as it gets with what was observed. */
  private static void advance(
      Machine m, MachineBoot mb, BootTest bt, Observation o, List<Write> writes) {
    String name = bt.getMetadata().getName();
    if (mb == null) {
      m.end(MachineTestPhase.Error, "the MachineBoot was deleted", o.now());
      m.released = true;
      return;
    }
    Optional<TestHold> hold = TestHold.of(mb);
    if (hold.isEmpty() || !hold.get().test().equals(name)) {
      m.end(
          MachineTestPhase.Error,
          "the test's hold on the MachineBoot was removed"
              + hold.map(h -> " (BootTest " + h.test() + " holds it now)").orElse(""),
          o.now());
      m.released = true;
      return;
    }
    var status = mb.getStatus();
    if (status != null && Conditions.isTrue(status.conditions(), "Stalled")) {
      var stalled = Conditions.find(status.conditions(), "Stalled").get();
      if (Reason.AgentLost.name().equals(stalled.getReason())) {
        m.end(
            MachineTestPhase.Error,
            "the machine's agent is lost: " + stalled.getMessage(),
            o.now());
        return;
      }
    }
    MachinePhase phase =
        status == null || status.phase() == null ? MachinePhase.Pending : status.phase();
    String image = bt.getSpec().imageRef();
    List<BootTestCheck> checks = bt.getSpec().checksOrEmpty();
    ConsoleCheck.Boots boots =
        ConsoleCheck.boots(
            o.consoles(), bt.getMetadata().getNamespace(), m.name, m.consoleBaseline);
    if (watchConsole(m, checks, boots, o.now())) {
      return;
    }
    for (int guard = 0; guard < 4 * checks.size() + 4 && !m.phase.done(); guard++) {
      if (m.phase == MachineTestPhase.Switching && "Bootstrap".equals(m.stage)) {
        if (phase != MachinePhase.Bootstrap) {
          return;
        }
        m.log(
            o.now(),
            "in the bootstrap after " + since(m.stageSince, o.now()) + "; booting " + image);
        boot(m, mb, hold.get(), bt, o, writes);
        return; // the status must show the new boot first
      }
      if (m.phase == MachineTestPhase.Switching) { // stage Image
        Optional<LastReturn> returned = returnedSince(mb, m.returnBaseline);
        if (returned.isPresent()) {
          String trigger = returned.get().trigger();
          if ("BootTimeout".equals(trigger) && firstHealthy(checks) >= 0) {
            int i = firstHealthy(checks);
            m.check(i).start(stamp(o.now()));
            m.finishCheck(
                i,
                CheckOutcome.Failed,
                "not healthy within "
                    + GoDuration.format(checks.get(i).timeoutOrDefault())
                    + ": "
                    + describe(returned.get()),
                o.now());
            m.withConsoleTail(i, boots);
            m.end(
                MachineTestPhase.Failed,
                m.checks.get(i).name() + ": " + m.checks.get(i).message(),
                o.now());
          } else {
            m.end(
                MachineTestPhase.Error,
                "the target returned before it was seen running: " + describe(returned.get()),
                o.now());
          }
          return;
        }
        if (phase == MachinePhase.Failed) {
          m.end(
              MachineTestPhase.Error,
              "the machine could not boot "
                  + image
                  + ": "
                  + Objects.toString(status.error(), "the agent reported a failure"),
              o.now());
          return;
        }
        if (phase != MachinePhase.Running || !image.equals(status.currentImage())) {
          return;
        }
        m.log(o.now(), "running " + image + " after " + since(m.stageSince, o.now()));
        m.phase = MachineTestPhase.Checking;
        m.stage = null;
        m.message = null;
        int next = m.nextCheck();
        if (next < 0) {
          m.end(MachineTestPhase.Passed, null, o.now());
          return;
        }
        startCheck(m, next, mb, hold.get(), checks.get(next), o, writes);
        continue;
      }
      // Checking
      int i = m.nextCheck();
      if (i < 0) {
        m.end(MachineTestPhase.Passed, "every check passed", o.now());
        return;
      }
      if (m.checks.get(i).result() == CheckOutcome.Pending) {
        startCheck(m, i, mb, hold.get(), checks.get(i), o, writes);
      }
      BootTestCheck check = checks.get(i);
      if (check.consoleNever() != null) {
        continue; // it watches until the machine's last check: the next one starts
      }
      Optional<CheckOutcome> outcome = evaluate(m, i, check, mb, image, boots, o.now());
      if (outcome.isEmpty()) {
        return;
      }
      if (outcome.get() != CheckOutcome.Passed) {
        m.withConsoleTail(i, boots);
        m.end(
            MachineTestPhase.Failed,
            m.checks.get(i).name() + ": " + m.checks.get(i).message(),
            o.now());
        return;
      }
      if (m.nextCheck() < 0) {
        m.end(MachineTestPhase.Passed, "every check passed", o.now());
        return;
      }
      if (check.returns() != null) {
        // The machine is in the bootstrap: the checks that follow need the image again.
        m.log(o.now(), "booting " + image + " again for the next check");
        boot(m, mb, hold.get(), bt, o, writes);
        return;
      }
    }
  }

  /** Sends the machine to the image under test, with a new generation. */
  private static void boot(
      Machine m, MachineBoot mb, TestHold hold, BootTest bt, Observation o, List<Write> writes) {
    List<BootTestCheck> checks = bt.getSpec().checksOrEmpty();
    int healthy = firstHealthy(checks);
    String bootTimeout =
        healthy < 0 ? null : GoDuration.format(checks.get(healthy).timeoutOrDefault());
    TestHold next =
        new TestHold(
            hold.test(),
            nextGeneration(mb, o.now()),
            bt.getSpec().imageRef(),
            bootTimeout,
            hold.spec(),
            CheckOutcomes.commandsFrom(checks, m.nextCheck()));
    writes.add(new Hold(m.name, next, null));
    m.phase = MachineTestPhase.Switching;
    m.stage = "Image";
    m.stageSince = stamp(o.now());
    m.returnBaseline = returnTime(mb);
    m.message = "booting " + bt.getSpec().imageRef();
  }

  private static void startCheck(
      Machine m,
      int i,
      MachineBoot mb,
      TestHold hold,
      BootTestCheck check,
      Observation o,
      List<Write> writes) {
    m.check(i).start(stamp(o.now()));
    m.stageSince = stamp(o.now());
    m.returnBaseline = returnTime(mb);
    m.message = "checking " + check.nameOrDefault();
    if (check.returns() != null
        && check.returns().trigger() == BootTestCheck.TestedTrigger.SpecChange) {
      // The test makes the spec change itself: the machine is sent to the bootstrap.
      writes.add(
          new Hold(
              m.name,
              new TestHold(hold.test(), nextGeneration(mb, o.now()), null, null, hold.spec()),
              null));
      m.log(o.now(), check.nameOrDefault() + ": sent to the bootstrap (SpecChange)");
    } else {
      m.log(o.now(), check.nameOrDefault() + ": started");
    }
  }

  /** The outcome of check {@code i}, once there is one. */
  private static Optional<CheckOutcome> evaluate(
      Machine m,
      int i,
      BootTestCheck check,
      MachineBoot mb,
      String image,
      ConsoleCheck.Boots boots,
      Instant now) {
    Instant started = Instant.parse(m.checks.get(i).startTime());
    Duration timeout = check.timeoutOrDefault();
    Optional<LastReturn> returned = returnedSince(mb, m.returnBaseline);
    if (check.command() != null || check.consoleMatches() != null) {
      Optional<CheckOutcomes.Decided> decided =
          check.command() != null
              ? CheckOutcomes.command(
                  check, m.checks.get(i).name(), mb, image, started, returned, now)
              : CheckOutcomes.consoleMatches(check, boots, started, now);
      decided.ifPresent(
          d -> m.finishCheck(i, d.result(), d.message(), d.exitCode(), d.output(), now));
      return decided.map(CheckOutcomes.Decided::result);
    }
    if (check.healthy() != null) {
      if (returned.isPresent()) {
        String how =
            "BootTimeout".equals(returned.get().trigger())
                ? "not healthy within "
                    + GoDuration.format(timeout)
                    + ": "
                    + describe(returned.get())
                : "returned before it was healthy: " + describe(returned.get());
        m.finishCheck(i, CheckOutcome.Failed, how, now);
        return Optional.of(CheckOutcome.Failed);
      }
      var status = mb.getStatus();
      boolean running =
          status != null
              && status.phase() == MachinePhase.Running
              && image.equals(status.currentImage());
      if (running && Boolean.TRUE.equals(status.healthy())) {
        m.finishCheck(
            i,
            CheckOutcome.Passed,
            image
                + " reported healthy "
                + since(m.checks.get(i).startTime(), now)
                + " after it was seen running",
            now);
        return Optional.of(CheckOutcome.Passed);
      }
      // An agent that does not report health: healthy when bootTimeout passed without a return.
      if (running && !now.isBefore(started.plus(timeout).plus(HEALTHY_MARGIN))) {
        m.finishCheck(
            i,
            CheckOutcome.Passed,
            "running "
                + image
                + " for "
                + GoDuration.format(timeout)
                + " without a BootTimeout return",
            now);
        return Optional.of(CheckOutcome.Passed);
      }
      if (!now.isBefore(started.plus(timeout).plus(HEALTHY_MARGIN).plus(timeout))) {
        m.finishCheck(
            i, CheckOutcome.Failed, "the machine left Running without a return in the status", now);
        return Optional.of(CheckOutcome.Failed);
      }
      return Optional.empty();
    }
    // returns
    String wanted = check.returns().trigger().name();
    if (returned.isPresent()) {
      boolean match = wanted.equals(returned.get().trigger());
      m.finishCheck(
          i,
          match ? CheckOutcome.Passed : CheckOutcome.Failed,
          (match ? "" : "expected a " + wanted + " return, got: ") + describe(returned.get()),
          now);
      return Optional.of(match ? CheckOutcome.Passed : CheckOutcome.Failed);
    }
    if (!now.isBefore(started.plus(timeout))) {
      m.finishCheck(
          i,
          CheckOutcome.Failed,
          "no " + wanted + " return within " + GoDuration.format(timeout),
          now);
      return Optional.of(CheckOutcome.Failed);
    }
    return Optional.empty();
  }

  /**
   * Reads the console for every consoleNever check not decided yet, whatever its place in the list:
   * a match fails it and ends the machine's test. True when it did.
   */
  private static boolean watchConsole(
      Machine m, List<BootTestCheck> checks, ConsoleCheck.Boots boots, Instant now) {
    if (boots.none()) {
      return false;
    }
    for (int i = 0; i < checks.size() && i < m.checks.size(); i++) {
      BootTestCheck check = checks.get(i);
      CheckOutcome r = m.checks.get(i).result();
      if (check.consoleNever() == null
          || (r != CheckOutcome.Pending && r != CheckOutcome.Running)) {
        continue;
      }
      Optional<CheckOutcomes.Decided> seen = CheckOutcomes.consoleNever(check, boots);
      if (seen.isPresent()) {
        if (r == CheckOutcome.Pending) {
          m.check(i).start(stamp(now));
        }
        CheckOutcomes.Decided d = seen.get();
        m.finishCheck(i, d.result(), d.message(), d.exitCode(), d.output(), now);
        m.end(
            d.result() == CheckOutcome.Failed ? MachineTestPhase.Failed : MachineTestPhase.Error,
            m.checks.get(i).name() + ": " + m.checks.get(i).message(),
            now);
        return true;
      }
    }
    return false;
  }

  /** The release of a finished machine, once. */
  private static void release(
      Machine m, Observation o, BootTestSpec spec, List<Write> writes, List<Note> notes) {
    if (m.released) {
      return;
    }
    if (m.startTime == null) {
      m.released = true; // never held
      return;
    }
    MachineBoot mb = o.machines().get(m.name);
    m.released = true;
    if (mb == null
        || TestHold.of(mb)
            .filter(h -> h.test().equals(o.test().getMetadata().getName()))
            .isEmpty()) {
      return;
    }
    AfterTest after =
        o.promotion()
            ? (m.phase == MachineTestPhase.Passed ? AfterTest.Keep : AfterTest.Restore)
            : spec == null ? AfterTest.Restore : spec.afterTestOrDefault();
    writes.add(new Release(m.name, after, spec == null ? null : spec.imageRef()));
    String what =
        switch (after) {
          case Restore -> "it follows its spec again";
          case Bootstrap -> "its spec now holds it in the bootstrap";
          case Keep -> "its spec now names BootImage " + spec.imageRef();
        };
    m.log(o.now(), "released (" + after + "): " + what);
    notes.add(
        new Note(
            m.name,
            false,
            Reason.TestSwitch,
            "released by BootTest "
                + o.test().getMetadata().getName()
                + " ("
                + after
                + "): "
                + what));
  }

  private static Plan finish(
      BootTest bt,
      List<Machine> machines,
      String startTime,
      Observation o,
      List<Write> writes,
      List<Note> notes,
      String abort,
      Reason abortReason) {
    BootTestStatus old = bt.getStatus();
    int passed = (int) machines.stream().filter(m -> m.phase == MachineTestPhase.Passed).count();
    int failed =
        (int)
            machines.stream()
                .filter(
                    m -> m.phase == MachineTestPhase.Failed || m.phase == MachineTestPhase.Error)
                .count();
    boolean allDone = machines.stream().allMatch(m -> m.phase.done() && m.released);
    boolean anyStarted = machines.stream().anyMatch(m -> m.startTime != null);
    TestPhase phase;
    String message;
    Reason reason;
    if (abort != null) {
      phase = TestPhase.Failed;
      message = abort;
      reason = abortReason;
    } else if (allDone) {
      phase = failed == 0 ? TestPhase.Passed : TestPhase.Failed;
      reason = failed == 0 ? Reason.TestPassed : Reason.TestFailed;
      message =
          failed == 0
              ? "all " + passed + (passed == 1 ? " machine" : " machines") + " passed"
              : failed + " of " + machines.size() + " failed: " + failures(machines);
    } else {
      phase = anyStarted ? TestPhase.Running : TestPhase.Pending;
      reason = Reason.TestRunning;
      message =
          passed
              + failed
              + " of "
              + machines.size()
              + " done, "
              + passed
              + " passed, "
              + failed
              + " failed";
    }
    boolean ended = phase == TestPhase.Passed || phase == TestPhase.Failed;
    if (ended
        && !o.promotion()
        && (old == null || old.phase() == null || !(old.phase() == phase))) {
      notes.add(new Note(null, phase == TestPhase.Failed, reason, message));
    }
    Long generation = bt.getMetadata().getGeneration();
    List<Condition> desired =
        List.of(
            condition("Complete", phase == TestPhase.Passed, reason, message, generation),
            condition("Failed", phase == TestPhase.Failed, reason, message, generation),
            condition("Running", !ended, reason, message, generation));
    String completion =
        ended
            ? (old != null && old.completionTime() != null ? old.completionTime() : stamp(o.now()))
            : null;
    BootTestStatus status =
        new BootTestStatus(
            phase,
            // The generation the test started with: a later one is an edit, which fails it.
            old != null && old.observedGeneration() != null ? old.observedGeneration() : generation,
            startTime,
            completion,
            passed,
            failed,
            machines.stream().map(Machine::toResult).toList(),
            Conditions.merge(old == null ? List.of() : old.conditions(), desired, o.now()));
    return new Plan(status, writes, notes, ended ? Optional.empty() : Optional.of(POLL));
  }

  private static String failures(List<Machine> machines) {
    List<String> out = new ArrayList<>();
    for (Machine m : machines) {
      if (m.phase == MachineTestPhase.Failed || m.phase == MachineTestPhase.Error) {
        out.add(m.name + " (" + m.phase + (m.message == null ? "" : ": " + m.message) + ")");
      }
    }
    return clip(String.join(", ", out));
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

  static int firstHealthy(List<BootTestCheck> checks) {
    for (int i = 0; i < checks.size(); i++) {
      if (checks.get(i).healthy() != null) {
        return i;
      }
    }
    return -1;
  }

  /**
   * A generation for the agent that no earlier one of this machine has: the time in milliseconds
   * (far above any MachineBoot's own generation), and above the hold's last one.
   */
  static long nextGeneration(MachineBoot mb, Instant now) {
    long last = TestHold.of(mb).map(TestHold::generation).orElse(0L);
    return Math.max(now.toEpochMilli(), last + 1);
  }

  private static String returnTime(MachineBoot mb) {
    LastReturn r = mb.getStatus() == null ? null : mb.getStatus().lastReturn();
    return r == null || r.time() == null ? "" : r.time();
  }

  /** The machine's last return, when it is another than the one of {@code baseline}. */
  static Optional<LastReturn> returnedSince(MachineBoot mb, String baseline) {
    LastReturn r = mb.getStatus() == null ? null : mb.getStatus().lastReturn();
    if (r == null || r.time() == null || r.time().equals(baseline == null ? "" : baseline)) {
      return Optional.empty();
    }
    return Optional.of(r);
  }

  private static String describe(LastReturn r) {
    return "returned by "
        + r.trigger()
        + (r.durationMillis() == null ? "" : " in " + r.durationMillis() + " ms")
        + (Boolean.TRUE.equals(r.forced()) ? " (forced)" : "")
        + (r.reason() == null ? "" : ": " + r.reason());
  }

  private static String since(String stamp, Instant now) {
    if (stamp == null) {
      return "?";
    }
    long ms = Duration.between(Instant.parse(stamp), now).toMillis();
    return ms < 10_000 ? ms + " ms" : (ms / 1000) + " s";
  }

  static String stamp(Instant t) {
    return t.truncatedTo(ChronoUnit.MILLIS).toString();
  }

  static String clip(String s) {
    if (s == null || s.length() <= MAX_MESSAGE) {
      return s;
    }
    return s.substring(0, MAX_MESSAGE - 1) + "…";
  }

  /** A machine's result while the rules work on it. */
  private static final class Machine {
    final String name;
    MachineTestPhase phase;
    String message;
    String startTime;
    String completionTime;
    String previousImage;
    final List<CheckResult> checks;
    final List<TimelineEntry> timeline;
    String stage;
    String stageSince;
    String returnBaseline;
    List<String> consoleBaseline;
    boolean released;

    Machine(MachineTestResult r) {
      name = r.name();
      phase = r.phase() == null ? MachineTestPhase.Pending : r.phase();
      message = r.message();
      startTime = r.startTime();
      completionTime = r.completionTime();
      previousImage = r.previousImage();
      checks = new ArrayList<>(r.checks());
      timeline = new ArrayList<>(r.timeline());
      stage = r.stage();
      stageSince = r.stageSince();
      returnBaseline = r.returnBaseline();
      consoleBaseline = r.consoleBaseline();
      released = Boolean.TRUE.equals(r.released());
    }

    static Machine pending(String name, BootTestSpec spec) {
      List<CheckResult> checks =
          spec.checksOrEmpty().stream()
              .map(
                  c ->
                      new CheckResult(
                          c.nameOrDefault(), c.kind(), CheckOutcome.Pending, null, null, null))
              .toList();
      return new Machine(
          new MachineTestResult(
              name,
              MachineTestPhase.Pending,
              "waiting for its turn",
              null,
              null,
              null,
              checks,
              List.of(),
              null,
              null,
              null,
              null));
    }

    boolean active() {
      return phase == MachineTestPhase.Switching || phase == MachineTestPhase.Checking;
    }

    /** The next check to start or decide; a consoleNever check that watches is passed over. */
    int nextCheck() {
      for (int i = 0; i < checks.size(); i++) {
        CheckOutcome r = checks.get(i).result();
        boolean watching = r == CheckOutcome.Running && "consoleNever".equals(checks.get(i).kind());
        if (r == CheckOutcome.Pending || (r == CheckOutcome.Running && !watching)) {
          return i;
        }
      }
      return -1;
    }

    CheckStarter check(int i) {
      return at -> {
        CheckResult c = checks.get(i);
        checks.set(i, new CheckResult(c.name(), c.kind(), CheckOutcome.Running, at, null, null));
      };
    }

    void finishCheck(int i, CheckOutcome outcome, String text, Instant now) {
      finishCheck(i, outcome, text, null, null, now);
    }

    void finishCheck(
        int i, CheckOutcome outcome, String text, Integer exitCode, String output, Instant now) {
      CheckResult c = checks.get(i);
      Long took =
          c.startTime() == null
              ? null
              : Duration.between(Instant.parse(c.startTime()), now).toMillis();
      checks.set(
          i,
          new CheckResult(
              c.name(),
              c.kind(),
              outcome,
              c.startTime(),
              took,
              clip(text),
              exitCode,
              CheckOutcomes.clip(output)));
      log(now, c.name() + ": " + outcome);
    }

    /** Check {@code i}, which failed without output of its own, gets the console's last lines. */
    void withConsoleTail(int i, ConsoleCheck.Boots boots) {
      CheckResult c = checks.get(i);
      String tail = c.output() == null ? CheckOutcomes.consoleTail(boots) : null;
      if (tail != null) {
        checks.set(
            i,
            new CheckResult(
                c.name(),
                c.kind(),
                c.result(),
                c.startTime(),
                c.durationMillis(),
                c.message(),
                c.exitCode(),
                "console:\n" + tail));
      }
    }

    /** Ends the machine's test; checks not run are skipped (or in Error when one was running). */
    void end(MachineTestPhase result, String why, Instant now) {
      for (int i = 0; i < checks.size(); i++) {
        CheckResult c = checks.get(i);
        if (c.result() == CheckOutcome.Running && "consoleNever".equals(c.kind())) {
          // Read on every look while the machine was tested: it never showed.
          finishCheck(i, CheckOutcome.Passed, "not seen while the machine was tested", now);
        } else if (c.result() == CheckOutcome.Running) {
          finishCheck(i, CheckOutcome.Error, why, now);
        } else if (c.result() == CheckOutcome.Pending) {
          checks.set(
              i, new CheckResult(c.name(), c.kind(), CheckOutcome.Skipped, null, null, null));
        }
      }
      phase = result;
      message = clip(why);
      stage = null;
      completionTime = stamp(now);
      log(now, result + (why == null ? "" : ": " + clip(why)));
    }

    void log(Instant at, String event) {
      timeline.add(new TimelineEntry(stamp(at), clip(event)));
      while (timeline.size() > MAX_TIMELINE) {
        timeline.remove(1); // the first entry (taken) stays
      }
    }

    MachineTestResult toResult() {
      return new MachineTestResult(
          name,
          phase,
          message,
          startTime,
          completionTime,
          previousImage,
          checks,
          timeline,
          stage,
          phase.done() ? null : stageSince,
          phase.done() ? null : returnBaseline,
          startTime == null ? null : released,
          phase.done() ? null : consoleBaseline);
    }
  }

  private interface CheckStarter {
    void start(String at);
  }
}
