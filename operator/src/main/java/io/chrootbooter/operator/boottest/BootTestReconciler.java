package io.chrootbooter.operator.boottest;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.chrootbooter.api.v1alpha1.AfterTest;
import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.BootTestStatus;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineTestResult;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.console.RecordedConsoles;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.operator.status.EventRecorder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;

/**
 * Reconciles BootTests: carries out what {@link BootTestRules} decides — holds and releases
 * MachineBoots, records events, writes the status — and releases every machine a deleted test holds
 * ({@link Cleaner}). Looks again every second while a test runs.
 */
// Not generation-aware: the machines' progress changes no generation of the test.
@ControllerConfiguration(name = BootTestReconciler.NAME, generationAwareEventProcessing = false)
public class BootTestReconciler implements Reconciler<BootTest>, Cleaner<BootTest> {
  static final String NAME = "boottest";
  private static final Logger LOG = Logger.getLogger(BootTestReconciler.class);

  private final KubernetesClient client;
  private final MachineDirectory directory;
  private final EventRecorder events;
  private final Consoles consoles;
  private final ObjectMapper mapper = new ObjectMapper();
  private final Clock clock = Clock.systemUTC();
  private final Timer reconcileTimer;

  BootTestReconciler(
      KubernetesClient client,
      MachineDirectory directory,
      EventRecorder events,
      MeterRegistry registry,
      RecordedConsoles consoles) {
    this.client = client;
    this.consoles = consoles::of;
    this.directory = directory;
    this.events = events;
    this.reconcileTimer =
        Timer.builder("chrootbooter.reconcile")
            .description("Time taken by one reconcile")
            .tag("kind", "BootTest")
            .register(registry);
  }

  @Override
  public UpdateControl<BootTest> reconcile(BootTest bt, Context<BootTest> context) {
    return reconcileTimer.record(() -> doReconcile(bt, context));
  }

  private UpdateControl<BootTest> doReconcile(BootTest bt, Context<BootTest> context) {
    String ns = bt.getMetadata().getNamespace();
    BootTestStatus status = bt.getStatus();
    if (status != null
        && (status.phase() == BootTestStatus.TestPhase.Passed
            || status.phase() == BootTestStatus.TestPhase.Failed)
        && Objects.equals(status.observedGeneration(), bt.getMetadata().getGeneration())) {
      return UpdateControl.noUpdate(); // ended, and every machine released
    }
    if (!directory.synced()) {
      // An empty cache would choose no machine at all.
      return UpdateControl.<BootTest>noUpdate().rescheduleAfter(BootTestRules.POLL);
    }
    Map<String, MachineBoot> machines = new HashMap<>();
    for (MachineBoot mb : directory.machines()) {
      if (ns.equals(mb.getMetadata().getNamespace())) {
        machines.put(mb.getMetadata().getName(), mb);
      }
    }
    // The machines the test holds are read from the API: the cache may not show the hold the
    // last reconcile wrote yet, and the rules would take that for a hold someone removed.
    if (status != null) {
      List<MachineTestResult> tested = new ArrayList<>(status.machines());
      if (status.promotion() != null) {
        tested.addAll(status.promotion().machines());
      }
      for (MachineTestResult m : tested) {
        if (m.startTime() != null && !Boolean.TRUE.equals(m.released())) {
          MachineBoot fresh =
              client.resources(MachineBoot.class).inNamespace(ns).withName(m.name()).get();
          if (fresh == null) {
            machines.remove(m.name());
          } else {
            machines.put(m.name(), fresh);
          }
        }
      }
    }
    Set<String> live =
        context
            .getPrimaryCache()
            .list(t -> ns.equals(t.getMetadata().getNamespace()))
            .filter(t -> t.getMetadata().getDeletionTimestamp() == null)
            .map(t -> t.getMetadata().getName())
            .collect(Collectors.toSet());
    live.add(bt.getMetadata().getName());
    var observation =
        new BootTestRules.Observation(
            bt,
            directory.image(ns, bt.getSpec() == null ? "" : bt.getSpec().imageRef()),
            machines,
            live,
            clock.instant(),
            consoles);
    var plan =
        Promotion.applies(bt) ? Promotion.plan(observation) : BootTestRules.plan(observation);
    for (BootTestRules.Write write : plan.writes()) {
      apply(ns, write);
    }
    for (BootTestRules.Note note : plan.notes()) {
      HasMetadata about = note.machine() == null ? bt : machines.get(note.machine());
      if (about != null) {
        events.record(
            about, note.warning() ? "Warning" : "Normal", note.reason().name(), note.message());
      }
    }
    UpdateControl<BootTest> control =
        Objects.equals(plan.status(), bt.getStatus())
            ? UpdateControl.noUpdate()
            : UpdateControl.patchStatus(forStatusPatch(bt, plan.status()));
    plan.requeue().ifPresent(control::rescheduleAfter);
    return control;
  }

  /**
   * A hold is set with a merge patch of metadata only. A release removes the annotation and the
   * label with a JSON patch (a merge patch's null does not remove a key on every API server: the
   * fabric8 mock server keeps it), and sets the spec as afterTest asks.
   */
  void apply(String ns, BootTestRules.Write write) {
    var resource = client.resources(MachineBoot.class).inNamespace(ns).withName(write.machine());
    try {
      if (write instanceof BootTestRules.Hold h) {
        ObjectNode patch = mapper.createObjectNode();
        ObjectNode meta = patch.putObject("metadata");
        if (h.resourceVersion() != null) {
          meta.put("resourceVersion", h.resourceVersion());
        }
        meta.putObject("annotations").put(TestHold.ANNOTATION, h.hold().toJson());
        meta.putObject("labels").put(TestHold.LABEL, h.hold().test());
        resource.patch(PatchContext.of(PatchType.JSON_MERGE), patch.toString());
      } else if (write instanceof BootTestRules.Release r) {
        resource.edit(mb -> released(mb, r));
      }
    } catch (KubernetesClientException e) {
      if (e.getCode() == 404 && write instanceof BootTestRules.Release) {
        return; // deleted: nothing left to release
      }
      throw e;
    }
  }

  /** {@code mb} without the hold, its spec as {@code release.after()} says. */
  static MachineBoot released(MachineBoot mb, BootTestRules.Release release) {
    return TestHold.released(mb, release.after(), release.imageRef());
  }

  @Override
  public DeleteControl cleanup(BootTest bt, Context<BootTest> context) {
    String ns = bt.getMetadata().getNamespace();
    String name = bt.getMetadata().getName();
    for (MachineBoot mb :
        client
            .resources(MachineBoot.class)
            .inNamespace(ns)
            .withLabel(TestHold.LABEL, name)
            .list()
            .getItems()) {
      if (TestHold.of(mb).filter(h -> h.test().equals(name)).isEmpty()) {
        continue;
      }
      apply(ns, new BootTestRules.Release(mb.getMetadata().getName(), AfterTest.Restore, null));
      LOG.infof(
          "BootTest %s/%s deleted: released MachineBoot %s", ns, name, mb.getMetadata().getName());
      events.record(
          mb,
          "Normal",
          io.chrootbooter.operator.status.Reason.TestSwitch.name(),
          "released by BootTest " + name + ", which was deleted: it follows its spec again");
    }
    return DeleteControl.defaultDelete();
  }

  /** A fresh object holding only identity and status, so the patch touches nothing else. */
  private static BootTest forStatusPatch(BootTest bt, BootTestStatus status) {
    BootTest fresh = new BootTest();
    ObjectMeta meta = new ObjectMeta();
    meta.setName(bt.getMetadata().getName());
    meta.setNamespace(bt.getMetadata().getNamespace());
    fresh.setMetadata(meta);
    fresh.setStatus(status);
    return fresh;
  }
}
