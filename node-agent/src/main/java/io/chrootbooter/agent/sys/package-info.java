/**
 * The Linux calls the JDK has no API for ({@link io.chrootbooter.agent.sys.Syscalls}, bound to libc
 * with JNA by {@link io.chrootbooter.agent.sys.LinuxSyscalls}), their errors ({@link
 * io.chrootbooter.agent.sys.SyscallException}, named by {@link io.chrootbooter.agent.sys.Errno}):
 * used by the image pipeline ({@code unpack}) and by the pivot into a target ({@code pivot}) alike.
 *
 * <p>{@link io.chrootbooter.agent.sys.Nftables} speaks nftables' netlink protocol itself, for the
 * two requests the network restore needs (list the tables, flush the ruleset), and {@link
 * io.chrootbooter.agent.sys.LegacyIptables} builds the one x_tables structure it needs (an empty
 * table): the bootstrap's busybox has neither nft nor iptables, and they with their libraries would
 * add megabytes to every initramfs for three requests.
 */
package io.chrootbooter.agent.sys;
