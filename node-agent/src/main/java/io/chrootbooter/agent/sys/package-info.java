/**
 * The Linux calls the JDK has no API for ({@link io.chrootbooter.agent.sys.Syscalls}, bound to libc
 * with JNA by {@link io.chrootbooter.agent.sys.LinuxSyscalls}), their errors ({@link
 * io.chrootbooter.agent.sys.SyscallException}, named by {@link io.chrootbooter.agent.sys.Errno}):
 * used by the image pipeline ({@code unpack}) and by the pivot into a target ({@code pivot}) alike.
 */
package io.chrootbooter.agent.sys;
