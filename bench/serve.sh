#!/usr/bin/env bash
# Image serving: the operator and nginx (sendfile on) serve the same file on loopback, with wrk
# at concurrency 1, 8 and 64, in the same run. Prints each throughput, the ratio (ours ÷ nginx's)
# and the operator's peak RSS. Targets: >= 0.9x nginx at every concurrency, RSS flat.
#
# RSS flat means: not growing with the size of the file served. The operator serves a small
# (SMALL_MB) and a large (SIZE_MB) image in turn, each to 8 clients for DURATION, and its peak
# RSS (VmHWM) is read after each; the peak is reset in between (`echo 5 > /proc/PID/clear_refs`,
# proc(5)), so each figure belongs to one file size.
# shellcheck source=bench/control-plane-lib.bash
source "$(dirname "$0")/control-plane-lib.bash"
SIZE_MB=${SIZE_MB:-1024}
SMALL_MB=${SMALL_MB:-$((SIZE_MB / 4))}
DURATION=${DURATION:-15s}

note "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
build
start_apiserver

store="$WORK/store"
mkdir -p "$store/sha256"
chmod 755 "$store" "$store/sha256"
# put_image MB: a file of MB random megabytes in the store; prints its digest.
put_image() {
  note "writing a $1 MB image into the store"
  # A squashfs by its magic: the operator checks the format of what it mirrors (below).
  { printf hsqs; head -c "$(($1 * 1024 * 1024 - 4))" /dev/urandom; } >"$WORK/image"
  local digest; digest=$(openssl dgst -sha256 -r "$WORK/image" | cut -d' ' -f1)
  mv "$WORK/image" "$store/sha256/$digest"
  chmod 644 "$store/sha256/$digest"
  echo "$digest"
}
sha=$(put_image "$SIZE_MB")
small_sha=$(put_image "$SMALL_MB")

port=$(free_port)
admin_port=$(free_port)
# The images are served only to enrolled machines whose MachineBoot names them: two BootImages
# whose source is the store itself on 127.0.0.2 (the mirror finds each digest stored already),
# and one machine per image, enrolled with the nonce of its iPXE script.
note "starting the operator"
java -Dquarkus.http.port="$port" \
  -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$admin_port" \
  -Dquarkus.kubernetes-client.api-server-url="$API_URL" \
  -Dquarkus.kubernetes-client.namespace=default \
  -Dcb.store.path="$store" -Dcb.bootstrap.dir="$WORK" -Dcb.store.allowed-sources=127.0.0.2/32 \
  -jar "$ROOT/operator/target/quarkus-app/quarkus-run.jar" >"$WORK/operator.log" 2>&1 &
PIDS+=($!)
OPERATOR_PID=$!
OPERATOR_URL="http://127.0.0.1:$port"
OPERATOR_ADMIN_URL="http://127.0.0.1:$admin_port"
wait_operator_http
# Picked once the operator holds its ports, so that it cannot be handed one of them.
source_port=$(free_port)
mkdir -p "$WORK/source"
for digest in "$sha" "$small_sha"; do ln -sf "$store/sha256/$digest" "$WORK/source/$digest.squashfs"; done
python3 -m http.server --bind 127.0.0.2 --directory "$WORK/source" "$source_port" >/dev/null 2>&1 &
PIDS+=($!)
note "enrolling a machine for each image"
python3 - "$API_URL" "$OPERATOR_URL" "http://127.0.0.2:$source_port" "$sha" "$small_sha" >"$WORK/sessions" <<'PY' ||
import http.client, json, re, sys, time, urllib.parse, urllib.request
api, operator, source, large, small = sys.argv[1:6]
url = urllib.parse.urlparse(api)
c = http.client.HTTPConnection(url.hostname, url.port)
def post(path, body):
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status >= 300 and r.status != 409: sys.exit(f"POST {path}: {r.status}")
g = "/apis/boot.chrootbooter.io/v1alpha1/namespaces/bench"
post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
for i, (name, digest) in enumerate((("large", large), ("small", small))):
    post(g + "/bootimages", {"apiVersion": "boot.chrootbooter.io/v1alpha1", "kind": "BootImage",
         "metadata": {"name": name}, "spec": {"source": {"url": f"{source}/{digest}.squashfs"}, "sha256": digest}})
    post(g + "/machineboots", {"apiVersion": "boot.chrootbooter.io/v1alpha1", "kind": "MachineBoot",
         "metadata": {"name": f"serve-{name}"}, "spec": {"macAddress": f"52:54:00:5e:00:0{i}", "imageRef": name}})
for i, digest in enumerate((large, small)):
    mac = f"52:54:00:5e:00:0{i}"
    for _ in range(240):  # until the image is Ready and named in the machine's script
        script = urllib.request.urlopen(f"{operator}/boot/{mac}.ipxe").read().decode()
        if f"/images/{digest} " in script: break
        time.sleep(0.5)
    else: sys.exit(f"{mac}: the script never named image {digest}")
    nonce = re.search(r" cb\.nonce=(\S+)", script).group(1)
    req = urllib.request.Request(f"{operator}/agent/v1/machines/{mac}/enroll", method="POST",
        data=json.dumps({"nonce": nonce, "bootId": f"serve-{i}"}).encode(), headers={"Content-Type": "application/json"})
    print(json.load(urllib.request.urlopen(req))["session"])
PY
  { echo "could not enrol the machines"; tail -20 "$WORK/operator.log"; exit 1; }
large_auth="Authorization: Bearer $(sed -n 1p "$WORK/sessions")"
small_auth="Authorization: Bearer $(sed -n 2p "$WORK/sessions")"
curl -sf -o /dev/null -H "$large_auth" "$OPERATOR_URL/images/$sha" || { echo "the operator does not serve the image"; tail -20 "$WORK/operator.log"; exit 1; }
curl -sf -o /dev/null -H "$small_auth" "$OPERATOR_URL/images/$small_sha" || { echo "the operator does not serve the small image"; exit 1; }

rss_mb() { awk '/VmHWM/ {print $2 / 1024}' /proc/"$OPERATOR_PID"/status; }
# Peak RSS while serving each size, small first: growth with size would show in the large one.
for size in "$SMALL_MB:$small_sha:$small_auth" "$SIZE_MB:$sha:$large_auth"; do
  echo 5 >/proc/"$OPERATOR_PID"/clear_refs
  note "peak RSS while serving the ${size%%:*} MB image to 8 clients"
  digest=${size#*:}; digest=${digest%%:*}
  wrk -t2 -c8 -d"$DURATION" -H "${size#*:*:}" "$OPERATOR_URL/images/$digest" >"$WORK/rss-${size%%:*}.txt"
  printf 'RESULT serve_rss_mb_%d %.0f MB\n' "${size%%:*}" "$(rss_mb)"
done
echo 5 >/proc/"$OPERATOR_PID"/clear_refs

start_nginx "location /images/ { alias $store/sha256/; default_type application/octet-stream; }"
for _ in $(seq 100); do curl -sf -o /dev/null "$NGINX_URL/images/$sha" && break; sleep 0.1; done

mbps() { # wrk's "Transfer/sec" in MB/s
  awk '/^Transfer\/sec/ { v = $2; if (v ~ /GB$/) { sub(/GB/, "", v); v *= 1024 } else if (v ~ /MB$/) { sub(/MB/, "", v) } else if (v ~ /KB$/) { sub(/KB/, "", v); v /= 1024 } print v }' "$1"
}
for c in 1 8 64; do
  threads=$(( c < 2 ? 1 : 2 ))
  note "concurrency $c"
  wrk -t"$threads" -c"$c" -d"$DURATION" "$NGINX_URL/images/$sha" >"$WORK/nginx-c$c.txt"
  wrk -t"$threads" -c"$c" -d"$DURATION" -H "$large_auth" "$OPERATOR_URL/images/$sha" >"$WORK/operator-c$c.txt"
  ours=$(mbps "$WORK/operator-c$c.txt"); ref=$(mbps "$WORK/nginx-c$c.txt")
  printf 'RESULT serve_c%d %.0f MB/s\n' "$c" "$ours"
  printf 'RESULT nginx_c%d %.0f MB/s\n' "$c" "$ref"
  printf 'SPEEDUP serve_c%d_vs_nginx %.2f\n' "$c" "$(echo "$ours / $ref" | bc -l)"
done
# The peak over the throughput runs above (the large image at concurrency 1, 8 and 64).
printf 'RESULT serve_rss_mb %.0f MB\n' "$(rss_mb)"
note "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
