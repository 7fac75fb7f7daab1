/**
 * The agent ↔ operator contract, defined once: the desired state the operator streams to a machine
 * ({@link io.chrootbooter.protocol.DesiredState}), the status report the agent posts back ({@link
 * io.chrootbooter.protocol.StatusReport}) with the flight recorder's timelines ({@link
 * io.chrootbooter.protocol.Timeline}, whose step names both sides share), and the vocabulary both
 * use: {@link io.chrootbooter.protocol.Action}, {@link io.chrootbooter.protocol.MachinePhase},
 * {@link io.chrootbooter.protocol.ReturnTrigger}, {@link io.chrootbooter.protocol.ImageFormat} and
 * Go-style durations ({@link io.chrootbooter.protocol.GoDuration}), and the one retry schedule both
 * sides build their Failsafe policies from ({@link io.chrootbooter.protocol.Backoff}). The
 * operator, the CRD model and the node agent all compile against these types, so within one release
 * a value one side sends and the other does not know cannot be written; between releases, see the
 * compatibility rules below. Before this module each side had its own copy, and the copies had
 * drifted (a return trigger the operator counted under a name the agent never sent).
 *
 * <p>Why a module of its own, and why it writes two small codecs itself: it goes into the agent's
 * initramfs, so it depends on the JDK and Jackson's annotations only (the agent brings its own
 * {@code jackson-databind}; the operator and the CRD generator read the same annotations). Image
 * formats are told apart by their magic bytes here rather than by commons-compress's detection,
 * which knows no squashfs and would pull commons-compress into the operator; and the durations are
 * Kubernetes' Go notation ({@code 1h30m}), which {@link java.time.Duration#parse} (ISO-8601) does
 * not read.
 *
 * <p>Compatibility: field names and values are the wire format. An agent ignores fields it does not
 * know in a desired state and reads an action or format it does not know as null; the operator
 * refuses a status report with a field or phase it does not know, and records a return trigger it
 * does not know as {@code Other}. See the agent API in the repository's README.
 */
package io.chrootbooter.protocol;
