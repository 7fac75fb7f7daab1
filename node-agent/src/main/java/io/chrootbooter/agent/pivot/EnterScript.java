package io.chrootbooter.agent.pivot;

import io.chrootbooter.agent.confine.ConfinedMounts;
import io.chrootbooter.protocol.Confinement;
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
 * <p>Before it runs, {@link MountPoints#prepare} has checked and made every path of the root it
 * mounts on, never following a symbolic link. Steps of the script: bind the root onto itself, with
 * the mounts the agent made in it (the kernel modules and firmware, {@code
 * io.chrootbooter.agent.modules}), as pivot_root(2) needs a mount point, mount {@code /proc} and
 * bind the agent's copy of the kernel command line without its {@code cb.*} words read-only over
 * {@code /proc/cmdline} (the machine's token and nonce are not for the target's users), {@code
 * /sys}, cgroup2 on {@code /sys/fs/cgroup} (inside the cgroup namespace its root is the target's
 * own cgroup: systemd builds its tree there), {@code /dev} (devtmpfs, else a recursive bind of the
 * bootstrap's), the target's console over {@code /dev/console} when it is a terminal (systemd and
 * getty write to {@code /dev/console}, not to their stdout), {@code /dev/pts} (a new devpts
 * instance) and {@code /run} (tmpfs) in it, bind the return FIFO to {@code
 * /run/bootstrap-return.fifo} and the helper read-only to {@code /.bootstrap-return}, {@code
 * pivot_root} with the old root parked under the new {@code /run}, detach the old root ({@code
 * umount -l}) (reporting {@code pivoted} on fd 3 in between), report {@code ready} on fd 3 (the
 * agent's pipe) and exec the init.
 *
 * <p>Each mount point of the image is opened inside the new mount namespace, the descriptor checked
 * to be that very path ({@code readlink /proc/self/fd/N}: no symbolic link was followed), and
 * mounted onto through {@code /proc/self/fd/N}. Paths in the bootstrap's devtmpfs, which earlier
 * targets could write, are refused when they are symbolic links. A refused {@code pivot_root} fails
 * the boot: there is no {@code chroot} fallback, under which the target could detach its root and
 * reach the bootstrap's. Any failing step reports {@code error: <step>} on fd 3 and exits 111.
 *
 * <p>For a {@link Confinement#Confined} target the step mounts {@code /sys} read-only, makes {@code
 * /proc/sys} and {@code /proc/sysrq-trigger} read-only and mounts a private tmpfs on {@code /dev}
 * instead of the devtmpfs ({@link ConfinedMounts}, whose shell functions precede the script); it
 * runs with the bounding set and seccomp filter its starter gave it ({@link
 * io.chrootbooter.agent.confine.ConfinedStart}).
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

  /** The line the step prints on fd 3 once {@code pivot_root} is done. */
  public static final String PIVOTED = "pivoted";

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
      root=$1 init=$2 fifo=$3 helper=$4 bb=$5 cgns=$6 cmdline=$7 withhelper=$8 confined=$9
      consoles=${10}
      shift 10
      exec 3>&1 1>&2
      fail() { echo "error: $*" >&3; exit 111; }
      # onto PATH COMMAND...: runs COMMAND with fd 5 open on PATH (relative to the root) once the
      # descriptor is seen to be $root/PATH itself, no symbolic link followed on the way; COMMAND
      # mounts onto /proc/self/fd/5, so what was checked is what is mounted on.
      onto() {
        p=$1
        shift
        { [ "$($bb readlink /proc/self/fd/5)" = "$root/$p" ] \\
            || fail "/$p is not itself in the new root (a symbolic link?); refused"
          "$@"
        } 5<"$p"
      }
      cd "$root" || fail "cd $root"
      $bb mount --rbind "$root" "$root" || fail "mount --rbind $root $root"
      cd "$root" || fail "cd $root"
      onto proc "$bb" mount -t proc -o nosuid,nodev,noexec proc /proc/self/fd/5 \\
        || fail "mount -t proc /proc"
      { $bb mount --bind "$cmdline" proc/cmdline \\
        && $bb mount -o remount,bind,ro proc/cmdline; } || fail "mount /proc/cmdline"
      sysopts=nosuid,nodev,noexec
      if [ "$confined" = yes ]; then
        cb_confined_proc
        sysopts=ro,$sysopts
      fi
      onto sys "$bb" mount -t sysfs -o "$sysopts" sysfs /proc/self/fd/5 \\
        || fail "mount -t sysfs /sys"
      if [ "$cgns" != yes ]; then
        echo "cb-enter: warning: no util-linux unshare: no cgroup namespace for the target;" \\
          "it sees the whole cgroup2 tree"
      fi
      if [ -d sys/fs/cgroup ]; then
        $bb mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 sys/fs/cgroup \\
          || echo "cb-enter: warning: cannot mount cgroup2 on /sys/fs/cgroup"
      fi
      if [ "$confined" = yes ]; then
        cb_private_dev "$@"
      elif ! onto dev "$bb" mount -t devtmpfs -o mode=0755,nosuid devtmpfs /proc/self/fd/5 \\
        2>/dev/null; then
        onto dev "$bb" mount --rbind /dev /proc/self/fd/5 || fail "mount /dev"
      fi
      # The devtmpfs is the bootstrap's own: whatever an earlier target left in it is not
      # followed. A symbolic link at /dev/console or /dev/pts is refused.
      console=$($bb readlink /proc/self/fd/0)
      if [ -c "$console" ] && [ ! -L dev/console ] && [ -c dev/console ]; then
        $bb mount --bind "$console" dev/console || fail "mount --bind $console /dev/console"
      fi
      # Console relay hook (ConsoleHook): $consoles holds NAME:SLAVE words (checked by
      # EnterScript.consoleWords); each pty slave the agent relays is bound over /dev/NAME when
      # that is a device node of the target's /dev.
      for bind in $consoles; do
        name=${bind%%:*} slave=${bind#*:}
        [ -L "dev/$name" ] && fail "/dev/$name is a symbolic link; refused"
        if [ -c "dev/$name" ]; then
          $bb mount --bind "$slave" "dev/$name" || fail "mount --bind $slave /dev/$name"
        fi
      done
      [ -L dev/pts ] && fail "/dev/pts is a symbolic link; refused"
      [ -d dev/pts ] || $bb mkdir dev/pts || fail "mkdir /dev/pts"
      onto dev/pts "$bb" mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts \\
        /proc/self/fd/5 || fail "mount -t devpts /dev/pts"
      onto run "$bb" mount -t tmpfs -o mode=0755,nosuid,nodev cb-run /proc/self/fd/5 \\
        || fail "mount -t tmpfs /run"
      { : > run/bootstrap-return.fifo && $bb mount --bind "$fifo" run/bootstrap-return.fifo; } \\
        || fail "mount --bind $fifo /run/bootstrap-return.fifo"
      if [ "$withhelper" = yes ]; then
        { onto .bootstrap-return "$bb" mount --bind "$helper" /proc/self/fd/5 \\
          && $bb mount -o remount,bind,ro .bootstrap-return; } || fail "mount /.bootstrap-return"
      else
        echo "cb-enter: warning: the root is read-only; no /.bootstrap-return helper"
      fi
      $bb mkdir run/.cb-oldroot || fail "mkdir /run/.cb-oldroot"
      # No chroot fallback: a target never runs with the bootstrap's root still in its namespace.
      $bb pivot_root . run/.cb-oldroot \\
        || fail "pivot_root refused (a bootstrap still on the initramfs rootfs cannot enter" \\
          "an image: see /init's message); the target is not entered"
      cd / || fail "cd /"
      echo pivoted >&3
      "/run/.cb-oldroot$bb" umount -l /run/.cb-oldroot || fail "umount -l old root"
      echo ready >&3
      exec 3>&-
      exec "$init"
      exit 111
      """;

  private EnterScript() {}

  /**
   * The whole command line of the helper process, to be started in {@code cgroup}'s supervisor.
   *
   * @param root the new root, without symbolic links in its path ({@link Path#toRealPath})
   * @param helper the helper script to bind onto {@code /.bootstrap-return}; empty for none (a
   *     read-only root without the file)
   * @param cmdline the kernel command line the target sees at {@code /proc/cmdline}
   * @param targetCgroup the cgroup the namespace's PID 1 moves into ({@link Cgroup#dir})
   * @param cgroupUnshare a util-linux {@code unshare} ({@link #findCgroupUnshare}); empty for no
   *     cgroup namespace
   */
  public static List<String> command(
      Path busybox,
      Path root,
      String init,
      Path fifo,
      Optional<Path> helper,
      Path cmdline,
      Path targetCgroup,
      Optional<Path> cgroupUnshare) {
    return command(
        busybox,
        root,
        init,
        fifo,
        helper,
        cmdline,
        targetCgroup,
        cgroupUnshare,
        Confinement.Machine,
        List.of());
  }

  /**
   * As {@link #command(Path, Path, String, Path, Optional, Path, Path, Optional)}, for a target
   * with {@code confinement}; a {@link Confinement#Confined} one gets a private {@code /dev} with
   * {@code devices} ({@link ConfinedMounts}). The bounding set and the seccomp filter are the
   * caller's ({@link io.chrootbooter.agent.confine.ConfinedStart}).
   */
  public static List<String> command(
      Path busybox,
      Path root,
      String init,
      Path fifo,
      Optional<Path> helper,
      Path cmdline,
      Path targetCgroup,
      Optional<Path> cgroupUnshare,
      Confinement confinement,
      List<String> devices) {
    return command(
        busybox,
        root,
        init,
        fifo,
        helper,
        cmdline,
        targetCgroup,
        cgroupUnshare,
        confinement,
        devices,
        Map.of());
  }

  /**
   * As {@link #command(Path, Path, String, Path, Optional, Path, Path, Optional, Confinement,
   * List)}, with {@code consoleBinds}: device names under the target's {@code /dev} ({@code ttyS0})
   * and the pty slave bound over each, a console relay's ({@link ConsoleHook}).
   *
   * @throws IllegalArgumentException for a name that is no plain device name, or a slave that is
   *     not a {@code /dev/pts/N}
   */
  public static List<String> command(
      Path busybox,
      Path root,
      String init,
      Path fifo,
      Optional<Path> helper,
      Path cmdline,
      Path targetCgroup,
      Optional<Path> cgroupUnshare,
      Confinement confinement,
      List<String> devices,
      Map<String, Path> consoleBinds) {
    return build(
        busybox,
        root,
        init,
        fifo,
        helper,
        cmdline,
        Objects.requireNonNull(targetCgroup),
        cgroupUnshare,
        confinement,
        devices,
        consoleBinds);
  }

  /**
   * The enter step's {@code consoles} parameter: {@code NAME:SLAVE} words separated by spaces, in
   * the order of the names. Checked here so that the script may split it into words.
   */
  static String consoleWords(Map<String, Path> consoleBinds) {
    StringBuilder words = new StringBuilder();
    for (Map.Entry<String, Path> bind : new TreeMap<>(consoleBinds).entrySet()) {
      String slave = bind.getValue().toString();
      if (!bind.getKey().matches("[A-Za-z][A-Za-z0-9]{0,31}")) {
        throw new IllegalArgumentException(
            "console device name \"" + bind.getKey() + "\" is not a device name such as ttyS0");
      }
      if (!slave.matches("/dev/pts/[0-9]{1,9}")) {
        throw new IllegalArgumentException(
            "console relay slave \"" + slave + "\" is not a pty slave /dev/pts/N");
      }
      words.append(words.length() > 0 ? " " : "").append(bind.getKey()).append(':').append(slave);
    }
    return words.toString();
  }

  /**
   * The enter step without a cgroup step: the namespace's PID 1 stays in the cgroup the helper was
   * started in, and there is no cgroup namespace.
   */
  public static List<String> command(
      Path busybox, Path root, String init, Path fifo, Optional<Path> helper, Path cmdline) {
    return command(busybox, root, init, fifo, helper, cmdline, Confinement.Machine, List.of());
  }

  /** The enter step without a cgroup step, for a target with {@code confinement}. */
  public static List<String> command(
      Path busybox,
      Path root,
      String init,
      Path fifo,
      Optional<Path> helper,
      Path cmdline,
      Confinement confinement,
      List<String> devices) {
    return build(
        busybox,
        root,
        init,
        fifo,
        helper,
        cmdline,
        null,
        Optional.empty(),
        confinement,
        devices,
        Map.of());
  }

  private static List<String> build(
      Path busybox,
      Path root,
      String init,
      Path fifo,
      Optional<Path> helper,
      Path cmdline,
      Path targetCgroup,
      Optional<Path> cgroupUnshare,
      Confinement confinement,
      List<String> devices,
      Map<String, Path> consoleBinds) {
    boolean confined = confinement == Confinement.Confined;
    String consoles = consoleWords(consoleBinds);
    List<String> checkedDevices = confined ? ConfinedMounts.checkDevices(devices) : List.of();
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
            ConfinedMounts.FUNCTIONS + SCRIPT,
            "cb-enter",
            root.toString(),
            init,
            fifo.toString(),
            helper.map(Path::toString).orElse(""),
            bb,
            cgroupNamespace ? "yes" : "no",
            cmdline.toString(),
            helper.isPresent() ? "yes" : "no",
            confined ? "yes" : "no",
            consoles));
    command.addAll(checkedDevices);
    return List.copyOf(command);
  }

  /**
   * The kernel command line as the target sees it: {@code cmdline} without its {@code cb.*} and
   * {@code cb_*} words (the machine's token, the operator's address, the boot nonce), which are the
   * bootstrap's business only. Double quotes group a word as the kernel reads them.
   */
  public static String targetCommandLine(String cmdline) {
    StringBuilder out = new StringBuilder();
    int i = 0;
    int n = cmdline.length();
    while (i < n) {
      while (i < n && Character.isWhitespace(cmdline.charAt(i))) {
        i++;
      }
      int start = i;
      boolean quoted = false;
      while (i < n && (quoted || !Character.isWhitespace(cmdline.charAt(i)))) {
        if (cmdline.charAt(i) == '"') {
          quoted = !quoted;
        }
        i++;
      }
      String word = cmdline.substring(start, i);
      String key = word.replace("\"", "");
      if (word.isEmpty() || key.startsWith("cb.") || key.startsWith("cb_")) {
        continue;
      }
      if (out.length() > 0) {
        out.append(' ');
      }
      out.append(word);
    }
    return out.append('\n').toString();
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
