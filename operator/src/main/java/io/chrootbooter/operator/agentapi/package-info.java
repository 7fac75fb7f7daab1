/**
 * The agent API: the enrolment that exchanges a machine's one-time boot nonce for a session of that
 * boot ({@link io.chrootbooter.operator.agentapi.Enrolments}), the desired-state stream machines
 * follow and the status reports they send. Only machines call it, each with the session of its
 * current boot; the operator stays the single writer of MachineBoot status.
 */
package io.chrootbooter.operator.agentapi;
