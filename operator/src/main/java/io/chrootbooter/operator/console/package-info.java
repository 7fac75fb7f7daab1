/**
 * The machines' recorded consoles: what each agent's console relay recorded while a target ran (its
 * consoles and the kernel's log), sent over the agent's own connection ({@code POST
 * /agent/v1/machines/{mac}/console}), kept per machine for the current and the previous boot, and
 * read on the admin port ({@code statuspage.ConsoleRoutes}). Kernel warnings become {@code
 * KernelWarning} Events on the MachineBoot.
 */
package io.chrootbooter.operator.console;
