/**
 * The agent API: the enrolment that exchanges a machine's one-time boot nonce for a session of that
 * boot ({@link io.chrootbooter.operator.agentapi.Enrolments}), the desired-state stream machines
 * follow, the status reports they send, their recorded consoles ({@link
 * io.chrootbooter.operator.agentapi.ConsoleResource}) and the live console connection an agent
 * opens when a user attaches ({@link io.chrootbooter.operator.agentapi.ConsoleLive}, a WebSocket:
 * the JDK client on the agent, Vert.x here, no codec of our own). Only machines call it, each with
 * the session of its current boot; the operator stays the single writer of MachineBoot status.
 */
package io.chrootbooter.operator.agentapi;
