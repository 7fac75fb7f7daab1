/**
 * From image bytes to a root filesystem: format sniffing, tar extraction while downloading (xz by
 * liblzma or tukaani, zstd-jni, and the project's own {@link
 * io.chrootbooter.agent.unpack.TarReader}) that refuses any entry escaping the root, squashfs
 * verify-then-mount with an overlay, the pre-flight checks of a prepared root, and the image cache.
 * The few syscalls the JDK lacks go through {@link io.chrootbooter.agent.sys.Syscalls}.
 *
 * <p>Why an own tar reader: an image is whatever GNU tar (or bsdtar) wrote, and must extract as GNU
 * tar extracts it. commons-compress 1.28 refuses archives GNU tar 1.34 writes and reads: it parses
 * the old GNU {@code realsize} field as octal only, so a sparse file of 8 GiB or more (base-256
 * there) is a "Corrupted TAR archive", and parses {@code GNU.sparse.size} and {@code
 * GNU.sparse.realsize} as {@code int}, so a pax sparse file over 2 GiB fails with "Unable to parse
 * int from string value"; it decodes every pax value as UTF-8, which destroys binary xattrs such as
 * {@code security.capability}; and it reads pax and long-name records into memory whatever their
 * size, where the agent has a 48 MiB heap. Working around each of these from outside took more code
 * than reading the format (GNU tar's {@code from_header}, {@code tar_checksum}, pax records and its
 * four sparse maps), and the reader now bounds every header before reading it.
 *
 * <p>Why an own binding of liblzma ({@link io.chrootbooter.agent.unpack.LiblzmaInputStream}): under
 * QEMU's TCG the agent runs C1 only, and tukaani's Java decoder then runs C1's code; XZ Utils' C
 * decoder does not depend on the JIT. The Java wrappers of liblzma bring a JNI build of their own
 * into the initramfs; the system's liblzma and the JNA the agent already uses need four functions
 * bound. tukaani stays the fallback ({@link io.chrootbooter.agent.unpack.XzEngine}).
 */
package io.chrootbooter.agent.unpack;
