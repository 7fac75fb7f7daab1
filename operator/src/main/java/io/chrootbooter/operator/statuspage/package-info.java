/**
 * The operator's live status page at {@code /} of the admin port (the management interface, never
 * the port machines reach): every MachineBoot and BootImage with phase, image, address, download
 * progress, last return and recent events, the BootTest holding a machine, and every BootTest with
 * its progress and the machines it holds, read from the informer caches and kept current over
 * Server-Sent Events. Read-only, and nothing secret is ever on it.
 *
 * <p>The markup is a Qute template rendered with Qute's core engine (already on the class path
 * through the Operator SDK), not the Quarkus Qute extension: one template, its fragments rendered
 * alone for live updates, and HTML escaping of every value by default. A small inline script
 * applies the fragments; there is no JavaScript build.
 */
package io.chrootbooter.operator.statuspage;
