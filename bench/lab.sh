#!/bin/bash
# Lab benchmark: image switches, returns and a full PXE reboot of one QEMU machine,
# measured through the whole system in a lab of its own (./lab up --machines 1 --no-debian).
#
# - switch: `kubectl patch` of imageRef -> the next image's init prints its marker on the serial
#   console, timed on the host (the console log is polled every 20 ms). `switch_uncached` is the
#   first switch to busybox-b (the agent has never fetched it); `switch_cached` the median of
#   BENCH_SWITCHES later switches between busybox and busybox-b. A cached switch includes hashing
#   the cached image again before it is mounted.
# - modules: the images run with the bootstrap kernel's modules image (spec.kernelModules
#   Bootstrap, the default). `modules_fetch` is its download and check on the first target that
#   needs it, as the agent logged it on the console; `switch_cached` includes mounting it (and
#   hashing it again) for every target; `switch_cached_no_modules` is the same switches with
#   kernelModules None on both images.
# - pxe_reboot: the reference, what users do today: QEMU's reset button (`system_reset`) -> the
#   same image's marker, through firmware, PXE, iPXE, kernel, bootstrap, agent and download.
#   SPEEDUP switch_vs_reboot = pxe_reboot / switch_cached.
# - return_<trigger>: trigger -> bootstrap ready, as the agent measured it in the guest
#   (status.lastReturn.durationMillis), for spec, hotkey, serial and helper.
# - console_rtt_ms: a key typed at the remote console -> its echo, through the operator's attach
#   WebSocket (what `kubectl boot console` uses: operator, the agent's outbound connection, the
#   agent's pty relay, the target's tty echo and back), the median of BENCH_CONSOLE_KEYS keys
#   (bench/console/ConsoleRtt.java, each key erased again). console_rtt_serial_ms: the same on the
#   machine's real serial line (QEMU's socket, 115200 baud), the path of a person at the machine;
#   the difference is what the remote path adds.
# - agent_rss_recorder: the agent's VmRSS in phase Running after every switch, return and console
#   session above (its console recorder and flight recorder hold their bounded logs of all of them),
#   as the bootstrap's agent wrapper samples it from /proc in the guest.
#
# Under TCG (no working KVM here) every guest-side figure is many times what real hardware
# shows; the ratio is what carries over, and a real server's firmware POST makes reboots far
# slower still.
#
# Needs what ./lab needs (root, QEMU, the built artifacts). Environment: BENCH_SWITCHES
# (default 5), BENCH_CONSOLE_KEYS (default 20), and every LAB_* setting of ./lab (its state goes
# to a temporary folder).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=$ROOT/lab
switches=${BENCH_SWITCHES:-5}
keys=${BENCH_CONSOLE_KEYS:-20}
[[ "$keys" =~ ^[1-9][0-9]{0,2}$ ]] || { echo "bench/lab.sh: BENCH_CONSOLE_KEYS=$keys: 1 to 999" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench/lab.sh: needs root (./lab)" >&2; exit 2; }

# shellcheck source=bench/lab-lib.bash
. "$ROOT/bench/lab-lib.bash"
lab_bench_start lab
console() { cat "$LAB_STATE/vm/m1/console.log" 2>/dev/null || true; }
returned() { [ "$(field .status.lastReturn.trigger)" = "$1" ] && [ "$(field .status.lastReturn.time)" != "$2" ]; }
return_seconds() { awk -v ms="$(field .status.lastReturn.durationMillis)" 'BEGIN {printf "%.3f", ms / 1000}'; }

marker() { echo "CB-LAB-MARKER $1: init running"; }
image_variant() { if [ "$1" = busybox ]; then echo busybox-a; else echo busybox-b; fi; }

# switch_to IMAGE: prints the seconds from the patch to the image's marker.
switch_to() {
  local from t0
  from=$(console_size)
  t0=$(now)
  kube patch mb m1 --type merge -p "{\"spec\":{\"state\":null,\"imageRef\":\"$1\"}}" >/dev/null
  wait_marker "$(marker "$(image_variant "$1")")" "$from" 300
  secs "$t0" "$(now)"
}

# trigger_return NAME TRIGGER CMD...: runs CMD, waits for the return, prints RESULT, resumes.
trigger_return() {
  local name=$1 trigger=$2 before from
  shift 2
  before=$(field .status.lastReturn.time)
  "$@"
  wait_for "a return with trigger $trigger" 120 0.2 returned "$trigger" "$before"
  echo "RESULT return_$name $(return_seconds) s"
  wait_for "the bootstrap console prompt" 60 0.2 sh -c "tail -c 400 '$LAB_STATE/vm/m1/console.log' | grep -q 'bootstrap> '"
  from=$(console_size)
  "$LAB" type m1 resume
  wait_marker "$(marker "$(image_variant "$current")")" "$from" 300
}

note "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
note "starting a lab with one machine (state in $WORK)"
"$LAB" up --machines 1 --no-debian --hold >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
note "waiting for m1's agent in the bootstrap"
wait_for "m1 in phase Bootstrap" 600 0.2 phase_is Bootstrap

note "first load of busybox (warms the operator's store and the agent; fetches the modules image)"
current=busybox
from=$(console_size)
switch_to busybox >/dev/null
fetch=$(tail -c +"$((from + 1))" "$LAB_STATE/vm/m1/console.log" |
  sed -n 's/.*modules image [0-9a-f]* fetched and verified ([0-9.]* MB in \([0-9.]*\) s).*/\1/p' | head -1)
[ -n "$fetch" ] || { note "the agent did not log fetching the modules image"; exit 1; }
echo "RESULT modules_fetch $fetch s"
note "switch to busybox-b, never fetched by the agent"
current=busybox-b
before=$(field .status.lastReturn.time)
uncached=$(switch_to busybox-b)
echo "RESULT switch_uncached $uncached s"
# The agent reports at most once a second: a switch faster than that shows its image before the
# report that carries the return has reached the MachineBoot.
wait_for "the report of the SpecChange return" 30 0.2 returned SpecChange "$before"
echo "RESULT return_spec $(return_seconds) s"

samples=()
for i in $(seq "$switches"); do
  if [ "$current" = busybox ]; then current=busybox-b; else current=busybox; fi
  samples+=("$(switch_to "$current")")
  note "switch $i to $current: ${samples[-1]} s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cached=$(median "${samples[@]}")
echo "RESULT switch_cached $cached s"

note "the console's keystroke round trip ($keys keys at $current's shell): through the operator, then on the serial line"
javac -d "$WORK/console" "$ROOT/bench/console/ConsoleRtt.java"
admin=$(sed -n 's/^OPERATOR_ADMIN_URL=//p' "$LAB_STATE/lab.env")
namespace=$(sed -n 's/^LAB_NAMESPACE=//p' "$LAB_STATE/lab.env")
# The lab user's own token, as kubectl boot console sends it; in the environment, never printed.
CB_TOKEN=$(kube config view --raw -o jsonpath='{.users[0].user.token}') \
  java -cp "$WORK/console" ConsoleRtt ws "${admin/http:/ws:}/machines/$namespace/m1/console/attach" "$keys" \
  >"$WORK/rtt-ws" 2>"$WORK/rtt-ws.log" || { cat "$WORK/rtt-ws.log" >&2; exit 1; }
java -cp "$WORK/console" ConsoleRtt unix "$LAB_STATE/vm/m1/console.sock" "$keys" \
  >"$WORK/rtt-serial" 2>"$WORK/rtt-serial.log" || { cat "$WORK/rtt-serial.log" >&2; exit 1; }
echo "RESULT console_rtt_ms $(cat "$WORK/rtt-ws") ms"
echo "RESULT console_rtt_serial_ms $(cat "$WORK/rtt-serial") ms"

note "kernelModules None on both images (the running one switches again by itself)"
from=$(console_size)
for image in busybox busybox-b; do
  kube patch bi "$image" --type merge -p '{"spec":{"kernelModules":"None"}}' >/dev/null
done
wait_marker "$(marker "$(image_variant "$current")")" "$from" 300
plain=()
for i in $(seq "$switches"); do
  if [ "$current" = busybox ]; then current=busybox-b; else current=busybox; fi
  plain+=("$(switch_to "$current")")
  note "switch $i to $current without modules: ${plain[-1]} s"
done
echo "RESULT switch_cached_no_modules $(median "${plain[@]}") s"

trigger_return hotkey Hotkey "$LAB" key m1 ctrl-alt-f12
trigger_return serial Serial "$LAB" serial m1 RETURN_TO_BOOTSTRAP
trigger_return helper Helper "$LAB" type m1 "return bench"

# The wrapper's line of the last time the agent reached phase Running (the resume above).
rss_kb=$(tr -d '\r' <"$LAB_STATE/vm/m1/console.log" |
  sed -n 's/.*VmRSS \([0-9]*\) kB VmHWM [0-9]* kB (phase Running).*/\1/p' | tail -1)
[ -n "$rss_kb" ] || { note "the agent wrapper printed no VmRSS line in phase Running"; exit 1; }
awk -v kb="$rss_kb" 'BEGIN {printf "RESULT agent_rss_recorder %.1f MiB\n", kb / 1024}'

note "PXE reboot of m1 into $current (the reference)"
from=$(console_size)
t0=$(now)
"$LAB" power m1 reset
wait_marker "$(marker "$(image_variant "$current")")" "$from" 600
reboot=$(secs "$t0" "$(now)")
echo "RESULT pxe_reboot $reboot s"
awk -v r="$reboot" -v s="$cached" 'BEGIN {printf "SPEEDUP switch_vs_reboot %.2f\n", r / s}'
note "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
