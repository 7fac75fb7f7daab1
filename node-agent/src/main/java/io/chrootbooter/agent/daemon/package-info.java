/**
 * The agent as a daemon ({@code node-agent run}): follows the operator's desired state (or the
 * kernel command line's {@code cb.image} when there is no operator), loads images through the image
 * pipeline, enters and returns through {@link io.chrootbooter.agent.pivot.BootController}, watches
 * the hotkey and serial triggers, serves the console, and reports status. What it does next is
 * decided by {@link io.chrootbooter.agent.daemon.AgentPolicy}, a pure function that {@link
 * io.chrootbooter.agent.daemon.Agent} carries out.
 */
package io.chrootbooter.agent.daemon;
