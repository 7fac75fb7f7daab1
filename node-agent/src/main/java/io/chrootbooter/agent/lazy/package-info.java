/**
 * {@code delivery: Lazy}: an image attached as a block device whose blocks come from the operator
 * on first read, checked by the kernel's dm-verity.
 *
 * <p><b>Our own NBD server.</b> {@link io.chrootbooter.agent.lazy.NbdServer} speaks the part of the
 * NBD protocol a read-only export needs (the fixed newstyle handshake and simple replies to reads):
 * about 300 lines against the alternatives' cost in the initramfs. nbdkit with its curl plugin is a
 * well-kept server, but it brings nbdkit, the plugin, libcurl and its TLS and HTTP/2 libraries
 * (several MB), and it cannot present the agent's per-boot session, which is in the agent's memory
 * and changes with each enrolment, without a cookie or header script. The agent already has an HTTP
 * client that sends the session to the operator's origin only; the server reuses it. The tests hold
 * the server to libnbd's clients ({@code nbdcopy}, {@code nbdinfo}) and to hostile requests of
 * their own.
 */
package io.chrootbooter.agent.lazy;
