/**
 * Whether each machine's agent is alive, from the agent's own connection: every replica renews a
 * per-machine Lease when it hears from the agent (a report, or its desired-state stream opening),
 * and the MachineBoot reconciler marks a machine {@code AgentLost} once the Lease has not been
 * renewed for {@code cb.agent.lost-after}. See {@code docs/architecture.md §3}.
 */
package io.chrootbooter.operator.liveness;
