/**
 * The agent API: the desired-state stream machines follow and the status reports they send. Only
 * machines call it, each with the token of its MAC; the operator stays the single writer of
 * MachineBoot status.
 */
package io.chrootbooter.operator.agentapi;
