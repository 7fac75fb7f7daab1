/**
 * The machines' consoles as users reach them.
 *
 * <p>Recorded: what each agent's console relay recorded while a target ran (its consoles and the
 * kernel's log), sent over the agent's own connection ({@code POST
 * /agent/v1/machines/{mac}/console}), kept per machine for the current and the previous boot
 * ({@link io.chrootbooter.operator.console.ConsoleLogs}), and read on the admin port ({@code
 * statuspage.ConsoleRoutes}). Kernel warnings become {@code KernelWarning} Events on the
 * MachineBoot.
 *
 * <p>Live: a user attaches with a WebSocket on the admin port; the operator relays bytes between it
 * and a connection the machine's agent opens for that attach ({@link
 * io.chrootbooter.operator.console.ConsoleAttachments}). Why the agent opens a connection per
 * attach, told over its desired-state stream, rather than keeping one open all the time: the stream
 * is already open and pushed within milliseconds, so the extra latency is one WebSocket handshake
 * at attach time (not per keystroke), while a standing connection would double the agent
 * connections every replica holds (one per machine, 10,000 machines) and need its own reconnects,
 * heartbeats and liveness for a console nobody watches most of the time. No port listens on the
 * machine either way.
 *
 * <p>Several replicas: an attach is served by the replica that holds the machine's desired-state
 * stream (the chart's Service keeps a machine's calls on one replica with ClientIP affinity); there
 * the agent's console connection arrives too, through the same Service. The recorded console stays
 * on the replica the agent sends it to. Each replica names itself in the machine's agent Lease for
 * what it holds, and another replica that a user reaches checks the user and forwards the attach or
 * read there with a forward credential of its own ({@link
 * io.chrootbooter.operator.console.ReplicaForwards}: why an HMAC with the machine token key rather
 * than the user's credential or a ServiceAccount token: the user's credential is never handed on,
 * and a replica can check the key's HMAC without asking the API server, which would need the
 * operator's own identity to be told apart from other ServiceAccounts). BootTest console checks
 * read through the same forward ({@link io.chrootbooter.operator.console.RecordedConsoles}).
 *
 * <p>Several users may attach to one machine at once: each gets its own agent connection, all see
 * the whole output, and every one of them may type (as several people at one serial console; their
 * keystrokes interleave). {@code ~.} and other escapes are the client's: the operator relays every
 * byte.
 *
 * <p>Who may: the user's own Kubernetes credential, checked by the API server ({@link
 * io.chrootbooter.operator.console.ConsoleAccess}: TokenReview, then SubjectAccessReview of {@code
 * get machineboots/log} to read, {@code create machineboots/console} to attach). Each attach is a
 * {@code ConsoleAttached} Event on the MachineBoot naming the user.
 */
package io.chrootbooter.operator.console;
