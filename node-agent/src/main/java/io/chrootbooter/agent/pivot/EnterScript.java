package io.chrootbooter.agent.pivot;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The helper step that enters a target: {@code busybox unshare --mount --pid --uts --ipc --fork
 * --propagation private}, whose child (PID 1 of a fresh PID namespace, in a private mount
 * namespace) moves itself from the supervisor child into the target's cgroup, makes that cgroup the
 * root of a new cgroup namespace ({@code unshare --cgroup} from util-linux: busybox's {@code
 * unshare} has no {@code --cgroup}), and runs a busybox {@code sh} script. Paths travel as
 * positional parameters, never spliced into the script text.
 *
 * <p>Steps of the script: bind the root onto itself (pivot_root(2) needs a mount point), mount
 * {@code /proc}, {@code /sys}, cgroup2 on {@code /sys/fs/cgroup} (inside the cgroup namespace its
 * root is the target's own cgroup: systemd builds its tree there), {@code /dev} (devtmpfs, else a
 * recursive bind of the bootstrap's), the target's console over {@code /dev/console} when it is a
 * terminal (systemd and getty write to {@code /dev/console}, not to their stdout), {@code /dev/pts}
 * (a new devpts instance) and {@code /run} (tmpfs) in it, bind the return FIFO to {@code
 * /run/bootstrap-return.fifo} and the helper read-only to {@code /.bootstrap-return}, {@code
 * pivot_root} with the old root parked under the new {@code /run}, detach the old root ({@code
 * umount -l}), report {@code ready} on fd 3 (the agent's pipe) and exec the init. When pivot_root
 * is refused (EINVAL: the bootstrap still runs from the initramfs rootfs), it falls back to {@code
 * mount --move . /} + {@code chroot} as switch_root(8) does. Any failing step reports {@code error:
 * <step>} on fd 3 and exits 111.
 *
 * <p>Without a util-linux {@code unshare} the target gets no cgroup namespace: it still runs in its
 * own cgroup, but sees the whole cgroup2 tree at {@code /sys/fs/cgroup} (a warning on the console
 * says so); systemd then manages the subtree of its own cgroup.
 *
 * <p>The init's environment is {@link #initEnvironment}, not the agent's (which holds the machine
 * token): see there for {@code container=chrootbooter}.
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

  /**
   * The value of {@code container} in the init's environment. Every target shares the machine's
   * kernel with the bootstrap, so the init is told it runs in a container: systemd then reports
   * {@code container-other} (systemd-detect-virt), skips units conditioned on hardware of its own
   * ({@code ConditionVirtualization=!container}), and its final shutdown step neither unmounts nor
   * swaps off, nor detaches the machine's loop, device-mapper and MD devices (which, without it,
   * would include the bootstrap's own loop device and swap). What stays "as if installed": the
   * image's own units, its network configuration (the network namespace is the machine's), sysctls
   * and mounts. Other inits ignore the variable.
   */
  public static final String CONTAINER = "chrootbooter";

  /**
   * Where a util-linux {@code unshare} is looked for, in this order; the first is the bootstrap's.
   */
  static final List<Path> CGROUP_UNSHARE_CANDIDATES =
      List.of(
          Path.of("/usr/libexec/chrootbooter/unshare"),
          Path.of("/usr/bin/unshare"),
          Path.of("/bin/unshare"),
          Path.of("/usr/sbin/unshare"),
          Path.of("/sbin/unshare"));

  /**
   * The first stage inside the new PID namespace: join the target's cgroup ($1; "0" is the writer
   * itself), then exec the rest ($2...), which starts with {@code unshare --cgroup} when there is
   * one. Errors go to stdout, which is still the agent's pipe here.
   */
  static final String JOIN =
      """
      echo 0 > "$1/cgroup.procs" || { echo "error: cannot join the cgroup $1"; exit 111; }
      shift
      exec "$@"
      echo "error: cannot exec $1"
      exit 111
      """;

  static final String SCRIPT =
      """
      root=$1 init=$2 fifo=$3 helper=$4 bb=$5 cgns=$6
      exec 3>&1 1>&2
      fail() { echo "error: $*" >&3; exit 111; }
      cd "$root" || fail "cd $root"
      $bb mount --bind "$root" "$root" || fail "mount --bind $root $root"
      cd "$root" || fail "cd $root"
      for d in proc sys dev run; do [ -d $d ] || $bb mkdir -p $d || fail "mkdir /$d"; done
      $bb mount -t proc -o nosuid,nodev,noexec proc proc || fail "mount -t proc /proc"
      $bb mount -t sysfs -o nosuid,nodev,noexec sysfs sys || fail "mount -t sysfs /sys"
      if [ "$cgns" != yes ]; then
        echo "cb-enter: warning: no util-linux unshare: no cgroup namespace for the target;" \\
          "it sees the whole cgroup2 tree"
      fi
      if [ -d sys/fs/cgroup ]; then
        $bb mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 sys/fs/cgroup \\
          || echo "cb-enter: warning: cannot mount cgroup2 on /sys/fs/cgroup"
      fi
      $bb mount -t devtmpfs -o mode=0755,nosuid devtmpfs dev 2>/dev/null \\
        || $bb mount --rbind /dev dev || fail "mount /dev"
      console=$($bb readlink /proc/self/fd/0)
      if [ -c "$console" ] && [ -c dev/console ]; then
        $bb mount --bind "$console" dev/console || fail "mount --bind $console /dev/console"
      fi
      [ -d dev/pts ] || $bb mkdir dev/pts || fail "mkdir /dev/pts"
      $bb mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts dev/pts \\
        || fail "mount -t devpts /dev/pts"
      $bb mount -t tmpfs -o mode=0755,nosuid,nodev cb-run run || fail "mount -t tmpfs /run"
      { : > run/bootstrap-return.fifo && $bb mount --bind "$fifo" run/bootstrap-return.fifo; } \\
        || fail "mount --bind $fifo /run/bootstrap-return.fifo"
      if { [ -f .bootstrap-return ] || : > .bootstrap-return; } 2>/dev/null; then
        { $bb mount --bind "$helper" .bootstrap-return \\
          && $bb mount -o remount,bind,ro .bootstrap-return; } || fail "mount /.bootstrap-return"
      else
        echo "cb-enter: warning: the root is read-only; no /.bootstrap-return helper"
      fi
      $bb mkdir run/.cb-oldroot || fail "mkdir /run/.cb-oldroot"
      if $bb pivot_root . run/.cb-oldroot 2>/dev/null; then
        cd / || fail "cd /"
        "/run/.cb-oldroot$bb" umount -l /run/.cb-oldroot || fail "umount -l old root"
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

  /**
   * The whole command line of the helper process, to be started in {@code cgroup}'s supervisor.
   *
   * @param targetCgroup the cgroup the namespace's PID 1 moves into ({@link Cgroup#dir})
   * @param cgroupUnshare a util-linux {@code unshare} ({@link #findCgroupUnshare}); empty for no
   *     cgroup namespace
   */
  public static List<String> command(
      Path busybox,
      Path root,
      String init,
      Path fifo,
      Path helper,
      Path targetCgroup,
      Optional<Path> cgroupUnshare) {
    return build(
        busybox, root, init, fifo, helper, Objects.requireNonNull(targetCgroup), cgroupUnshare);
  }

  /**
   * The enter step without a cgroup step: the namespace's PID 1 stays in the cgroup the helper was
   * started in, and there is no cgroup namespace.
   */
  public static List<String> command(Path busybox, Path root, String init, Path fifo, Path helper) {
    return build(busybox, root, init, fifo, helper, null, Optional.empty());
  }

  private static List<String> build(
      Path busybox,
      Path root,
      String init,
      Path fifo,
      Path helper,
      Path targetCgroup,
      Optional<Path> cgroupUnshare) {
    String bb = busybox.toString();
    List<String> command = new ArrayList<>();
    command.addAll(
        List.of(
            bb,
            "unshare",
            "--mount",
            "--pid",
            "--uts",
            "--ipc",
            "--fork",
            "--propagation",
            "private"));
    boolean cgroupNamespace = false;
    if (targetCgroup != null) {
      command.addAll(List.of(bb, "sh", "-c", JOIN, "cb-join", targetCgroup.toString()));
      if (cgroupUnshare.isPresent()) {
        command.addAll(List.of(cgroupUnshare.get().toString(), "--cgroup"));
        cgroupNamespace = true;
      }
    }
    command.addAll(
        List.of(
            bb,
            "sh",
            "-c",
            SCRIPT,
            "cb-enter",
            root.toString(),
            init,
            fifo.toString(),
            helper.toString(),
            bb,
            cgroupNamespace ? "yes" : "no"));
    return List.copyOf(command);
  }

  /**
   * The environment the target's init starts with: {@code PATH}, {@code container=}{@link
   * #CONTAINER}, and {@code TERM} when the agent has one (it describes the bootstrap console, which
   * is the target's). Nothing else of the agent's environment reaches the target.
   */
  public static Map<String, String> initEnvironment(Map<String, String> agentEnvironment) {
    Map<String, String> env = new TreeMap<>();
    env.put("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    env.put("container", CONTAINER);
    String term = agentEnvironment.get("TERM");
    if (term != null && term.matches("[A-Za-z0-9._+-]{1,64}")) {
      env.put("TERM", term);
    }
    return Map.copyOf(env);
  }

  /**
   * A util-linux {@code unshare} that can make a cgroup namespace: the first of {@link
   * #CGROUP_UNSHARE_CANDIDATES} that is executable, is not {@code busybox} (whose applet lacks
   * {@code --cgroup}) and names util-linux in its binary. Looked up once per agent.
   */
  public static Optional<Path> findCgroupUnshare(Path busybox) {
    for (Path candidate : CGROUP_UNSHARE_CANDIDATES) {
      try {
        if (!Files.isExecutable(candidate)
            || (Files.exists(busybox) && Files.isSameFile(candidate, busybox))
            || Files.size(candidate) > 16L << 20) {
          continue;
        }
        byte[] binary = Files.readAllBytes(candidate);
        if (contains(binary, "util-linux") && contains(binary, "cgroup")) {
          return Optional.of(candidate);
        }
      } catch (IOException e) {
        // unreadable: not a candidate
      }
    }
    return Optional.empty();
  }

  private static boolean contains(byte[] haystack, String needle) {
    byte[] n = needle.getBytes(StandardCharsets.US_ASCII);
    outer:
    for (int i = 0; i + n.length <= haystack.length; i++) {
      for (int j = 0; j < n.length; j++) {
        if (haystack[i + j] != n[j]) {
          continue outer;
        }
      }
      return true;
    }
    return false;
  }

  /**
   * The in-target helper: {@code /.bootstrap-return [reason]} asks for a return, {@code
   * /.bootstrap-return --healthy} reports the boot healthy. It only writes one line to the FIFO;
   * the agent decides.
   */
  public static String helperScript() {
    return """
        #!/bin/sh
        # Chroot Booter: ask the bootstrap agent to take this machine back.
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
