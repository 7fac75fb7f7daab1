#!/bin/bash
# Boot benchmark: power-on -> bootstrap ready, against a plain busybox initramfs booted
# over the same PXE path (the floor), in a lab of its own (./lab up --machines 1 --no-debian --hold).
#
# - boot_to_ready: `./lab power m1 on` -> the agent's first status report of this boot reached
#   the MachineBoot (a new status.agent.bootId, phase Bootstrap), read from a kubectl watch.
#   The path: SeaBIOS, iPXE (efi-virtio.rom) DHCP from dnsmasq plus the pxe-server's proxyDHCP
#   answer, the operator's iPXE script, vmlinuz and initramfs over HTTP from the operator, the
#   kernel, /init, modules, DHCP, the agent's JVM start, its first report.
# - boot_floor: the same power-on through the same firmware, DHCP, proxyDHCP, iPXE script and
#   kernel, but the operator serves a plain initramfs instead of the bootstrap's (busybox and an
#   /init that prints a marker, lz4 like the bootstrap's): power-on -> the marker on the console
#   (console log polled every 20 ms). The lab's operator serves $LAB_STATE/bootstrap/initramfs;
#   the bench swaps that file between the two kinds of boot.
#   SPEEDUP boot_vs_floor = boot_floor / boot_to_ready (target >= 0.5: at most twice the floor).
# - the split of boot_to_ready: boot_to_init = power-on -> the bootstrap's "chrootbooter: bootstrap
#   ready" console line (firmware, iPXE, both downloads, kernel, /init, modules, DHCP; the agent's
#   JVM is already starting meanwhile), agent_to_report = the rest (the agent's start and set-up
#   beyond that line, its connection to the operator, its first report).
# - initramfs_bytes: the bootstrap's initramfs.img as served (compressed).
# - agent_rss_mb: the agent's VmRSS while a target (busybox) runs, as the bootstrap's agent
#   wrapper samples it from /proc in the guest and prints it on the console in phase Running.
#
# Each kind of boot runs BENCH_BOOTS times (default 3), alternating; the medians are printed.
# The lab's own first boot warms the operator and is not timed. Under TCG (no working KVM here)
# every figure is many times what real hardware shows; the ratio is what carries over.
#
# Needs what ./lab needs (root, QEMU, the built artifacts, among them
# node-agent/target/bootstrap from `mvn -B -pl node-agent -am package -Pbootstrap -DskipTests`).
# Environment: BENCH_BOOTS, and every LAB_* setting of ./lab (its state goes to a temporary
# folder).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=$ROOT/lab
boots=${BENCH_BOOTS:-3}
[[ "$boots" =~ ^[1-9][0-9]*$ ]] || { echo "bench/boot.sh: BENCH_BOOTS=$boots is not a positive number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench/boot.sh: needs root (./lab)" >&2; exit 2; }
BOOTSTRAP=${LAB_BOOTSTRAP_DIR:-$ROOT/node-agent/target/bootstrap}
[ -f "$BOOTSTRAP/initramfs.img" ] ||
  { echo "bench/boot.sh: no $BOOTSTRAP/initramfs.img (mvn -B -pl node-agent -am package -Pbootstrap -DskipTests)" >&2; exit 2; }

# shellcheck source=bench/lab-lib.bash
. "$ROOT/bench/lab-lib.bash"
lab_bench_start boot
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# A report of a boot other than the one before (the agent sends the kernel's boot id) in phase
# Bootstrap, read from one `kubectl get --watch` started before the power-on: one process and
# one API watch, instead of a kubectl process every 0.1 s taking the host's CPU from the VM
# while it boots.
watch_start() {
  rm -f "$WORK/watch.fifo"
  mkfifo "$WORK/watch.fifo"
  KUBECONFIG=$KUBECONFIG_FILE kubectl get mb m1 --watch \
    -o 'jsonpath={.status.agent.bootId}/{.status.phase}{"\n"}' >"$WORK/watch.fifo" 2>/dev/null &
  WATCH_PID=$!
  BENCH_CHILDREN+=("$WATCH_PID")
  exec 5<"$WORK/watch.fifo"
}
watch_new_boot() { # BEFORE TIMEOUT
  local line deadline=$((SECONDS + $2)) found=""
  while [ $SECONDS -lt $deadline ] && IFS= read -r -t "$2" line <&5; do
    if [ "${line%/*}" != "$1" ] && [ -n "${line%/*}" ] && [ "${line#*/}" = Bootstrap ]; then
      found=1
      break
    fi
  done
  kill "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
  exec 5<&-
  [ -n "$found" ] || { note "no report of m1's new boot in phase Bootstrap within $2 s"; kube get mb m1 -o yaml >&2; tail -20 "$LAB_STATE/vm/m1/console.log" >&2; exit 1; }
}

# serve FILE [CACHE]: the operator's /bootstrap/initramfs and /bootstrap/agent-cache (the
# agent's class archive, a second initrd; none without CACHE) from now on. A rename, so a boot
# never reads a half-written file; the operator's file server caches a file's properties for 1 s.
serve() {
  cp "$1" "$LAB_STATE/bootstrap/initramfs.tmp"
  mv "$LAB_STATE/bootstrap/initramfs.tmp" "$LAB_STATE/bootstrap/initramfs"
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    cp "$2" "$LAB_STATE/bootstrap/agent-cache.tmp"
    mv "$LAB_STATE/bootstrap/agent-cache.tmp" "$LAB_STATE/bootstrap/agent-cache"
  else
    rm -f "$LAB_STATE/bootstrap/agent-cache"
  fi
  sleep 1.5
}

# The floor: busybox and an /init that prints the marker and waits. Same compressor and options
# as the bootstrap's build (lz4 legacy frame, node-agent/src/bootstrap/build.sh).
FLOOR_MARKER="CB-BOOT-FLOOR: init running"
build_floor() {
  local bb root=$WORK/floor
  bb=$(command -v busybox)
  ! ldd "$bb" >/dev/null 2>&1 || { echo "bench/boot.sh: $bb is not static (apt-get install busybox-static)" >&2; exit 2; }
  mkdir -p "$root/bin"
  install -m 0755 "$bb" "$root/bin/busybox"
  printf '#!/bin/busybox sh\n/bin/busybox echo "%s"\nexec /bin/busybox sleep 2147483647\n' "$FLOOR_MARKER" >"$root/init"
  chmod 0755 "$root/init"
  (cd "$root" && find . | sort | cpio -o -H newc --quiet --reproducible) | lz4 -l -9 -q -c >"$WORK/floor.img"
}

note "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
build_floor
note "floor initramfs: $(stat -c %s "$WORK/floor.img") bytes; the bootstrap's: $(stat -c %s "$BOOTSTRAP/initramfs.img") bytes"
note "starting a lab with one machine (state in $WORK)"
"$LAB" up --machines 1 --no-debian --hold >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
KUBECONFIG_FILE=$(sed -n 's/^export KUBECONFIG=//p' <("$LAB" env))
note "waiting for m1's agent in the bootstrap (the lab's first boot, not timed)"
wait_for "m1 in phase Bootstrap" 600 0.5 phase_is Bootstrap

note "the agent's RSS while busybox runs"
from=$(console_size)
kube patch mb m1 --type merge -p '{"spec":{"state":null,"imageRef":"busybox"}}' >/dev/null
wait_marker "CB-LAB-MARKER busybox-a: init running" "$from" 300
wait_marker "VmRSS [0-9]* kB VmHWM [0-9]* kB (phase Running)" "$from" 60
rss_kb=$(tail -c +"$((from + 1))" "$LAB_STATE/vm/m1/console.log" | tr -d '\r' |
  sed -n 's/.*VmRSS \([0-9]*\) kB VmHWM [0-9]* kB (phase Running).*/\1/p' | tail -1)
kube patch mb m1 --type merge -p '{"spec":{"imageRef":null,"state":"Bootstrap"}}' >/dev/null
wait_for "m1 back in phase Bootstrap" 120 0.5 phase_is Bootstrap
"$LAB" power m1 off

ours=() init=() agent=() floor=()
for i in $(seq "$boots"); do
  serve "$BOOTSTRAP/initramfs.img" "$BOOTSTRAP/agent-cache.img"
  before=$(field .status.agent.bootId)
  from=$(console_size)
  watch_start
  t0=$(now)
  "$LAB" power m1 on
  wait_marker "chrootbooter: bootstrap ready" "$from" 600
  t1=$(now)
  watch_new_boot "$before" 600
  t2=$(now)
  ours+=("$(secs "$t0" "$t2")") init+=("$(secs "$t0" "$t1")") agent+=("$(secs "$t1" "$t2")")
  "$LAB" power m1 off
  note "boot $i: power-on -> agent reported ${ours[-1]} s (/init ready at ${init[-1]} s)"

  serve "$WORK/floor.img"
  from=$(console_size)
  t0=$(now)
  "$LAB" power m1 on
  wait_marker "$FLOOR_MARKER" "$from" 600
  floor+=("$(secs "$t0" "$(now)")")
  "$LAB" power m1 off
  note "boot $i: power-on -> floor marker ${floor[-1]} s"
done

ready=$(printf '%s\n' "${ours[@]}" | median)
base=$(printf '%s\n' "${floor[@]}" | median)
echo "RESULT boot_to_ready $ready s"
echo "RESULT boot_floor $base s"
awk -v f="$base" -v o="$ready" 'BEGIN {printf "SPEEDUP boot_vs_floor %.2f\n", f / o}'
echo "RESULT boot_to_init $(printf '%s\n' "${init[@]}" | median) s"
echo "RESULT agent_to_report $(printf '%s\n' "${agent[@]}" | median) s"
echo "RESULT initramfs_bytes $(stat -c %s "$BOOTSTRAP/initramfs.img") bytes"
awk -v kb="$rss_kb" 'BEGIN {printf "RESULT agent_rss_mb %.1f MB\n", kb / 1024}'
note "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
