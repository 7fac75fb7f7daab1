/**
 * The {@code Confined} level of a target ({@link io.chrootbooter.protocol.Confinement}): what it
 * may not do to the machine it shares with the bootstrap.
 *
 * <p>Three parts. {@link BoundingSet}: capabilities dropped from the bounding set. {@link
 * SeccompFilter}: system calls refused whatever the capabilities. {@link ConfinedMounts}: a private
 * {@code /dev} and read-only {@code /proc/sys}, {@code /proc/sysrq-trigger} and {@code /sys}, made
 * by the enter step ({@code io.chrootbooter.agent.pivot.EnterScript}).
 *
 * <p>Why the bounding set and the filter are set by the agent itself, on the one thread that starts
 * the enter step ({@link ConfinedStart}), and not by a program the step runs:
 *
 * <ul>
 *   <li>No program of Debian 12 or of the bootstrap loads a seccomp filter for another program:
 *       busybox's {@code setpriv} has neither {@code --bounding-set} nor a filter, util-linux's
 *       {@code setpriv} (2.38) drops the bounding set but loads no filter (its {@code
 *       --seccomp-filter} came in 2.40), {@code capsh} drops capabilities only. {@code bwrap} takes
 *       a filter but also makes namespaces and mounts of its own, around the ones the enter step
 *       must make itself.
 *   <li>The filter itself is written by libseccomp, the library systemd, bubblewrap and the
 *       container runtimes use and Debian keeps ({@code libseccomp2}), called through JNA, which
 *       the agent already uses for its other system calls. Writing the BPF program by hand would
 *       mean getting the ABIs right by hand (the i386 and x32 system calls an x86-64 process can
 *       make have other numbers); libseccomp does that.
 *   <li>Both the bounding set and a filter belong to a thread and are inherited by every process it
 *       starts: set on a thread that then starts the enter step and ends, they hold from the step's
 *       first {@code execve} on, for the target's init and everything it starts, and touch no other
 *       thread of the agent. The JDK forks (or {@code posix_spawn}s) from the calling thread. A
 *       thread the JDK creates from that thread (a "process reaper" that waits for the step to
 *       exit) carries them too; it only waits for processes.
 *   <li>The step then runs without {@code CAP_MKNOD}: the private {@code /dev}'s nodes are bind
 *       mounts of the bootstrap's, checked by major and minor, not new nodes.
 * </ul>
 *
 * <p>What a Confined target keeps: {@code CAP_SYS_ADMIN}, because systemd does not boot without it
 * (no user namespace is made). With it, a target that sets out to do so can mount a new {@code
 * proc} or {@code devtmpfs} or remount the read-only mounts writable; SECURITY.md says so.
 */
package io.chrootbooter.agent.confine;
