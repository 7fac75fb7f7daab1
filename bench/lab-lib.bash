# shellcheck shell=bash
# Shared by the benchmarks that run a lab of their own (bench/boot.sh, bench/lab.sh): sourced
# after LAB (the ./lab script) is set. `lab_bench_start NAME` makes a temporary folder for the
# lab's state ($WORK) and, when the script exits, ends the processes listed in BENCH_CHILDREN,
# takes the lab down and removes the folder.

BENCH_CHILDREN=()
lab_bench_start() {
  WORK=$(mktemp -d "/tmp/cb-bench-$1.XXXXXX")
  export LAB_STATE=$WORK/state LAB_NAME=cb$1$$ LAB_KUBE=${LAB_KUBE:-embedded}
  # shellcheck disable=SC2154 # p is the trap's own loop variable
  trap 'for p in "${BENCH_CHILDREN[@]}"; do kill "$p" 2>/dev/null || true; done
    "$LAB" down >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
}

note() { echo "# $(date +%T) $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
kube() { "$LAB" kubectl "$@"; }
field() { kube get mb m1 -o "jsonpath={$1}" 2>/dev/null || true; }
console_size() { stat -c %s "$LAB_STATE/vm/m1/console.log" 2>/dev/null || echo 0; }
phase_is() { [ "$(field .status.phase)" = "$1" ]; }

# wait_marker TEXT FROM TIMEOUT: until TEXT is on m1's console past byte FROM; 20 ms polls.
wait_marker() {
  local deadline=$((SECONDS + $3))
  until tail -c +"$(($2 + 1))" "$LAB_STATE/vm/m1/console.log" 2>/dev/null | grep -q "$1"; do
    [ $SECONDS -lt $deadline ] || { note "no \"$1\" on m1's console within $3 s"; tail -20 "$LAB_STATE/vm/m1/console.log" >&2; exit 1; }
    sleep 0.02
  done
}

# wait_for DESCRIPTION TIMEOUT POLL CMD...: until CMD succeeds, trying every POLL seconds.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2)) poll=$3
  shift 3
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { note "gave up waiting for $what"; kube get mb m1 -o yaml >&2; tail -20 "$LAB_STATE/vm/m1/console.log" >&2; exit 1; }
    sleep "$poll"
  done
}
