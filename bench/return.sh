#!/bin/bash
# Return benchmark: N forced returns from a busybox target, through the node agent's
# own code path (`node-agent return-check`: boot from a cached squashfs with a tmpfs overlay,
# PID 1 of new mount/PID/UTS/IPC namespaces in its own cgroup2, then return with no grace:
# SIGKILL of the namespace init, cgroup sweep, teardown of overlay/tmpfs/squashfs/loop, state
# files). Return time = trigger -> bootstrap ready (all of that done).
#
# Reference, measured in the same run on the same image: the same forced return hand-written in
# busybox sh with nothing around it -- `kill -9` of the namespace init, `wait` for unshare, then
# `umount` of overlay, tmpfs and squashfs. It is the floor for this teardown on this machine (the
# kernel's PID-namespace and mount teardown dominate), so SPEEDUP = reference p99 / agent p99 is
# expected at or a little below 1.0: it shows the agent's overhead over the bare minimum, not a
# win over another product. (A PXE reboot, the real alternative, cannot run here.)
#
# Prints `RESULT return_forced_p50|p99 <ms> ms`, `RESULT reference_return_p50|p99 <ms> ms`,
# `SPEEDUP return_forced_p99 <x.xx>`, then leak checks after the cycles (mounts, loop devices,
# processes, cgroups): `LEAKS none` or the leaks and exit status 1.
#
# The agent runs as machines run it (bench/bootstrap-runtime.bash: the bootstrap build's runtime,
# class archive, agent.conf's JVM flags and JIT mode, in a chroot of its initrds and a mount
# namespace of its own, whose mount table is checked for leaks when the agent ends); it prints
# which runtime and flags it used.
#
# Needs root, busybox-static, squashfs-tools, lz4, cpio, a cgroup2 mount, and the agent built:
#   mvn -B -q -pl node-agent -am package -DskipTests, then the bootstrap (see bench/download.sh)
# Environment: BENCH_CYCLES (default 100), BENCH_BOOTSTRAP (a bootstrap build's output folder),
# BENCH_CGROUP2 (a cgroup2 directory; default /sys/fs/cgroup/unified when it is cgroup2, else
# /sys/fs/cgroup).
set -euo pipefail

cycles=${BENCH_CYCLES:-100}
here=$(cd "$(dirname "$0")/.." && pwd)
bb=/bin/busybox
[ "$(id -u)" = 0 ] || { echo "bench/return.sh: needs root (mounts, namespaces, cgroups)" >&2; exit 2; }
[ -x "$bb" ] || { echo "bench/return.sh: no $bb (apt-get install busybox-static)" >&2; exit 2; }
command -v mksquashfs >/dev/null || { echo "bench/return.sh: mksquashfs missing (squashfs-tools)" >&2; exit 2; }
cg2=${BENCH_CGROUP2:-}
if [ -z "$cg2" ]; then
  if [ -f /sys/fs/cgroup/unified/cgroup.subtree_control ]; then cg2=/sys/fs/cgroup/unified; else cg2=/sys/fs/cgroup; fi
fi
[ -f "$cg2/cgroup.subtree_control" ] || { echo "bench/return.sh: $cg2 is not cgroup2" >&2; exit 2; }

log() { echo "# $*" >&2; }
work=$(mktemp -d /var/tmp/cb-return.XXXXXX)
cgroup="$cg2/cb-bench-$$"
cleanup() {
  set +e
  if [ -d "$cgroup" ]; then
    for c in "$cgroup"/*/; do [ -d "$c" ] && echo 1 > "$c/cgroup.kill" && sleep 0.2 && rmdir "$c"; done
    rmdir "$cgroup"
  fi
  grep -F " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
}
# shellcheck disable=SC2154 # rc is assigned first thing in the trap
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM
mkdir "$cgroup"
# shellcheck source=bench/bootstrap-runtime.bash
. "$here/bench/bootstrap-runtime.bash"
bootstrap_runtime return.sh "$work"

# --- the target: static busybox, an init that says it is up, then idles ---------------------
mkdir -p "$work/tree"/{bin,sbin,etc,proc,sys,dev,run,tmp}
cp "$bb" "$work/tree/bin/busybox"
for a in sh sleep echo; do ln -s busybox "$work/tree/bin/$a"; done
printf '#!/bin/sh\necho up > /run/booted\nwhile :; do sleep 1; done\n' > "$work/tree/sbin/init"
chmod 755 "$work/tree/sbin/init"
mksquashfs "$work/tree" "$work/target.squashfs" -quiet -noappend -comp gzip >/dev/null

loops_before=$(losetup -a | wc -l)
procs_before=$(ps -e --no-headers | wc -l)
mounts_before=$(wc -l < /proc/self/mountinfo)

percentile() { # percentile P < numbers
  sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; printf "%.1f", a[i]}'
}

# --- the agent ----------------------------------------------------------------------------
log "agent: $cycles forced return cycles"
BOOT_MOUNTINFO="$work/agent-mounts" "$boot_agent" return-check --cycles "$cycles" \
  --grace-ms 0 --init /sbin/init --ready-file run/booted --work "$work/agent" \
  --cgroup-parent "$cgroup" --state-dir "$work/state" --busybox "$bb" --pids-max 1024 \
  "$work/target.squashfs" \
  > "$work/agent.out" 2> "$work/agent.err" || { cat "$work/agent.err" >&2; exit 1; }
grep -c '^cycle ' "$work/agent.out" | grep -qx "$cycles" || { echo "bench/return.sh: agent ran fewer cycles" >&2; cat "$work/agent.err" >&2; exit 1; }
awk '/^cycle /{print $6}' "$work/agent.out" > "$work/agent.ms"

# --- the reference: the same return by hand --------------------------------------------------
log "reference: $cycles hand-written forced returns"
ref="$work/ref"; mkdir -p "$ref/lower" "$ref/rw" "$ref/root"
: > "$work/ref.ms"
for _ in $(seq "$cycles"); do
  mount -t squashfs -o loop,ro "$work/target.squashfs" "$ref/lower"
  mount -t tmpfs cb-upper "$ref/rw"; mkdir "$ref/rw/upper" "$ref/rw/work"
  mount -t overlay -o "lowerdir=$ref/lower,upperdir=$ref/rw/upper,workdir=$ref/rw/work" cb-root "$ref/root"
  # shellcheck disable=SC2016 # the inner shell expands $1, the root it is given
  "$bb" unshare --mount --pid --fork --propagation private "$bb" sh -c '
    cd "$1" && mount -t proc proc proc && mount -t devtmpfs devtmpfs dev && mount -t tmpfs t run &&
    exec chroot . /sbin/init' ref "$ref/root" </dev/null >/dev/null 2>&1 &
  helper=$!
  init=""
  while [ -z "$init" ]; do init=$(pgrep -P "$helper" || true); done
  while [ ! -e "/proc/$init/root/run/booted" ]; do :; done
  t0=$(date +%s%N)
  kill -9 "$init"; wait "$helper" 2>/dev/null || true
  umount "$ref/root"; umount "$ref/rw"; umount "$ref/lower"
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000 ))" | awk '{printf "%.3f\n", $1/1000}' >> "$work/ref.ms"
done

a50=$(percentile 50 < "$work/agent.ms"); a99=$(percentile 99 < "$work/agent.ms")
r50=$(percentile 50 < "$work/ref.ms"); r99=$(percentile 99 < "$work/ref.ms")
echo "RESULT return_forced_p50 $a50 ms"
echo "RESULT return_forced_p99 $a99 ms"
echo "RESULT reference_return_p50 $r50 ms"
echo "RESULT reference_return_p99 $r99 ms"
awk -v r="$r99" -v a="$a99" 'BEGIN {printf "SPEEDUP return_forced_p99 %.2f\n", r / a}'

# --- leaks after all cycles ------------------------------------------------------------------
# Autoclear loop devices detach asynchronously after the last umount (loop(4)); give them 5 s.
for _ in $(seq 50); do [ "$(losetup -a | wc -l)" -le "$loops_before" ] && break; sleep 0.1; done
leaks=()
[ "$(wc -l < /proc/self/mountinfo)" -le "$mounts_before" ] || leaks+=("mounts: $(grep -F " $work" /proc/self/mountinfo | awk '{print $5}' | tr '\n' ' ')")
# What the agent left mounted in its own namespace when it ended (the namespace then took it away).
if [ -f "$work/agent-mounts.after" ]; then
  left=$(awk '{print $5}' "$work/agent-mounts.before" | sort | comm -13 - <(awk '{print $5}' "$work/agent-mounts.after" | sort))
  [ -z "$left" ] || leaks+=("mounts in the agent's namespace: $(echo "$left" | tr '\n' ' ')")
fi
[ "$(losetup -a | wc -l)" -le "$loops_before" ] || leaks+=("loop devices: $(losetup -a | grep -F "$work" | tr '\n' ' ')")
[ -z "$(find "$cgroup" -mindepth 1 -type d)" ] || leaks+=("cgroups: $(find "$cgroup" -mindepth 1 -type d | tr '\n' ' ')")
[ -z "$(cat "$cgroup/cgroup.procs")" ] || leaks+=("processes in $cgroup: $(tr '\n' ' ' < "$cgroup/cgroup.procs")")
[ -z "$(pgrep -f "$work/" || true)" ] || leaks+=("processes: $(pgrep -af "$work/" | tr '\n' ' ')")
log "processes before $procs_before, after $(ps -e --no-headers | wc -l) (whole machine, informative)"
if [ ${#leaks[@]} -eq 0 ]; then
  echo "LEAKS none"
else
  printf 'LEAK %s\n' "${leaks[@]}"
  exit 1
fi
