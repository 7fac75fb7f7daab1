package io.chrootbooter.operator.agentapi;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.operator.machine.MachineBootStatuses;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.operator.status.Health;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.time.Clock;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Writes agent reports into MachineBoot status, at most once a second per machine: reports that
 * arrive faster are merged, the newest field winning, and the merged report is written when the
 * second is up. The last report is therefore always written — a final phase is never lost.
 */
@ApplicationScoped
public class StatusReports {
  private static final Logger LOG = Logger.getLogger(StatusReports.class);
  static final long MIN_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1);

  private final KubernetesClient client;
  private final MachineDirectory directory;
  private final EventRecorder events;
  private final Clock clock = Clock.systemUTC();
  private final ScheduledExecutorService writer = Executors.newScheduledThreadPool(2);
  private final Map<String, Slot> slots = new ConcurrentHashMap<>();
  private final Counter patches;

  /** The pending report of one machine and when its status was last written. */
  private static final class Slot {
    AgentReport pending;
    boolean scheduled;
    long lastWriteNanos = Long.MIN_VALUE / 2;
  }

  StatusReports(
      KubernetesClient client,
      MachineDirectory directory,
      EventRecorder events,
      MeterRegistry registry) {
    this.client = client;
    this.directory = directory;
    this.events = events;
    this.patches =
        Counter.builder("chrootbooter.agent.status.patches")
            .description("MachineBoot status patches written from agent reports")
            .register(registry);
  }

  void stop(@Observes ShutdownEvent event) {
    writer.shutdown();
  }

  /** Accepts a valid report for the machine with this MAC. */
  public void submit(String mac, AgentReport report) {
    Slot slot = slots.computeIfAbsent(mac, m -> new Slot());
    synchronized (slot) {
      slot.pending = slot.pending == null ? report : merge(slot.pending, report);
      if (!slot.scheduled) {
        slot.scheduled = true;
        long delay = Math.max(0, slot.lastWriteNanos + MIN_INTERVAL_NANOS - System.nanoTime());
        writer.schedule(() -> flush(mac, slot), delay, TimeUnit.NANOSECONDS);
      }
    }
  }

  private void flush(String mac, Slot slot) {
    AgentReport report;
    synchronized (slot) {
      report = slot.pending;
      slot.pending = null;
      slot.scheduled = false;
      slot.lastWriteNanos = System.nanoTime();
    }
    Optional<MachineBoot> machine = directory.byMac(mac);
    if (report == null || machine.isEmpty()) {
      return;
    }
    try {
      write(machine.get(), report);
    } catch (KubernetesClientException e) {
      LOG.warnf("Could not write the status of %s: %s", mac, e.getMessage());
    }
  }

  private void write(MachineBoot cached, AgentReport report) {
    MachineBoot[] before = new MachineBoot[1];
    Health[] after = new Health[1];
    MachineBoot written =
        client
            .resources(MachineBoot.class)
            .inNamespace(cached.getMetadata().getNamespace())
            .withName(cached.getMetadata().getName())
            .editStatus(
                current -> {
                  before[0] = current;
                  MachineBoot updated = withReport(current, report);
                  after[0] = health(updated);
                  MachineBootStatus status =
                      MachineBootStatuses.desired(observation(updated), after[0], clock.instant());
                  // observedGeneration is the reconciler's to advance.
                  updated.setStatus(
                      new MachineBootStatus(
                          status.phase(),
                          status.currentImage(),
                          current.getStatus() == null
                              ? null
                              : current.getStatus().observedGeneration(),
                          status.progress(),
                          status.lastReturn(),
                          status.agent(),
                          status.error(),
                          status.conditions()));
                  return updated;
                });
    patches.increment();
    MachineBootStatus old = before[0].getStatus();
    Optional<Health> was = old == null ? Optional.empty() : Health.of(old.conditions());
    if (!was.equals(Optional.of(after[0]))) {
      events.transition(written, after[0]);
    }
  }

  /** A copy of {@code mb} with the report's fields in its status. */
  private static MachineBoot withReport(MachineBoot mb, AgentReport report) {
    MachineBootStatus old = mb.getStatus();
    MachineBoot updated = new MachineBoot();
    updated.setMetadata(mb.getMetadata());
    updated.setSpec(mb.getSpec());
    updated.setStatus(
        new MachineBootStatus(
            report.machinePhase(),
            report.currentImage() != null
                ? report.currentImage()
                : old == null ? null : old.currentImage(),
            old == null ? null : old.observedGeneration(),
            report.progress() != null ? report.progress() : old == null ? null : old.progress(),
            report.lastReturn() != null
                ? report.lastReturn()
                : old == null ? null : old.lastReturn(),
            report.agent() != null ? report.agent() : old == null ? null : old.agent(),
            report.error(),
            old == null ? null : old.conditions()));
    return updated;
  }

  private MachineBootStatuses.Observation observation(MachineBoot mb) {
    Optional<BootImage> image =
        mb.getSpec() == null || mb.getSpec().imageRef() == null
            ? Optional.empty()
            : directory.image(mb.getMetadata().getNamespace(), mb.getSpec().imageRef());
    return new MachineBootStatuses.Observation(mb, image, directory.byMac(macOf(mb)));
  }

  private Health health(MachineBoot mb) {
    return MachineBootStatuses.health(observation(mb));
  }

  private static String macOf(MachineBoot mb) {
    return io.chrootbooter.operator.machine.MacAddress.normalize(mb.getSpec().macAddress())
        .orElseThrow();
  }

  /** {@code newer} over {@code older}: each field of the newer report wins when it is set. */
  static AgentReport merge(AgentReport older, AgentReport newer) {
    return new AgentReport(
        newer.phase(),
        newer.progress() != null ? newer.progress() : older.progress(),
        newer.currentImage() != null ? newer.currentImage() : older.currentImage(),
        newer.error(),
        newer.lastReturn() != null ? newer.lastReturn() : older.lastReturn(),
        newer.agent() != null ? newer.agent() : older.agent(),
        newer.appliedGeneration() != null ? newer.appliedGeneration() : older.appliedGeneration());
  }
}
