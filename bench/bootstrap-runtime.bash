# shellcheck shell=bash disable=SC2034 # boot_* are for the scripts that source this
# The node agent as the bootstrap starts it, for the benchmarks that time the agent
# (download.sh, switch.sh, return.sh); sourced, not run.
#
# From a bootstrap build (node-agent/src/bootstrap/build.sh, or mvn -Pbootstrap: its output
# initramfs.img and agent-cache.img; BENCH_BOOTSTRAP names another output folder) it unpacks both
# initrds into one root, as the kernel does at boot, and runs the agent inside that root
# (chroot, in a private mount namespace): the jlink'ed runtime /opt/java with the libraries the
# initramfs ships (glibc, libcrypto, liblzma), the agent's jars in /opt/agent, the JVM flags of
# the initramfs's /etc/chrootbooter/agent.conf (heap limit included) and its environment, the
# class archive (a Java 25 AOT cache or Java 17's CDS archives) when agent-cache.img's key and
# digests match as the launcher checks them, and -XX:TieredStopAtLevel=1 where the initramfs's
# jit-mode says c1 on this machine (CB_JIT=c1|tiered overrides it, as cb.jit= does at boot).
# /proc, /dev and /sys of the host and the folders the benchmark names are bound into the root;
# everything mounted there, and everything the agent mounts, ends with the namespace.
#
# Without a bootstrap build, the agent runs on the host's JDK from target/quarkus-app with the
# flags of build.sh (BENCH_JAVA, default java), and every benchmark says so: those figures are not
# what machines run.
#
#   bootstrap_runtime NAME WORK [BIND...]
#       Prepares WORK/bootstrap and defines boot_agent (the launcher: boot_agent ARGS... runs the
#       agent; AGENT_JVM_FLAGS replaces its JVM flags for one call; with BOOT_MOUNTINFO=FILE it
#       writes the mount table of the agent's namespace to FILE.before and FILE.after, around the
#       agent's run, since its mounts end with that namespace), boot_flags (the JVM flags the
#       bootstrap uses here), boot_flags_c1 (the same C1 only), boot_runtime (what runs it, one
#       line). BINDs are folders the agent must see at the same path (WORK is always bound).

# bootstrap_runtime NAME WORK [BIND...]
bootstrap_runtime() {
  local name=$1 work=$2
  shift 2
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  local out=${BENCH_BOOTSTRAP:-$here/node-agent/target/bootstrap}
  local dir="$work/bootstrap"
  mkdir -p "$dir"
  if [ -f "$out/initramfs.img" ]; then
    _boot_from_build "$name" "$out" "$dir" "$work" "$@"
  else
    _boot_from_host "$name" "$out" "$dir" "$here"
  fi
  echo "# $name: the agent runs on $boot_runtime" >&2
  echo "# $name: agent JVM flags: $boot_flags" >&2
}

# An initrd's bytes, whatever the build compressed it with (lz4 legacy, zstd, xz, none), ends
# padded with zeros (build.sh's pad4).
_boot_decompress() {
  local magic
  magic=$(head -c 6 "$1" | od -An -tx1 | tr -d ' \n')
  case "$magic" in
    02214c18*) lz4 -dc "$1" 2>/dev/null ;; # the zeros after the legacy frame: "Error 54"
    28b52ffd*) zstd -dcq "$1" ;;
    fd377a585a00) xz -dcq "$1" ;;
    *) cat "$1" ;;
  esac
}

_boot_from_build() {
  local name=$1 out=$2 dir=$3 work=$4
  shift 4
  local root="$dir/root" f
  for f in initramfs.img agent-cache.img; do
    [ -f "$out/$f" ] || { echo "bench/$name: $out/$f missing: an incomplete bootstrap build" >&2; exit 2; }
  done
  # The two initrds into one root, the second on top, as the kernel unpacks them.
  rm -rf "$root"
  mkdir -p "$root"
  for f in initramfs.img agent-cache.img; do
    _boot_decompress "$out/$f" | (cd "$root" && cpio -idm --quiet --no-absolute-filenames 2>/dev/null) || true
  done
  if [ ! -x "$root/opt/java/bin/java" ] || [ ! -f "$root/etc/chrootbooter/agent.conf" ]; then
    echo "bench/$name: $out/initramfs.img holds no /opt/java or agent.conf" >&2; exit 2
  fi
  # agent.conf's flags and the archive flags, read as the launcher reads them.
  local conf
  # shellcheck disable=SC1091,SC2153 # the build's agent.conf assigns them
  conf=$(. "$root/etc/chrootbooter/agent.conf" && printf '%s\n%s\n%s\n' "$JVM_FLAGS" "$ARCHIVE_FLAGS" "$AGENT_CACHE")
  local jvm_flags archive_flags cache
  jvm_flags=$(sed -n 1p <<<"$conf")
  archive_flags=$(sed -n 2p <<<"$conf")
  cache=$(sed -n 3p <<<"$conf")
  local archive="no class archive"
  if [ -f "$root$cache/key" ] && [ "$(cat "$root$cache/key")" = "$(cat "$root/etc/chrootbooter/agent-cache.key" 2>/dev/null)" ] &&
      (cd "$root$cache" && sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1); then
    jvm_flags="$jvm_flags $archive_flags"
    archive="class archive $(cat "$root$cache/key")"
  else
    echo "# $name: agent-cache.img of $out does not verify against its initramfs: the agent starts without its class archive, as the launcher would" >&2
  fi
  # The JIT mode this machine gets at boot (the initramfs's own jit-mode).
  [ -e /dev/cpu/0/cpuid ] || modprobe cpuid 2>/dev/null || true
  local jit
  jit=$(sh "$root/usr/libexec/chrootbooter/jit-mode")
  echo "# $name: JIT ${jit%% *} (${jit#* }; the initramfs's jit-mode on this machine)" >&2
  boot_flags_c1="-XX:TieredStopAtLevel=1 $jvm_flags"
  if [ "${jit%% *}" = c1 ]; then boot_flags=$boot_flags_c1; else boot_flags=$jvm_flags; fi
  boot_runtime="$(sed -n 's/^java=//p' "$root/etc/chrootbooter/build-info") from $out/initramfs.img ($archive), in a chroot of it"
  # The launcher: a private mount namespace, the host's /proc /dev /sys and the bound folders,
  # a fresh /tmp and /run, agent.conf's environment, the JVM from the root, the caller's folder
  # (/ where the root has no such folder: give the agent absolute paths).
  local binds="$work" b
  for b in "$@"; do binds="$binds $b"; done
  cat > "$dir/agent" <<LAUNCHER
#!/bin/sh
# The node agent in $root, as the bootstrap starts it (bench/bootstrap-runtime.bash).
flags=\${AGENT_JVM_FLAGS:-$boot_flags}
exec unshare -m --propagation private sh -c '
  root=\$1 flags=\$2 cwd=\$3; shift 3
  # The root a mount point of its own, as /init makes it: what unshare --propagation and
  # pivot_root need of a target started from it.
  mount --bind "\$root" "\$root" || exit 125
  mount --rbind /proc "\$root/proc" && mount --rbind /dev "\$root/dev" && mount --rbind /sys "\$root/sys" &&
  mount -t tmpfs tmpfs "\$root/tmp" && mount -t tmpfs -o mode=0755 run "\$root/run" || exit 125
  # The network is up: what rc.sysinit says to an agent waiting for it (agent.conf).
  mkdir -p "\$root/run/bootstrap" && touch "\$root/run/bootstrap/network-ready" || exit 125
  for d in $binds; do mkdir -p "\$root\$d" && mount --rbind "\$d" "\$root\$d" || exit 125; done
  set -- /bin/sh -c ". /etc/chrootbooter/agent.conf; { cd \"\\\$0\" 2>/dev/null || cd /; }; exec /opt/java/bin/java \$flags -jar /opt/agent/quarkus-run.jar \"\\\$@\"" "\$cwd" "\$@"
  [ -n "\$BOOT_MOUNTINFO" ] || exec chroot "\$root" "\$@"
  # The namespace ends with the agent, and its mounts with it: BOOT_MOUNTINFO gets the
  # mount table of the namespace before the agent starts and after it ends, for leak checks.
  # (No apostrophes in this single-quoted script.)
  cat /proc/self/mountinfo > "\$BOOT_MOUNTINFO.before"
  chroot "\$root" "\$@"; rc=\$?
  cat /proc/self/mountinfo > "\$BOOT_MOUNTINFO.after"
  exit \$rc
' sh "$root" "\$flags" "\$PWD" "\$@"
LAUNCHER
  chmod 755 "$dir/agent"
  boot_agent="$dir/agent"
  # The archive must map with these flags: -XX:AOTMode=on / -Xshare:on fail where it does not.
  if [ "$archive" != "no class archive" ]; then
    local strict=-Xshare:on
    case "$archive_flags" in *AOTCache*) strict=-XX:AOTMode=on ;; esac
    if ! (cd "$work" && AGENT_JVM_FLAGS="$boot_flags $strict" "$boot_agent" --help) >/dev/null 2>"$dir/check.err"; then
      cat "$dir/check.err" >&2
      echo "bench/$name: the class archive of $out does not map with the bootstrap's flags ($strict)" >&2
      exit 2
    fi
  fi
}

_boot_from_host() {
  local name=$1 out=$2 dir=$3 here=$4
  local jar="$here/node-agent/target/quarkus-app/quarkus-run.jar"
  [ -f "$jar" ] || { echo "bench/$name: no bootstrap build at $out and no $jar: build with mvn -B -q -pl node-agent -am package -DskipTests" >&2; exit 2; }
  echo "# $name: NO BOOTSTRAP BUILD at $out (node-agent/src/bootstrap/build.sh --app node-agent/target/quarkus-app --out node-agent/target/bootstrap, or BENCH_BOOTSTRAP=<its output>): the agent runs on the host's JDK with build.sh's flags, which is not what machines run" >&2
  local flags
  flags=$(CB_AGENT_XMX=48m bash -c "$(grep '^jvm_flags=' "$here/node-agent/src/bootstrap/build.sh"); echo \"\$jvm_flags\"")
  flags=${flags/-XX:TieredStopAtLevel=1 /}
  [ -e /dev/cpu/0/cpuid ] || modprobe cpuid 2>/dev/null || true
  local jit
  jit=$(sh "$here/node-agent/src/bootstrap/jit-mode")
  echo "# $name: JIT ${jit%% *} (${jit#* }; src/bootstrap/jit-mode on this machine)" >&2
  boot_flags_c1="-XX:TieredStopAtLevel=1 $flags"
  if [ "${jit%% *}" = c1 ]; then boot_flags=$boot_flags_c1; else boot_flags=$flags; fi
  local java=${BENCH_JAVA:-java}
  boot_runtime="the host's $("$java" -version 2>&1 | sed -n 2p) ($java), $jar"
  cat > "$dir/agent" <<LAUNCHER
#!/bin/sh
# The node agent on the host's JDK (no bootstrap build; bench/bootstrap-runtime.bash).
flags=\${AGENT_JVM_FLAGS:-$boot_flags}
export MALLOC_ARENA_MAX=2
# shellcheck disable=SC2086 # a word list
exec $java \$flags -jar $jar "\$@"
LAUNCHER
  chmod 755 "$dir/agent"
  boot_agent="$dir/agent"
}
