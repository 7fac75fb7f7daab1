#!/usr/bin/env bash
# The NBD server of delivery Lazy: the agent's own (node-agent's agent.lazy, Java) against
# nbdkit's curl plugin, both serving the same image from an HTTP server on 127.0.0.1 (busybox
# httpd: ranges, one connection per request) to libnbd's nbdcopy (user space: no nbd module
# needed), in the same run. Prints the time to read the whole image through each, and what each
# adds to the initramfs. Needs: nbdkit, libnbd-bin, busybox, a built node-agent (mvn -pl
# node-agent -am package -DskipTests).
set -euo pipefail
SIZE_MB=${SIZE_MB:-256}
REQUEST=${REQUEST:-131072} # the kernel's default read-ahead
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
work=$(mktemp -d /tmp/cb-lazy-nbd.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for tool in nbdkit nbdcopy busybox java; do
  command -v "$tool" >/dev/null || { echo "lazy-nbd.sh: $tool is missing" >&2; exit 2; }
done
classes="$repo/node-agent/target/classes"
[ -d "$classes/io/chrootbooter/agent/lazy" ] || { echo "lazy-nbd.sh: build node-agent first" >&2; exit 2; }
logging=$(find ~/.m2/repository/org/jboss/logging/jboss-logging -name 'jboss-logging-*.Final.jar' | sort -V | tail -1)

mkdir -p "$work/www"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$work/www/image"
port=$(( (RANDOM % 2000) + 30000 ))
busybox httpd -f -p "127.0.0.1:$port" -h "$work/www" & pids+=($!)
sleep 0.5
url="http://127.0.0.1:$port/image"
length=$(stat -c %s "$work/www/image")

# copy URI: reads the whole export with nbdcopy, 4 requests of REQUEST bytes in flight.
copy() {
  local start end
  start=$(date +%s%N)
  nbdcopy --requests=4 --request-size="$REQUEST" "$1" "$work/out"
  end=$(date +%s%N)
  cmp -n "$length" "$work/out" "$work/www/image"
  echo $(( (end - start) / 1000000 ))
}

nbdkit -U "$work/nbdkit.sock" -f curl "url=$url" & pids+=($!)
for _ in $(seq 50); do [ -S "$work/nbdkit.sock" ] && break; sleep 0.1; done
: >"$work/out"
nbdkit_ms=$(copy "nbd+unix:///?socket=$work/nbdkit.sock")

mkfifo "$work/in"
java -cp "$classes:$logging" "$here/lazy/LazyNbdServe.java" "$url" "$work/agent.sock" "$length" \
  "$work/cache" <"$work/in" >"$work/agent.log" 2>&1 & pids+=($!)
exec 3>"$work/in"
for _ in $(seq 200); do grep -q ready "$work/agent.log" 2>/dev/null && break; sleep 0.1; done
: >"$work/out"
agent_ms=$(copy "nbd+unix:///lazy?socket=$work/agent.sock")
exec 3>&-

libs() { ldd "$@" 2>/dev/null | awk '$3 ~ /^\// {print $3}' | sort -u; }
plugin=$(nbdkit curl --dump-plugin | sed -n 's/^path=//p')
mapfile -t nbdkit_libs < <(libs "$(command -v nbdkit)" "$plugin")
nbdkit_bytes=$(du -cbL "$(command -v nbdkit)" "$plugin" "${nbdkit_libs[@]}" | tail -1 | cut -f1)
agent_bytes=$(du -cb "$classes"/io/chrootbooter/agent/lazy/*.class | tail -1 | cut -f1)
echo "RESULT lazy_nbd_read_${SIZE_MB}MiB_agent $agent_ms ms"
echo "RESULT lazy_nbd_read_${SIZE_MB}MiB_nbdkit_curl $nbdkit_ms ms"
echo "RESULT lazy_nbd_bytes_agent_classes $agent_bytes bytes"
echo "RESULT lazy_nbd_bytes_nbdkit_curl_with_libs $nbdkit_bytes bytes"
echo "SPEEDUP lazy_nbd_agent_vs_nbdkit $(awk -v a="$agent_ms" -v n="$nbdkit_ms" 'BEGIN {printf "%.2f", n / a}')"
