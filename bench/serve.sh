#!/usr/bin/env bash
# Image serving: the operator and nginx (sendfile on) serve the same file on loopback, with wrk
# at concurrency 1, 8 and 64, in the same run. Prints each throughput, the ratio (ours ÷ nginx's)
# and the operator's peak RSS. Targets: >= 0.9x nginx at every concurrency, RSS flat.
source "$(dirname "$0")/control-plane-lib.bash"
SIZE_MB=${SIZE_MB:-1024}
DURATION=${DURATION:-15s}

build
start_apiserver

note "writing a $SIZE_MB MB image into the store"
store="$WORK/store"
mkdir -p "$store/sha256"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$WORK/image"
sha=$(openssl dgst -sha256 -r "$WORK/image" | cut -d' ' -f1)
mv "$WORK/image" "$store/sha256/$sha"
chmod 644 "$store/sha256/$sha"
chmod 755 "$store" "$store/sha256"

port=$(free_port)
note "starting the operator"
java -Dquarkus.http.port="$port" \
  -Dquarkus.kubernetes-client.api-server-url="$API_URL" \
  -Dquarkus.kubernetes-client.namespace=default \
  -Dcb.store.path="$store" -Dcb.bootstrap.dir="$WORK" \
  -jar "$ROOT/operator/target/quarkus-app/quarkus-run.jar" >"$WORK/operator.log" 2>&1 &
PIDS+=($!)
OPERATOR_PID=$!
OPERATOR_URL="http://127.0.0.1:$port"
wait_operator_http
curl -sf -o /dev/null "$OPERATOR_URL/images/$sha" || { echo "the operator does not serve the image"; tail -20 "$WORK/operator.log"; exit 1; }

start_nginx "location /images/ { alias $store/sha256/; default_type application/octet-stream; }"
for _ in $(seq 100); do curl -sf -o /dev/null "$NGINX_URL/images/$sha" && break; sleep 0.1; done

mbps() { # wrk's "Transfer/sec" in MB/s
  awk '/^Transfer\/sec/ { v = $2; if (v ~ /GB$/) { sub(/GB/, "", v); v *= 1024 } else if (v ~ /MB$/) { sub(/MB/, "", v) } else if (v ~ /KB$/) { sub(/KB/, "", v); v /= 1024 } print v }' "$1"
}
for c in 1 8 64; do
  threads=$(( c < 2 ? 1 : 2 ))
  note "concurrency $c"
  wrk -t"$threads" -c"$c" -d"$DURATION" "$NGINX_URL/images/$sha" >"$WORK/nginx-c$c.txt"
  wrk -t"$threads" -c"$c" -d"$DURATION" "$OPERATOR_URL/images/$sha" >"$WORK/operator-c$c.txt"
  ours=$(mbps "$WORK/operator-c$c.txt"); ref=$(mbps "$WORK/nginx-c$c.txt")
  printf 'RESULT serve_c%d %.0f MB/s\n' "$c" "$ours"
  printf 'RESULT nginx_c%d %.0f MB/s\n' "$c" "$ref"
  printf 'SPEEDUP serve_c%d_vs_nginx %.2f\n' "$c" "$(echo "$ours / $ref" | bc -l)"
done
printf 'RESULT serve_rss_mb %.0f MB\n' "$(awk '/VmHWM/ {print $2 / 1024}' /proc/"$OPERATOR_PID"/status)"
