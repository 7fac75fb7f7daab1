/**
 * The agent API: the enrolment that exchanges a machine's one-time boot nonce for a session of that
 * boot ({@link io.chrootbooter.operator.agentapi.Enrolments}), the desired-state stream machines
 * follow, the status reports they send and their recorded consoles ({@link
 * io.chrootbooter.operator.agentapi.ConsoleResource}). Only machines call it, each with the session
 * of its current boot; the operator stays the single writer of MachineBoot status.
 */
package io.chrootbooter.operator.agentapi;
