package io.chrootbooter.operator.agentapi;

import io.chrootbooter.api.v1alpha1.LastReboot;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.operator.liveness.AgentLeases;
import io.chrootbooter.operator.liveness.LivenessRules;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.operator.status.Health;
import io.chrootbooter.operator.status.Reason;
import io.chrootbooter.protocol.GoDuration;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.StatusReport;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.net.HttpURLConnection;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.Objects;
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
 *
 * <p>Every replica writes the reports it receives, leader or not: agents reach any replica through
 * the Service, and a report must not wait for a leader election. Two replicas never undo each
 * other's newer report: each report is stamped with the time this replica received it ({@code
 * status.lastReportTime}), and a write takes the object (the informer's copy, a fresh read after a
 * conflict), drops the report when the status already shows one received later, and otherwise
 * replaces the status under that resourceVersion — a 409 Conflict (another writer came in between)
 * reads again. The stamps of two replicas compare as far as their clocks agree; an agent sends at
 * most one report a second, so clocks synchronised to within a few hundred milliseconds keep a
 * machine's reports in order.
 *
 * <p>Agents re-send their full report every heartbeat. A report that would change nothing the
 * status shows is not written ({@link #changes}), except to refresh {@code status.lastSeen} once it
 * is {@code cb.agent.lost-after} old: a quiet fleet makes almost no status writes, and a status
 * that shows something else than the agent reports (edited by hand, or a lost write) is written
 * over within one heartbeat. Every report renews the machine's agent Lease when due ({@link
 * AgentLeases}). A report that names another kernel boot id than a Running (or lost) machine's
 * status records the reboot ({@code status.lastReboot}, Event {@code MachineRebooted}).
 */
@ApplicationScoped
public class StatusReports {
  private static final Logger LOG = Logger.getLogger(StatusReports.class);
  static final long MIN_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1);

  /** Reads and writes of one report when other writers keep changing the object in between. */
  static final int CONFLICT_ATTEMPTS = 5;

  private final KubernetesClient client;
  private final MachineDirectory directory;
  private final Returns returns;
  private final SwitchTimer switches;
  private final EventRecorder events;
  private final Clock clock = Clock.systemUTC();
  private final ScheduledExecutorService writer = Executors.newScheduledThreadPool(2);
  private final Map<String, Slot> slots = new ConcurrentHashMap<>();
  private final Counter patches;
  private final Counter superseded;
  private final Counter unchanged;
  private final AgentLeases leases;
  private final TimelineRecorder timelines;

  /** Attempts to write one report before it is given up (the object is gone, or keeps failing). */
  static final int MAX_ATTEMPTS = 5;

  /** A report and when this replica received it (the newest of those merged into it). */
  record Received(StatusReport report, Instant at) {}

  /**
   * The pending report of one machine and when its status was last written. At most one write per
   * machine is scheduled or running at a time, so writes never overlap or reorder.
   */
  private static final class Slot {
    Received pending;
    boolean scheduled;
    int failures;
    long lastWriteNanos = Long.MIN_VALUE / 2;
  }

  StatusReports(
      KubernetesClient client,
      MachineDirectory directory,
      Returns returns,
      SwitchTimer switches,
      EventRecorder events,
      AgentLeases leases,
      MeterRegistry registry,
      TimelineRecorder timelines) {
    this.timelines = timelines;
    this.leases = leases;
    this.client = client;
    this.directory = directory;
    this.returns = returns;
    this.switches = switches;
    this.events = events;
    this.patches =
        Counter.builder("chrootbooter.agent.status.patches")
            .description("MachineBoot status writes of agent reports")
            .register(registry);
    this.superseded =
        Counter.builder("chrootbooter.agent.status.superseded")
            .description(
                "Agent reports not written because the status already held a later one (written"
                    + " by another replica)")
            .register(registry);
    this.unchanged =
        Counter.builder("chrootbooter.agent.status.unchanged")
            .description(
                "Agent reports not written because the status already showed them (heartbeats)")
            .register(registry);
  }

  void stop(@Observes ShutdownEvent event) {
    writer.shutdown();
  }

  /** Accepts a valid report for the machine with this MAC. */
  public void submit(String mac, StatusReport report) {
    switches.reported(mac, report, System.nanoTime());
    Received received = new Received(report, clock.instant().truncatedTo(ChronoUnit.MILLIS));
    Optional<MachineBoot> cached = directory.byMac(mac);
    cached.ifPresent(leases::heard);
    Slot slot = slots.computeIfAbsent(mac, m -> new Slot());
    synchronized (slot) {
      if (slot.pending == null
          && !slot.scheduled
          && cached.isPresent()
          && !needsWrite(
              cached.get().getStatus(),
              report,
              received.at(),
              leases.lostAfter(),
              timelines.apply(mac, cached.get().getStatus(), report.timelines()))) {
        // A heartbeat of what the cached status shows: nothing to write, not even a read.
        unchanged.increment();
        return;
      }
      slot.pending = slot.pending == null ? received : merge(slot.pending, received);
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
    Received report;
    synchronized (slot) {
      report = slot.pending;
      slot.pending = null;
    }
    Optional<MachineBoot> machine = directory.byMac(mac);
    boolean failed = false;
    boolean retry = false;
    if (report != null && machine.isPresent()) {
      try {
        write(mac, machine.get(), report);
      } catch (KubernetesClientException e) {
        // Conflicts beyond CONFLICT_ATTEMPTS, or the API server away: the report goes back,
        // under anything newer, and is written again a second later.
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
   * Writes the report's fields over the object, under its resourceVersion; see the class comment.
   * The first attempt writes over the informer's copy, which is almost always current: one API call
   * per write, not a read and a write. A 409 Conflict (the copy was stale, or another writer came
   * in between) reads the object afresh. The conditions follow from the MachineBoot reconciler,
   * which sees this change.
   */
  private void write(String mac, MachineBoot cached, Received received) {
    var resource =
        client
            .resources(MachineBoot.class)
            .inNamespace(cached.getMetadata().getNamespace())
            .withName(cached.getMetadata().getName());
    for (int attempt = 1; ; attempt++) {
      MachineBoot current = attempt == 1 ? copyOf(cached) : resource.get();
      if (current == null) {
        throw new KubernetesClientException(
            "MachineBoot " + cached.getMetadata().getName() + " is gone", 404, null);
      }
      FlightRecords.Result flights =
          timelines.apply(mac, current.getStatus(), received.report().timelines());
      if (!needsWrite(
          current.getStatus(), received.report(), received.at(), leases.lostAfter(), flights)) {
        unchanged.increment();
        return;
      }
      if (writtenAfter(current, received.at())) {
        superseded.increment();
        LOG.debugf(
            "A report of %s received at %s is older than the status' %s; dropped",
            cached.getMetadata().getName(), received.at(), current.getStatus().lastReportTime());
        return;
      }
      Optional<LastReboot> reboot = reboot(current, received);
      try {
        client.resource(withReport(current, received, reboot.orElse(null), flights)).updateStatus();
      } catch (KubernetesClientException e) {
        if (e.getCode() == HttpURLConnection.HTTP_CONFLICT && attempt < CONFLICT_ATTEMPTS) {
          continue;
        }
        throw e;
      }
      patches.increment();
      timelines.added(flights.added());
      reboot.ifPresent(r -> rebootWritten(current, r));
      phaseWritten(current, received.report());
      returns.written(current, received.report().lastReturn());
      return;
    }
  }

  /**
   * An Event when the written report moved the machine to another phase: {@code phase Running →
   * Returning (debian-12)}, a Warning for {@code Failed}. Like a return, it is recorded by the one
   * replica whose write landed over {@code before}.
   */
  private void phaseWritten(MachineBoot before, StatusReport report) {
    String was =
        before.getStatus() == null || before.getStatus().phase() == null
            ? "none"
            : before.getStatus().phase().name();
    if (was.equals(report.phase().name())) {
      return;
    }
    events.record(
        before,
        report.phase() == MachinePhase.Failed ? "Warning" : "Normal",
        Reason.PhaseChanged.name(),
        "phase "
            + was
            + " → "
            + report.phase()
            + (report.currentImage() == null ? "" : " (" + report.currentImage() + ")"));
  }

  /**
   * Whether a report must be written over {@code status}: it {@link #changes changes} what the
   * status shows, or the status' {@code lastSeen} is due for a refresh ({@link
   * LivenessRules#needsSeenWrite}).
   */
  static boolean needsWrite(
      MachineBootStatus status,
      StatusReport report,
      Instant now,
      Duration lostAfter,
      FlightRecords.Result flights) {
    return changes(status, report, flights)
        || LivenessRules.needsSeenWrite(
            LivenessRules.parse(status == null ? null : status.lastSeen()).orElse(null),
            now,
            lostAfter);
  }

  /**
   * Whether writing the report would change one of the agent's fields the status shows: phase,
   * image, error, progress, last return, agent (its boot id among them), confinement, a Lazy
   * image's prefetch, the results of a BootTest's commands, or the flight recorder's timelines.
   */
  static boolean changes(MachineBootStatus status, StatusReport report) {
    return changes(status, report, FlightRecords.apply(status, report.timelines(), t -> t, 10));
  }

  /**
   * As {@link #changes(MachineBootStatus, StatusReport)}, the timelines composed as {@code
   * flights}.
   */
  static boolean changes(
      MachineBootStatus status, StatusReport report, FlightRecords.Result flights) {
    if (status == null) {
      return true;
    }
    return status.phase() != report.phase()
        || !Objects.equals(status.currentImage(), report.currentImage())
        || !Objects.equals(status.error(), report.error())
        || status.confinement() != report.confinement()
        || !Objects.equals(status.prefetch(), report.prefetch())
        || (report.progress() != null && !report.progress().equals(status.progress()))
        || (report.lastReturn() != null && !report.lastReturn().equals(status.lastReturn()))
        || (report.agent() != null && !report.agent().equals(status.agent()))
        || !Objects.equals(
            status.testCommands() == null ? List.of() : status.testCommands(), report.commands())
        || flights.differsFrom(status);
  }

  /**
   * The reboot a report shows over {@code current}, if any ({@link LivenessRules#rebooted}): when
   * its previous boot was last heard from, how long it ran its image, and whether the machine's
   * iPXE script was served since (read from its agent Lease).
   */
  private Optional<LastReboot> reboot(MachineBoot current, Received received) {
    MachineBootStatus before = current.getStatus();
    boolean lost =
        before != null
            && Health.of(before.conditions())
                .map(h -> h.reason() == Reason.AgentLost)
                .orElse(false);
    if (!LivenessRules.rebooted(before, received.report(), lost)) {
      return Optional.empty();
    }
    // The previous boot's last sign of life the status holds: the Lease may already have been
    // renewed by the new boot (its stream opens before it reports).
    Instant previousSeen = LivenessRules.lastSeen(null, before).orElse(received.at());
    Optional<Instant> ipxe = Optional.empty();
    try {
      ipxe = leases.read(current).flatMap(AgentLeases::ipxeFetchedAt);
    } catch (KubernetesClientException e) {
      LOG.debugf("Could not read the agent Lease of %s: %s", current.getMetadata().getName(), e);
    }
    String ranFor =
        LivenessRules.parse(before.runningSince())
            .filter(since -> !since.isAfter(previousSeen))
            .map(since -> GoDuration.format(Duration.between(since, previousSeen)))
            .orElse(null);
    return Optional.of(
        new LastReboot(
            received.at().truncatedTo(ChronoUnit.SECONDS).toString(),
            LivenessRules.bootIdOf(before),
            before.phase() == MachinePhase.Running ? before.currentImage() : null,
            ranFor,
            ipxe.map(at -> at.isAfter(previousSeen)).orElse(false)));
  }

  /** The Event of a reboot: {@code previous boot <id> ran <image> for <duration>}. */
  private void rebootWritten(MachineBoot before, LastReboot reboot) {
    events.record(
        before,
        "Normal",
        Reason.MachineRebooted.name(),
        "previous boot "
            + reboot.previousBootId()
            + (reboot.previousImage() == null ? " ran no image" : " ran " + reboot.previousImage())
            + (reboot.ranFor() == null ? "" : " for " + reboot.ranFor())
            + (Boolean.TRUE.equals(reboot.ipxeFetched())
                ? "; the machine fetched its iPXE script since"
                : "; no iPXE script was fetched since"));
  }

  /** Whether the status shows a report received after {@code at}. */
  static boolean writtenAfter(MachineBoot mb, Instant at) {
    String last = mb.getStatus() == null ? null : mb.getStatus().lastReportTime();
    if (last == null) {
      return false;
    }
    try {
      return Instant.parse(last).isAfter(at);
    } catch (DateTimeParseException e) {
      return false; // not ours: written over
    }
  }

  /** A copy of {@code mb} with the report's fields in its status. */
  /** A copy to write over: the informer's own object is never changed. */
  private static MachineBoot copyOf(MachineBoot cached) {
    MachineBoot copy = new MachineBoot();
    copy.setMetadata(new ObjectMetaBuilder(cached.getMetadata()).build());
    copy.setSpec(cached.getSpec());
    copy.setStatus(cached.getStatus());
    return copy;
  }

  static MachineBoot withReport(MachineBoot mb, Received received, LastReboot reboot) {
    return withReport(
        mb,
        received,
        reboot,
        FlightRecords.apply(mb.getStatus(), received.report().timelines(), t -> t, 10));
  }

  /**
   * A copy of {@code mb} with the report's fields, and the timelines {@code flights}, in its
   * status.
   */
  static MachineBoot withReport(
      MachineBoot mb, Received received, LastReboot reboot, FlightRecords.Result flights) {
    StatusReport report = received.report();
    MachineBootStatus old = mb.getStatus();
    MachineBoot updated = new MachineBoot();
    updated.setMetadata(mb.getMetadata());
    updated.setSpec(mb.getSpec());
    updated.setStatus(
        MachineBootStatus.builder()
            .phase(report.phase())
            // The agent names the image in the reported phase, none in Bootstrap: its report is
            // the truth, also when it names none.
            .currentImage(report.currentImage())
            .observedGeneration(old == null ? null : old.observedGeneration())
            .progress(
                report.progress() != null ? report.progress() : old == null ? null : old.progress())
            .lastReturn(
                report.lastReturn() != null
                    ? report.lastReturn()
                    : old == null ? null : old.lastReturn())
            .agent(report.agent() != null ? report.agent() : old == null ? null : old.agent())
            .error(report.error())
            .lastReportTime(received.at().toString())
            .conditions(old == null ? null : old.conditions())
            .lastSeen(received.at().truncatedTo(ChronoUnit.SECONDS).toString())
            .runningSince(runningSince(old, report, reboot != null, received.at()))
            .lastReboot(reboot != null ? reboot : old == null ? null : old.lastReboot())
            // The agent names the confinement of the target that runs, none in the bootstrap.
            .confinement(report.confinement())
            .heldBy(old == null ? null : old.heldBy())
            // Of the reported phase's target, like the phase itself.
            .healthy(report.healthy())
            .testCommands(report.commands())
            .lastBoot(flights.lastBoot())
            .lastSwitch(flights.lastSwitch())
            .history(flights.history())
            // Of the reported phase's target, like its confinement.
            .prefetch(report.prefetch())
            .build());
    return updated;
  }

  /**
   * When the report's image started Running: kept while the same image runs in the same boot, now
   * when it starts, none outside Running.
   */
  static String runningSince(
      MachineBootStatus old, StatusReport report, boolean rebooted, Instant now) {
    if (report.phase() != MachinePhase.Running) {
      return null;
    }
    if (old != null
        && !rebooted
        && old.phase() == MachinePhase.Running
        && Objects.equals(old.currentImage(), report.currentImage())
        && old.runningSince() != null) {
      return old.runningSince();
    }
    return now.truncatedTo(ChronoUnit.SECONDS).toString();
  }

  /** {@code newer} over {@code older}: each field of the newer report wins when it is set. */
  static Received merge(Received older, Received newer) {
    return new Received(merge(older.report(), newer.report()), newer.at());
  }

  /**
   * {@code newer} over {@code older}: each field of the newer report wins when it is set; the
   * phase, the error, the current image, its confinement, its health, its commands' results and its
   * prefetch are always the newer report's (they describe one moment together).
   */
  static StatusReport merge(StatusReport older, StatusReport newer) {
    return StatusReport.builder()
        .phase(newer.phase())
        .progress(newer.progress() != null ? newer.progress() : older.progress())
        .currentImage(newer.currentImage())
        .error(newer.error())
        .lastReturn(newer.lastReturn() != null ? newer.lastReturn() : older.lastReturn())
        .agent(newer.agent() != null ? newer.agent() : older.agent())
        .appliedGeneration(
            newer.appliedGeneration() != null
                ? newer.appliedGeneration()
                : older.appliedGeneration())
        .confinement(newer.confinement())
        .healthy(newer.healthy())
        .commands(newer.commands())
        .timelines(newer.timelines() != null ? newer.timelines() : older.timelines())
        .prefetch(newer.prefetch())
        .build();
  }
}
