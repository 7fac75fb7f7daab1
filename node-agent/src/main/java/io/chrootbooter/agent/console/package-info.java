/**
 * The interactive shell on the bootstrap console (tty1 and the serial console): {@code load <url>
 * [--sha256 H] [--format F]}, {@code status}, {@code return}, {@code resume}, {@code images},
 * {@code help}. {@link ConsoleParser} is pure; {@link ConsoleShell} is the thin line loop over a
 * {@link ConsoleActions}. Output is plain ASCII lines, so it works on a dumb serial terminal.
 */
package io.chrootbooter.agent.console;
