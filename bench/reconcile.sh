#!/usr/bin/env bash
# Time from operator start to all N MachineBoots reconciled (status.observedGeneration equal to
# metadata.generation), against the embedded Kubernetes API. Target: 10,000 in < 60 s.
# Reference in the same run: one plain client writing the same N status patches back to back,
# the least work any reconciler has to get through the same API server.
# shellcheck source=bench/control-plane-lib.bash
source "$(dirname "$0")/control-plane-lib.bash"
N=${N:-10000}

build
start_apiserver
create_machineboots "$N"

start=$(date +%s.%N)
start_operator
deadline=$((SECONDS + 300))
while :; do
  done_count=$(count_reconciled || echo 0)
  [ "$done_count" -ge "$N" ] && break
  if [ $SECONDS -gt $deadline ]; then echo "only $done_count of $N reconciled after 300 s"; tail -30 "$WORK/operator.log"; exit 1; fi
  sleep 0.5
done
elapsed=$(echo "$(date +%s.%N) - $start" | bc -l)

kill "$OPERATOR_PID"; wait "$OPERATOR_PID" 2>/dev/null || true

ref_start=$(date +%s.%N)
python3 - "$API_URL" "$N" <<'PY'
import http.client, json, sys, urllib.parse
url, n = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection(url.hostname, url.port)
g = "/apis/boot.chrootbooter.io/v1alpha1/namespaces/bench/machineboots/"
for i in range(n):
    body = json.dumps({"status": {"phase": "Pending", "observedGeneration": 1}})
    c.request("PATCH", g + "m%05d/status" % i, body, {"Content-Type": "application/merge-patch+json"})
    r = c.getresponse(); r.read()
    if r.status >= 300: sys.exit(f"PATCH {i}: {r.status}")
PY
ref_s=$(echo "$(date +%s.%N) - $ref_start" | bc -l)

printf 'RESULT reconcile_%dk %.1f s\n' "$((N / 1000))" "$elapsed"
printf 'RESULT sequential_status_writes_%dk %.1f s\n' "$((N / 1000))" "$ref_s"
printf 'SPEEDUP reconcile_vs_sequential_status_writes %.2f\n' "$(echo "$ref_s / $elapsed" | bc -l)"
