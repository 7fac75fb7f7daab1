/**
 * Entering a prepared root and returning from it without a reboot (docs/architecture.md §5).
 *
 * <p>A multithreaded JVM cannot {@code unshare(CLONE_NEWNS)} itself, so the final step runs in a
 * helper process: {@code unshare --mount --pid --uts --ipc --fork} running a short busybox {@code
 * sh} step ({@link EnterScript}) that mounts {@code /proc}, {@code /sys}, {@code /dev}, {@code
 * /dev/pts} and {@code /run} in the new root, {@code pivot_root}s into it, detaches the old root
 * and execs the image's init as PID 1 of the new PID namespace. The helper starts inside the
 * target's own cgroup v2 ({@link Cgroup}), so {@code cgroup.kill} ends every process of the target
 * at once, however hostile. {@link TargetSession} owns everything one boot acquired and releases it
 * in reverse order on return.
 */
package io.chrootbooter.agent.pivot;
