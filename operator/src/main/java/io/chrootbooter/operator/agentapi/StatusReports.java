package io.chrootbooter.operator.agentapi;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
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
 * second is up. The last report is therefore always written — a final phase is never lost. Only the
 * agent's fields are written here; the reconciler derives the conditions from them.
 */
@ApplicationScoped
public class StatusReports {
  private static final Logger LOG = Logger.getLogger(StatusReports.class);
  static final long MIN_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1);

  private final KubernetesClient client;
  private final MachineDirectory directory;
  private final ScheduledExecutorService writer = Executors.newScheduledThreadPool(2);
  private final Map<String, Slot> slots = new ConcurrentHashMap<>();
  private final Counter patches;

  /** Attempts to write one report before it is given up (the object is gone, or keeps failing). */
  static final int MAX_ATTEMPTS = 5;

  /**
   * The pending report of one machine and when its status was last written. At most one write per
   * machine is scheduled or running at a time, so writes never overlap or reorder.
   */
  private static final class Slot {
    AgentReport pending;
    boolean scheduled;
    int failures;
    long lastWriteNanos = Long.MIN_VALUE / 2;
  }

  StatusReports(KubernetesClient client, MachineDirectory directory, MeterRegistry registry) {
    this.client = client;
    this.directory = directory;
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
      scheduleLocked(mac, slot);
    }
  }

  /** Schedules the next write a second after the end of the last one, unless one is due. */
  private void scheduleLocked(String mac, Slot slot) {
    if (!slot.scheduled && slot.pending != null) {
      slot.scheduled = true;
      long delay = Math.max(0, slot.lastWriteNanos + MIN_INTERVAL_NANOS - System.nanoTime());
      writer.schedule(() -> flush(mac, slot), delay, TimeUnit.NANOSECONDS);
    }
  }

  private void flush(String mac, Slot slot) {
    AgentReport report;
    synchronized (slot) {
      report = slot.pending;
      slot.pending = null;
    }
    Optional<MachineBoot> machine = directory.byMac(mac);
    boolean failed = false;
    boolean retry = false;
    if (report != null && machine.isPresent()) {
      try {
        write(machine.get(), report);
      } catch (KubernetesClientException e) {
        // A conflict with the reconciler's own status write, or the API server away: the report
        // goes back, under anything newer, and is written again a second later.
        failed = true;
        retry = e.getCode() != 404; // a deleted MachineBoot's reports are dropped
        LOG.warnf(
            "Could not write the status of %s (HTTP %d): %s", mac, e.getCode(), e.getMessage());
      }
    }
    synchronized (slot) {
      slot.scheduled = false;
      slot.lastWriteNanos = System.nanoTime();
      if (retry && ++slot.failures < MAX_ATTEMPTS) {
        slot.pending = slot.pending == null ? report : merge(report, slot.pending);
      } else if (failed) {
        LOG.warnf("Gave up writing a status report of %s after %d attempts", mac, slot.failures);
        slot.failures = 0;
      } else {
        slot.failures = 0;
      }
      scheduleLocked(mac, slot);
    }
  }

  /**
   * Writes the report's fields from a fresh read of the object; the patch is the difference, so it
   * touches only the agent's fields. The conditions follow from the MachineBoot reconciler, which
   * sees this status change.
   */
  private void write(MachineBoot cached, AgentReport report) {
    client
        .resources(MachineBoot.class)
        .inNamespace(cached.getMetadata().getNamespace())
        .withName(cached.getMetadata().getName())
        .editStatus(current -> withReport(current, report));
    patches.increment();
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
