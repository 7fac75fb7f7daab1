#!/usr/bin/env bash
# N simulated agents hold their desired-state streams (SSE) open to one operator, against the
# embedded Kubernetes API; the load generator is bench/agents/AgentLoad.java (JDK only, one NIO
# thread for every stream). For each N, on a fresh API server and operator: N MachineBoots of
# one Ready BootImage, the operator's live heap after a full GC and its RSS with the N streams
# open; then K MachineBoots changed one after another, and the delay from sending each change to
# the API server to its agent receiving the new generation (RESULT for the largest N).
# Targets: 10,000 streams in < 1 GB heap, fanout p99 < 100 ms. Reference in the same run: a
# plain watch client of the API server seeing the same changes (`SPEEDUP fanout_vs_watch` =
# its p99 / ours; ours includes that watch, so about 1 is the best possible).
#
#   bench/agents.sh                     # N=1000, then N=10000; K=200 changes
#   N=1000 K=500 bench/agents.sh        # N: one level or a comma-separated list
#
# BUILD=always rebuilds the operator and the embedded API server even when they are built;
# MVN_FLAGS (-o, say) go to every mvn; OPERATOR_JAVA_OPTS (-Xmx1g, say) to the operator's JVM;
# LOGS=DIR keeps the operator's and the API server's logs of each level there.
# shellcheck source=bench/control-plane-lib.bash
source "$(dirname "$0")/control-plane-lib.bash"
keep_logs() {
  [ -n "${LOGS:-}" ] || return 0
  mkdir -p "$LOGS"
  cp "$WORK/operator.log" "$LOGS/operator-$1.log"
  cp "$WORK/apiserver.log" "$LOGS/apiserver-$1.log"
}
LEVELS=${N:-1000,10000}
K=${K:-200}
GAP_MS=${GAP_MS:-20}
read -ra mvn_flags <<<"${MVN_FLAGS:-}"
largest=$(tr ',' '\n' <<<"$LEVELS" | sort -n | tail -1)

# Every stream is a socket in the operator and one in the generator.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((largest + 1000)) ]; then
  echo "ulimit -n is $(ulimit -n); $largest streams need more (raise the hard limit)"; exit 1
fi

if [ "${BUILD:-auto}" = always ] || [ ! -f "$ROOT/operator/target/quarkus-app/quarkus-run.jar" ] ||
   [ ! -d "$ROOT/e2e/target/classes/io" ]; then
  note "building the operator and the embedded API server"
  (cd "$ROOT" && mvn -B -q "${mvn_flags[@]}" -pl operator,e2e -am package -DskipTests >"$WORK/build.log" 2>&1) || {
    cat "$WORK/build.log"; exit 1; }
fi
# Runtime scope: the API server needs none of e2e's test dependencies.
(cd "$ROOT" && mvn -B -q "${mvn_flags[@]}" -pl e2e dependency:build-classpath -Dmdep.includeScope=runtime \
  -Dmdep.outputFile="$WORK/e2e.classpath" >>"$WORK/build.log" 2>&1) || { cat "$WORK/build.log"; exit 1; }
javac -d "$WORK/agents" "$ROOT/bench/agents/AgentLoad.java"
load() { java -Xmx1g -cp "$WORK/agents" AgentLoad "$@"; }

# The image every MachineBoot runs: 256 KiB behind the squashfs magic, which is all the operator
# checks besides the digest, served on loopback for the operator to mirror.
mkdir -p "$WORK/images"
{ printf hsqs; head -c 262140 /dev/urandom; } >"$WORK/images/bench.squashfs"
IMAGE_SHA=$(sha256sum "$WORK/images/bench.squashfs" | cut -d' ' -f1)
image_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/images" "$image_port" >/dev/null 2>&1 &
PIDS+=($!)
IMAGE_URL="http://127.0.0.1:$image_port/bench.squashfs"

for n in ${LEVELS//,/ }; do
  note "---- $n agents"
  start_apiserver
  APISERVER_PID=${PIDS[-1]}
  load create --api "$API_URL" --n "$n" --image-url "$IMAGE_URL" --image-sha256 "$IMAGE_SHA"
  mkdir -p "$WORK/store-$n"
  # The store in the work dir; loopback only, and the image server on loopback allowed.
  JAVA_TOOL_OPTIONS="-Dcb.store.path=$WORK/store-$n -Dcb.bootstrap.dir=$WORK/bootstrap \
-Dcb.store.allowed-sources=127.0.0.1/32 \
-Dquarkus.http.host=127.0.0.1 ${OPERATOR_JAVA_OPTS:-}" start_operator
  wait_operator_http
  note "operator pid $OPERATOR_PID at $OPERATOR_URL"
  load streams --api "$API_URL" --n "$n" --operator "$OPERATOR_URL" --admin "$OPERATOR_ADMIN_URL" --pid "$OPERATOR_PID" \
    --changes "$K" --gap-ms "$GAP_MS" --fanout-results "$([ "$n" = "$largest" ] && echo true || echo false)" || {
    keep_logs "$n"
    echo "the load generator failed; operator log:"; grep -v '^\s*at \|^\s*\.\.\. [0-9]* more' "$WORK/operator.log" | tail -40
    exit 1; }
  keep_logs "$n"
  grep -E "WARN|ERROR" "$WORK/operator.log" |
    grep -v "unstable version\|Build time property\|build time fixed\|JAVA_TOOL_OPTIONS" |
    cut -c25- | sort | uniq -c | sort -rn | head -5 | sed 's/^/# operator log: /' >&2 || true
  kill "$OPERATOR_PID" "$APISERVER_PID"
  wait "$OPERATOR_PID" "$APISERVER_PID" 2>/dev/null || true
done
