package io.chrootbooter.agent.pivot;

import java.nio.file.Path;
import java.util.List;

/**
 * The helper step that enters a target: a busybox {@code sh} script run by {@code busybox unshare
 * --mount --pid --uts --ipc --fork --propagation private}, i.e. as PID 1 of a fresh PID namespace
 * in a private mount namespace. Paths travel as positional parameters, never spliced into the
 * script text.
 *
 * <p>Steps: bind the root onto itself (pivot_root(2) needs a mount point), mount {@code /proc},
 * {@code /sys}, {@code /dev} (devtmpfs, else a recursive bind of the bootstrap's), {@code /dev/pts}
 * (a new devpts instance) and {@code /run} (tmpfs) in it, bind the return FIFO to {@code
 * /run/bootstrap-return.fifo} and the helper read-only to {@code /.bootstrap-return}, {@code
 * pivot_root} with the old root parked under the new {@code /run}, detach the old root ({@code
 * umount -l}), report {@code ready} on fd 3 (the agent's pipe) and exec the init. When pivot_root
 * is refused (EINVAL: the bootstrap still runs from the initramfs rootfs), it falls back to {@code
 * mount --move . /} + {@code chroot} as switch_root(8) does. Any failing step reports {@code error:
 * <step>} on fd 3 and exits 111.
 */
public final class EnterScript {
  /** The line the step prints on fd 3 just before exec'ing the init. */
  public static final String READY = "ready";

  /** Exit status of a failed step. */
  public static final int FAILED = 111;

  /** Where the return FIFO appears inside the target. */
  public static final String FIFO_IN_TARGET = "/run/bootstrap-return.fifo";

  /** Where the helper appears inside the target. */
  public static final String HELPER_IN_TARGET = "/.bootstrap-return";

  static final String SCRIPT =
      """
      root=$1 init=$2 fifo=$3 helper=$4 bb=$5
      exec 3>&1 1>&2
      fail() { echo "error: $*" >&3; exit 111; }
      cd "$root" || fail "cd $root"
      $bb mount --bind "$root" "$root" || fail "mount --bind $root $root"
      cd "$root" || fail "cd $root"
      for d in proc sys dev run; do [ -d $d ] || $bb mkdir -p $d || fail "mkdir /$d"; done
      $bb mount -t proc -o nosuid,nodev,noexec proc proc || fail "mount -t proc /proc"
      $bb mount -t sysfs -o nosuid,nodev,noexec sysfs sys || fail "mount -t sysfs /sys"
      $bb mount -t devtmpfs -o mode=0755,nosuid devtmpfs dev 2>/dev/null \\
        || $bb mount --rbind /dev dev || fail "mount /dev"
      [ -d dev/pts ] || $bb mkdir dev/pts || fail "mkdir /dev/pts"
      $bb mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts dev/pts \\
        || fail "mount -t devpts /dev/pts"
      $bb mount -t tmpfs -o mode=0755,nosuid,nodev cb-run run || fail "mount -t tmpfs /run"
      : > run/bootstrap-return.fifo && $bb mount --bind "$fifo" run/bootstrap-return.fifo \\
        || fail "mount --bind $fifo /run/bootstrap-return.fifo"
      if { [ -f .bootstrap-return ] || : > .bootstrap-return; } 2>/dev/null; then
        $bb mount --bind "$helper" .bootstrap-return \\
          && $bb mount -o remount,bind,ro .bootstrap-return || fail "mount /.bootstrap-return"
      else
        echo "cb-enter: warning: the root is read-only; no /.bootstrap-return helper"
      fi
      $bb mkdir run/.cb-oldroot || fail "mkdir /run/.cb-oldroot"
      if $bb pivot_root . run/.cb-oldroot 2>/dev/null; then
        cd / || fail "cd /"
        /run/.cb-oldroot$bb umount -l /run/.cb-oldroot || fail "umount -l old root"
        echo ready >&3
        exec 3>&-
        exec "$init"
        exit 111
      fi
      echo "cb-enter: warning: pivot_root refused; mount --move + chroot instead"
      $bb mount --move . / || fail "mount --move . /"
      echo ready >&3
      exec 3>&-
      exec $bb chroot . "$init"
      """;

  private EnterScript() {}

  /** The whole command line of the helper process. */
  public static List<String> command(Path busybox, Path root, String init, Path fifo, Path helper) {
    String bb = busybox.toString();
    return List.of(
        bb,
        "unshare",
        "--mount",
        "--pid",
        "--uts",
        "--ipc",
        "--fork",
        "--propagation",
        "private",
        bb,
        "sh",
        "-c",
        SCRIPT,
        "cb-enter",
        root.toString(),
        init,
        fifo.toString(),
        helper.toString(),
        bb);
  }

  /**
   * The in-target helper: {@code /.bootstrap-return [reason]} asks for a return, {@code
   * /.bootstrap-return --healthy} reports the boot healthy. It only writes one line to the FIFO;
   * the agent decides.
   */
  public static String helperScript() {
    return """
        #!/bin/sh
        # Chroot Booter: ask the bootstrap agent to take this machine back (issue 4).
        # Usage: /.bootstrap-return [reason]     return to the bootstrap
        #        /.bootstrap-return --healthy    report that this system booted
        fifo=%s
        if [ "$1" = --healthy ]; then
          echo healthy > "$fifo"
        else
          reason=$(echo "$*" | tr -c 'A-Za-z0-9 ._:/=+-' ' ' | cut -c1-200)
          echo "return ${reason:-requested from inside the target}" > "$fifo"
        fi
        """
        .formatted(FIFO_IN_TARGET);
  }
}
