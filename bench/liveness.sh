#!/usr/bin/env bash
# What liveness costs the Kubernetes API: N simulated agents (bench/agents/AgentLoad.java
# liveness) hold their desired-state streams open to one operator, against the embedded
# Kubernetes API, and send their full status report every heartbeat the desired state names
# (cb.agent.lost-after / 4), nothing ever changing, as a quiet fleet does. After a warm-up (every
# agent Lease created, every status written once) the API writes of the liveness mechanism are
# counted over a window: Lease renewals and status writes (the operator's counters, checked
# against the MODIFIED events of watches on the namespace's Leases and MachineBoots).
#
#   RESULT liveness_writes_per_s_1k       measured with N=1000
#   RESULT liveness_writes_per_s_10k      measured when N includes 10000; otherwise computed from
#                                         the per-machine rate measured at the largest N (it is
#                                         per machine: nothing in it depends on N), and a NOTE says so
#   SPEEDUP liveness_vs_node_leases       the node-lease design's cost for as many nodes (one
#                                         Lease renewal per node every 10 s = N/10 writes/s) over ours
#
#   bench/liveness.sh                     # N=1000, a 120 s window, lost-after 60 s (the default)
#   N=1000,10000 bench/liveness.sh        # also measure 10,000 agents
#   WINDOW_S=60 LOST_AFTER_S=60 bench/liveness.sh
#
# BUILD=always rebuilds the operator and the embedded API server; MVN_FLAGS (-o, say) go to mvn.
# shellcheck source=bench/control-plane-lib.bash
source "$(dirname "$0")/control-plane-lib.bash"
LEVELS=${N:-1000}
WINDOW_S=${WINDOW_S:-120}
LOST_AFTER_S=${LOST_AFTER_S:-60}
read -ra mvn_flags <<<"${MVN_FLAGS:-}"
largest=$(tr ',' '\n' <<<"$LEVELS" | sort -n | tail -1)

ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((2 * largest + 1000)) ]; then
  echo "ulimit -n is $(ulimit -n); $largest agents need more (raise the hard limit)"; exit 1
fi

if [ "${BUILD:-auto}" = always ] || [ ! -f "$ROOT/operator/target/quarkus-app/quarkus-run.jar" ] ||
   [ ! -d "$ROOT/e2e/target/classes/io" ]; then
  note "building the operator and the embedded API server"
  (cd "$ROOT" && mvn -B -q "${mvn_flags[@]}" -pl operator,e2e -am package -DskipTests >"$WORK/build.log" 2>&1) || {
    cat "$WORK/build.log"; exit 1; }
fi
(cd "$ROOT" && mvn -B -q "${mvn_flags[@]}" -pl e2e dependency:build-classpath -Dmdep.includeScope=runtime \
  -Dmdep.outputFile="$WORK/e2e.classpath" >>"$WORK/build.log" 2>&1) || { cat "$WORK/build.log"; exit 1; }
javac -d "$WORK/agents" "$ROOT/bench/agents/AgentLoad.java"
load() { java -Xmx1g -cp "$WORK/agents" AgentLoad "$@"; }

mkdir -p "$WORK/images"
{ printf hsqs; head -c 262140 /dev/urandom; } >"$WORK/images/bench.squashfs"
IMAGE_SHA=$(sha256sum "$WORK/images/bench.squashfs" | cut -d' ' -f1)
image_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/images" "$image_port" >/dev/null 2>&1 &
PIDS+=($!)
IMAGE_URL="http://127.0.0.1:$image_port/bench.squashfs"

per_machine=""
for n in ${LEVELS//,/ }; do
  note "---- $n agents"
  start_apiserver
  APISERVER_PID=${PIDS[-1]}
  load create --api "$API_URL" --n "$n" --image-url "$IMAGE_URL" --image-sha256 "$IMAGE_SHA"
  mkdir -p "$WORK/store-$n"
  # The image server on loopback is allowed as an image source.
  JAVA_TOOL_OPTIONS="-Dcb.store.path=$WORK/store-$n -Dcb.bootstrap.dir=$WORK/bootstrap \
-Dcb.store.allowed-sources=127.0.0.1/32 \
-Dquarkus.http.host=127.0.0.1 -Dcb.agent.lost-after=${LOST_AFTER_S}S ${OPERATOR_JAVA_OPTS:-}" start_operator
  wait_operator_http
  load liveness --api "$API_URL" --n "$n" --operator "$OPERATOR_URL" --admin "$OPERATOR_ADMIN_URL" --window-s "$WINDOW_S" \
    --lost-after-s "$LOST_AFTER_S" | tee "$WORK/result-$n" || {
    echo "the load generator failed; operator log:"; tail -40 "$WORK/operator.log"; exit 1; }
  grep -E "WARN|ERROR" "$WORK/operator.log" |
    grep -v "unstable version\|Build time property\|build time fixed\|JAVA_TOOL_OPTIONS" |
    cut -c25- | sort | uniq -c | sort -rn | head -5 | sed 's/^/# operator log: /' >&2 || true
  if [ "$n" = "$largest" ]; then
    per_machine=$(awk '/^NOTE liveness_writes_per_machine_per_s_/ {print $3}' "$WORK/result-$n")
    measured=$(awk '/^RESULT liveness_writes_per_s_/ {print $3}' "$WORK/result-$n")
  fi
  kill "$OPERATOR_PID" "$APISERVER_PID"
  wait "$OPERATOR_PID" "$APISERVER_PID" 2>/dev/null || true
done

if ! tr ',' '\n' <<<"$LEVELS" | grep -qx 10000; then
  awk -v p="$per_machine" -v n="$largest" 'BEGIN {
    printf "NOTE liveness_writes_per_s_10k is computed, not measured: %.5f writes/s per machine (measured with N=%d) x 10000\n", p, n
    printf "RESULT liveness_writes_per_s_10k %.1f writes/s\n", p * 10000 }'
fi
awk -v w="$measured" -v n="$largest" 'BEGIN {
  printf "NOTE node leases for %d nodes: one renewal per node every 10 s = %.1f writes/s\n", n, n / 10
  printf "SPEEDUP liveness_vs_node_leases %.2f\n", (n / 10) / w }'
