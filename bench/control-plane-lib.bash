# shellcheck shell=bash
# Shared by the control-plane benchmarks: an embedded Kubernetes API (the fabric8 mock server
# of e2e/), the operator as users run it, and N MachineBoots. Everything started here is
# stopped by `cleanup`, which the scripts run on EXIT.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/cb-bench.XXXXXX)
chmod 755 "$WORK"   # nginx's workers run as an unprivileged user and read from here
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

note() { echo "# $(date +%T) $*" >&2; }

build() {
  note "building the operator and the embedded API server"
  # One reactor run: e2e's classpath names sibling modules, which resolve only within the reactor
  # that builds them (each module writes its own target/runtime.classpath).
  (cd "$ROOT" && mvn -B -q -pl operator,e2e -am package -DskipTests dependency:build-classpath \
    -Dmdep.includeScope=runtime -Dmdep.outputFile=target/runtime.classpath >"$WORK/build.log" 2>&1) || {
    cat "$WORK/build.log"; exit 1; }
  cp "$ROOT/e2e/target/runtime.classpath" "$WORK/e2e.classpath"
}

# start_apiserver: sets API_URL and KUBECONFIG_FILE.
start_apiserver() {
  note "starting the embedded API server"
  local port; port=$(free_port)
  KUBECONFIG_FILE="$WORK/kubeconfig"
  java -cp "$ROOT/e2e/target/classes:$(cat "$WORK/e2e.classpath")" \
    io.chrootbooter.e2e.apiserver.EmbeddedApiServer \
    --port "$port" --kubeconfig "$KUBECONFIG_FILE" --crds "$ROOT/crds" >"$WORK/apiserver.log" 2>&1 &
  PIDS+=($!)
  # shellcheck disable=SC2034 # read by the benchmarks that source this file
  API_PID=$!
  API_URL="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$API_URL/version" >/dev/null && return 0; sleep 0.2; done
  echo "embedded API server did not start:"; cat "$WORK/apiserver.log"; exit 1
}

# create_machineboots N: one BootImage and N MachineBoots in namespace bench.
create_machineboots() {
  note "creating $1 MachineBoots"
  python3 - "$API_URL" "$1" <<'PY'
import http.client, json, sys, urllib.parse
url, n = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection(url.hostname, url.port)
def post(path, body):
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status >= 300: sys.exit(f"POST {path}: {r.status}")
g = "/apis/boot.chrootbooter.io/v1alpha1/namespaces/bench"
post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
post(g + "/bootimages", {"apiVersion": "boot.chrootbooter.io/v1alpha1", "kind": "BootImage",
     "metadata": {"name": "debian-12"}, "spec": {"source": {"url": "http://images.lab.internal/debian-12.squashfs"},
     "sha256": "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"}})
for i in range(n):
    mac = "52:54:00:%02x:%02x:%02x" % (i >> 16 & 255, i >> 8 & 255, i & 255)
    post(g + "/machineboots", {"apiVersion": "boot.chrootbooter.io/v1alpha1", "kind": "MachineBoot",
         "metadata": {"name": "m%05d" % i}, "spec": {"macAddress": mac, "imageRef": "debian-12",
         "kernelArgs": ["systemd.show_status=1"]}})
PY
}

# count_reconciled: MachineBoots whose status describes their current generation.
count_reconciled() {
  curl -sf "$API_URL/apis/boot.chrootbooter.io/v1alpha1/namespaces/bench/machineboots" |
    jq '[.items[] | select(.status.observedGeneration != null and .status.observedGeneration == .metadata.generation)] | length'
}

# start_operator: sets OPERATOR_URL (the machine port) and OPERATOR_ADMIN_URL (the admin port:
# /q/health, /q/metrics).
start_operator() {
  note "starting the operator"
  local port admin_port; port=$(free_port); admin_port=$(free_port)
  # OPERATOR_JAVA_OPTS: extra JVM options, such as -XX:StartFlightRecording=... to profile a run.
  # shellcheck disable=SC2086
  java ${OPERATOR_JAVA_OPTS:-} -Dquarkus.http.port="$port" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$admin_port" \
    -Dquarkus.kubernetes-client.api-server-url="$API_URL" \
    -Dquarkus.kubernetes-client.namespace=default \
    -jar "$ROOT/operator/target/quarkus-app/quarkus-run.jar" >"$WORK/operator.log" 2>&1 &
  PIDS+=($!)
  # shellcheck disable=SC2034 # read by the benchmarks that source this file
  OPERATOR_PID=$!
  # shellcheck disable=SC2034 # read by the benchmarks that source this file
  OPERATOR_URL="http://127.0.0.1:$port"
  OPERATOR_ADMIN_URL="http://127.0.0.1:$admin_port"
}

wait_operator_http() {
  for _ in $(seq 300); do
    curl -sf "$OPERATOR_ADMIN_URL/q/health/live" >/dev/null && return 0; sleep 0.2
  done
  echo "operator did not start:"; tail -50 "$WORK/operator.log"; exit 1
}

# start_nginx LOCATION_BLOCK: nginx on a free loopback port with sendfile; sets NGINX_URL.
# NGINX_WORKERS (default 2) sets worker_processes; NGINX_CPU, when set, pins nginx to that CPU.
start_nginx() {
  local port; port=$(free_port)
  mkdir -p "$WORK/nginx/logs"
  cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off;
worker_processes ${NGINX_WORKERS:-2};
error_log $WORK/nginx/logs/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  server {
    listen 127.0.0.1:$port;
    $1
  }
}
CONF
  ${NGINX_CPU:+taskset -c "$NGINX_CPU"} nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
  PIDS+=($!)
  # shellcheck disable=SC2034 # read by the benchmarks that source this file
  NGINX_PID=$!
  # shellcheck disable=SC2034 # read by the benchmarks that source this file
  NGINX_URL="http://127.0.0.1:$port"
}
