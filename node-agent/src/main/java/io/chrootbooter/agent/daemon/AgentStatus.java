package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.console.ProgressBar;
import io.chrootbooter.agent.daemon.AgentPolicy.Booted;
import io.chrootbooter.agent.fetch.DownloadProgress;
import io.chrootbooter.agent.pivot.LastReturn;
import io.chrootbooter.agent.pivot.TargetControl;
import io.chrootbooter.agent.pivot.TargetSession;
import io.chrootbooter.agent.pivot.TargetSpec;
import io.chrootbooter.protocol.Action;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.Progress;
import io.chrootbooter.protocol.StatusReport;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/** What the agent's status says, from the policy's state and the controller's. */
final class AgentStatus {
  private AgentStatus() {}

  /** The status report as of now. */
  static StatusReport report(
      TargetControl controller,
      Supplier<MachinePhase> phases,
      Supplier<AgentPolicy.State> states,
      AgentInfo info) {
    // The session is read before and after the phase: a session that changed in between (a switch
    // completed) is read again, so the phase and the image named belong to the same target.
    Optional<TargetSession> session;
    MachinePhase phase;
    Optional<TargetSession> after = controller.session();
    do {
      session = after;
      phase = phases.get();
      after = controller.session();
    } while (!session.equals(after));
    StatusReport report =
        report(
            states.get(), phase, session.map(TargetSession::spec), controller.lastReturn(), info);
    boolean healthy =
        phase == MachinePhase.Running && session.map(TargetSession::healthy).orElse(false);
    return healthy ? report.toBuilder().healthy(true).build() : report;
  }

  /**
   * The status report.
   *
   * @param phase the phase as {@link AgentPolicy#phase} has it
   * @param running the spec of the target session that exists, if any
   */
  static StatusReport report(
      AgentPolicy.State s,
      MachinePhase phase,
      Optional<TargetSpec> running,
      Optional<LastReturn> last,
      AgentInfo info) {
    // A session in the bootstrap is one being entered this instant (the controller sets the
    // session, then Running): the bootstrap names no image.
    Optional<TargetSpec> named =
        phase == MachinePhase.Bootstrap || phase == MachinePhase.ConsoleOverride
            ? Optional.empty()
            : running;
    DownloadProgress progress = s.load() == null ? null : s.load().progress();
    Progress p =
        progress == null
            ? null
            : new Progress(
                progress.bytes(),
                progress.total() < 0 ? null : progress.total(),
                (long) progress.bytesPerSecond());
    return StatusReport.builder()
        .phase(phase)
        .progress(p)
        .currentImage(named.map(spec -> imageOf(s, spec)).orElse(null))
        .error(phase == MachinePhase.Failed ? s.error() : null)
        .lastReturn(
            last.map(
                    r ->
                        new io.chrootbooter.protocol.LastReturn(
                            r.trigger().name(),
                            r.reason().isEmpty() ? null : r.reason(),
                            r.time().toString(),
                            r.duration().toMillis(),
                            r.forced()))
                .orElse(null))
        .agent(info)
        .appliedGeneration(s.appliedGeneration() < 0 ? null : s.appliedGeneration())
        .confinement(named.map(TargetSpec::confinement).orElse(null))
        .build();
  }

  /**
   * The name of the image booted with {@code spec} (null for a console {@code load}): the status
   * names the image of the target session that exists, so during a switch the old image is named
   * while it returns.
   */
  private static String imageOf(AgentPolicy.State s, TargetSpec spec) {
    for (Booted b : new Booted[] {s.booted(), s.bootedBefore()}) {
      if (b != null && b.spec() == spec) {
        return b.name();
      }
    }
    return null;
  }

  /** The agent's lines of the console's {@code status}. */
  static List<String> lines(AgentPolicy.State s, boolean running) {
    List<String> lines = new ArrayList<>();
    AgentPolicy.Load load = s.load();
    if (load != null && load.phase() != null && load.progress() != null) {
      DownloadProgress p = load.progress();
      lines.add("download: " + ProgressBar.render(p.bytes(), p.total(), p.bytesPerSecond(), 20));
    }
    if (s.error() != null) {
      lines.add("error: " + s.error());
    }
    DesiredState desired = s.desired();
    if (desired != null) {
      lines.add(
          "spec: generation "
              + desired.generation()
              + ", "
              + AgentPolicy.describe(desired)
              + (desired.action() == Action.Hold && running
                  ? "; the running image keeps running"
                  : ""));
    }
    return lines;
  }
}
