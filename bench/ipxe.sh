#!/usr/bin/env bash
# iPXE rendering under load: N MachineBoots, the operator serving /boot/{mac}.ipxe for a
# rotating set of MACs, against nginx serving a static script of the same size in the same run.
# Targets: >= 0.5x nginx's requests/s, p99 < 10 ms.
#
# Fairness on a small machine: wrk -t2 -c64 -d20s (the issue's settings) runs against both
# servers alike. On a machine with two or more cores the server under test (nginx with one
# worker process, or the operator with the embedded API server it watches) is pinned to core
# SERVER_CPU and wrk to core CLIENT_CPU, so that each server gets the same one core and wrk never
# takes CPU from it: unpinned, wrk's threads and the server share both cores and the load
# generator's own scheduling shows up in the server's latency (nginx's own p99 was 16 ms). The
# operator starts unpinned, as a 2-core deployment would, and is pinned once the start-up
# reconcile of the N MachineBoots is done; PIN=0 switches pinning off. Pinned, the operator
# serves HTTP from one event loop (quarkus.http.io-threads=1) as nginx serves from one worker:
# Quarkus's default of two per core would make four event loops take turns on the one core, and
# a request that arrives on a loop waiting for its turn waits out the others' time slices. Its
# JVM is told it has one processor (-XX:ActiveProcessorCount=1), as a JVM limited to one CPU
# finds: sized for two, its two GC threads take turns on the one core and every young
# collection stalls all connections for ~30 ms, which is then the p99.
#
# On a machine shared with builds, whatever else runs on the pinned core takes its share of it,
# and that, not the server, would decide the p99. While measuring, this benchmark's processes
# (servers and wrk alike) therefore run at nice NICE (default -10, as root; NICE=0 to leave
# priorities alone). With autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled), a
# thread's nice weighs only against its own session, so the benchmark runs in a session of its
# own and sets that session's nice (/proc/self/autogroup, sched(7)) for the 45 s of load.
if [ -z "${CB_BENCH_SESSION:-}" ] && command -v setsid >/dev/null; then
  CB_BENCH_SESSION=1 exec setsid --wait bash "$0" "$@"
fi
# shellcheck source=bench/control-plane-lib.bash
source "$(dirname "$0")/control-plane-lib.bash"
N=${N:-10000}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
command -v nginx >/dev/null || { echo "nginx is missing: apt-get install nginx-light"; exit 1; }

CLIENT=()
PINNED=0
if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  PINNED=1
  CLIENT=(taskset -c "$CLIENT_CPU")
  export NGINX_CPU=$SERVER_CPU
  OPERATOR_JAVA_OPTS="-XX:ActiveProcessorCount=1 -Dquarkus.http.io-threads=1 ${OPERATOR_JAVA_OPTS:-}"
  note "pinning: servers to CPU $SERVER_CPU, wrk to CPU $CLIENT_CPU"
else
  note "not pinning (PIN=${PIN:-1}, $(nproc) CPUs): wrk and the servers share the CPUs"
fi
NICE=${NICE:--10}
if [ "$NICE" != 0 ] && [ "$(id -u)" != 0 ]; then
  note "not root: priorities left alone (NICE=0)"; NICE=0
fi
CLIENT=(nice -n "$NICE" "${CLIENT[@]}")
export NGINX_WORKERS=1
# renice_all PID: every thread of a process (nice is per thread on Linux; new threads inherit it).
renice_all() {
  for task in /proc/"$1"/task/*; do renice -n "$NICE" -p "${task##*/}" >/dev/null 2>&1 || true; done
}
# session_nice N: the nice of this benchmark's autogroup, when the kernel groups by session.
session_nice() {
  if [ -w /proc/self/autogroup ] && [ "$NICE" != 0 ]; then echo "$1" >/proc/self/autogroup || true; fi
}

build
start_apiserver
create_machineboots "$N"
start_operator
wait_operator_http
deadline=$((SECONDS + 600))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$OPERATOR_URL/boot/52:54:00:00:00:00.ipxe")" = 200 ]; do
  if [ $SECONDS -gt $deadline ]; then
    echo "the operator did not serve a script within 600 s:"; tail -40 "$WORK/operator.log"; exit 1
  fi
  sleep 0.5
done
curl -sf "$OPERATOR_URL/boot/52:54:00:00:00:00.ipxe" >"$WORK/script.ipxe"
note "the operator serves scripts; waiting for the $N MachineBoots to be reconciled"
# Measure the steady state, not the cold-start reconcile (bench/reconcile.sh measures that).
deadline=$((SECONDS + 900))
until [ "$(count_reconciled || echo 0)" -ge "$N" ]; do
  [ $SECONDS -gt $deadline ] && { echo "not all $N reconciled within 900 s"; exit 1; }
  sleep 2
done
if [ "$PINNED" = 1 ]; then
  # -a: every thread of the JVMs, including those started later (they inherit the mask).
  taskset -a -p -c "$SERVER_CPU" "$OPERATOR_PID" >/dev/null
  taskset -a -p -c "$SERVER_CPU" "$API_PID" >/dev/null
fi
renice_all "$OPERATOR_PID"
session_nice "$NICE"
trap 'session_nice 0; cleanup' EXIT
note "measuring; load average $(cut -d' ' -f1-3 /proc/loadavg)"

cat >"$WORK/rotate.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  local i = counter % $N
  return wrk.format("GET", string.format("/boot/52:54:00:%02x:%02x:%02x.ipxe", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256))
end
LUA

start_nginx "root $WORK; location /boot/ { default_type text/plain; try_files /script.ipxe =404; }"
for _ in $(seq 100); do curl -sf "$NGINX_URL/boot/x.ipxe" >/dev/null && break; sleep 0.1; done
curl -sf "$NGINX_URL/boot/x.ipxe" >/dev/null || { echo "nginx does not serve the script:"; cat "$WORK/nginx/logs/error.log"; exit 1; }
renice_all "$NGINX_PID"
for worker in $(pgrep -P "$NGINX_PID"); do renice_all "$worker"; done

load() {
  "${CLIENT[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" "$@" -s "$WORK/rotate.lua"
}
# Warm the operator's JIT before measuring.
load -d5s "$OPERATOR_URL" >/dev/null

load -d"$DURATION" --latency "$NGINX_URL" >"$WORK/wrk-nginx.txt"
load -d"$DURATION" --latency "$OPERATOR_URL" >"$WORK/wrk-operator.txt"
session_nice 0
note "measured; load average $(cut -d' ' -f1-3 /proc/loadavg)"

rps() { awk '/^Requests\/sec/ {print $2}' "$1"; }
p99_ms() {
  awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 } print v }' "$1"
}
errors() { awk '/Non-2xx|Socket errors/ {print}' "$1"; }
for server in operator nginx; do
  if [ -n "$(errors "$WORK/wrk-$server.txt")" ]; then echo "$server errors: $(errors "$WORK/wrk-$server.txt")"; fi
  # The latency percentiles wrk saw, for the log (stderr).
  awk -v s="$server" '/Latency Distribution/ {on = 1; next} on && NF == 2 {printf "# %s %s %s\n", s, $1, $2} /requests in/ {on = 0}' \
    "$WORK/wrk-$server.txt" >&2
done

printf 'RESULT ipxe_script_bytes %d bytes\n' "$(stat -c %s "$WORK/script.ipxe")"
printf 'RESULT ipxe_rps %.0f req/s\n' "$(rps "$WORK/wrk-operator.txt")"
printf 'RESULT nginx_static_rps %.0f req/s\n' "$(rps "$WORK/wrk-nginx.txt")"
printf 'RESULT ipxe_p99 %.2f ms\n' "$(p99_ms "$WORK/wrk-operator.txt")"
printf 'RESULT nginx_static_p99 %.2f ms\n' "$(p99_ms "$WORK/wrk-nginx.txt")"
printf 'SPEEDUP ipxe_vs_nginx %.2f\n' "$(echo "$(rps "$WORK/wrk-operator.txt") / $(rps "$WORK/wrk-nginx.txt")" | bc -l)"
