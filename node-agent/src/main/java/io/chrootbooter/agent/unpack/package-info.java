/**
 * From image bytes to a root filesystem: format sniffing, tar extraction while downloading
 * (commons-compress, tukaani xz, zstd-jni) that refuses any entry escaping the root, squashfs
 * verify-then-mount with an overlay, the pre-flight checks of a prepared root, and the image cache.
 * The few syscalls the JDK lacks go through {@link io.chrootbooter.agent.unpack.Syscalls}.
 */
package io.chrootbooter.agent.unpack;
