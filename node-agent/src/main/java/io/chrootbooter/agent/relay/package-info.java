/**
 * The console server and boot recorder of the agent (docs/architecture.md §5a): while a target
 * runs, its {@code /dev/console} and each console device of the kernel command line are pty slaves
 * the agent owns, bound over the target's device nodes by the enter step ({@link
 * io.chrootbooter.agent.pivot.ConsoleHook}); a {@link io.chrootbooter.agent.relay.ConsoleRelay} per
 * real device copies between the pty and the device, and everything the target writes, with the
 * kernel's log read from {@code /dev/kmsg}, goes into a bounded {@link
 * io.chrootbooter.agent.relay.BootLog} per boot.
 *
 * <p>Why our own relay over JNA rather than a tool: the relay is a loop of poll(2), read(2) and
 * write(2) on four descriptors, and the pty is four libc calls ({@code posix_openpt}, {@code
 * grantpt}, {@code unlockpt}, {@code ptsname_r}); the agent already binds libc with JNA (libcrypto,
 * the syscalls of {@code agent.sys}). {@code socat} or {@code script} would each add a program to
 * the bootstrap and a process per device, would still need the agent to read the log they write,
 * and would not give the agent what it needs in one place: the bytes for the log, back-pressure
 * exactly as the real device gives it, input dropped rather than blocking when the target does not
 * read, the device's terminal settings put back on return, and a prompt stop (a self-pipe in every
 * poll).
 *
 * <p>What the person at the machine keeps: the pty's line discipline is the one the target talks
 * to, the real device is in raw mode and passes bytes through, so the getty, the login prompt and
 * typing work as before. Ctrl+Alt+F12 is read from evdev, below the terminal, and printk writes to
 * the console drivers, not through {@code /dev/console}: neither passes through the relay. The
 * serial trigger's port is not relayed (two readers of one terminal would split its input).
 */
package io.chrootbooter.agent.relay;
