/**
 * The agent's side of the agent ↔ operator protocol (docs/architecture.md §3): the desired-state
 * stream (Server-Sent Events, resumed with {@code Last-Event-ID}), status reports coalesced to one
 * POST a second, the enrolment that exchanges the one-time boot nonce ({@code cb.nonce=}) for a
 * session of this boot (kept root-only in {@code /run/bootstrap} for a restarted agent) sent as a
 * bearer credential, and TLS pinned to the CA fingerprint from the kernel command line ({@code
 * cb.ca=sha256:…}). The machine never talks to the Kubernetes API. A user attached to the live
 * console at the operator reaches the machine through a WebSocket the agent opens outbound when its
 * stream hands it a ticket ({@link io.chrootbooter.agent.operator.ConsoleAttach}; the JDK's client,
 * no codec of our own).
 */
package io.chrootbooter.agent.operator;
