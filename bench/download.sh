#!/bin/bash
# Image pipeline benchmark: the node agent against the shell tools doing the same job,
# both downloading from the same nginx on 127.0.0.1.
#
#   download + SHA-256       agent `fetch`                vs curl | openssl dgst -sha256
#   tar.gz into tmpfs        agent `unpack --format tar.gz` vs curl | tar -xz
#   tar.zst into tmpfs       agent `unpack --format tar.zst` vs curl | tar --zstd -x
#   squashfs verify + mount  agent `mount` (tmpfs overlay)  vs curl -o + sha256sum + mount -o loop
#   hash (SHA-256 alone)     agent `fetch` of a file       vs openssl dgst -sha256 of that file
#
# The agent in a bootstrap is a long-running daemon: its JVM is up (and its code compiled) long
# before a download starts. So the agent's side runs each job BENCH_WARMUP + BENCH_RUNS times in
# one JVM (`--repeat`, each run's output undone untimed before the next) and its figure is the
# mean of the last BENCH_RUNS runs; the JVM start is not in it. The first run of that JVM (class
# loading, interpreter, no JIT yet; still without the JVM start) is printed as `_ours_first`.
# The reference tools are timed by hyperfine in the same invocation (BENCH_RUNS runs after one
# warm-up), each run from a fresh process, as a shell user would run them.
#
# The agent runs as the bootstrap starts it on this machine: the JVM flags of build.sh, with
# -XX:TieredStopAtLevel=1 where src/bootstrap/jit-mode says c1 (QEMU's TCG; CB_JIT=c1|tiered
# overrides it as cb.jit= does at boot), and SHA-256 by libcrypto unless CB_SHA256_ENGINE says
# otherwise.
#
# Prints `RESULT <name> <seconds> s` for every timing and `SPEEDUP <name> <x.xx>` (reference time
# divided by ours: > 1 means the agent is faster). The hash comparison hashes a BENCH_HASH_MB file
# in a tmpfs with libcrypto in the bootstrap's JIT mode and with C1 only, and with MessageDigest
# C1 only and tiered, and prints each as `RESULT sha256_<engine>[_<jit>] <n> MB/s` (10^6 bytes)
# next to `RESULT sha256_openssl`, then `SPEEDUP sha256_vs_openssl` (libcrypto in the
# bootstrap's mode against openssl) and `SPEEDUP sha256_native_vs_messagedigest_c1`.
# Needs root, nginx-light, curl, openssl, zstd, squashfs-tools, hyperfine, and the agent built:
# mvn -B -q -pl node-agent -am package -DskipTests
#
# Environment: BENCH_SIZE_MB (image size, default 700), BENCH_HASH_MB (hashed file, default
# 1024), BENCH_RUNS (default 3), BENCH_WARMUP (default 2), BENCH_ONLY (run only the comparisons
# whose name contains it, e.g. targz, or hash), BENCH_JAVA (default java), BENCH_JVM_FLAGS
# (default: the bootstrap's, see above), BENCH_DIR (scratch parent, default /var/tmp).
set -euo pipefail

size_mb=${BENCH_SIZE_MB:-700}
hash_mb=${BENCH_HASH_MB:-1024}
runs=${BENCH_RUNS:-3}
warmup=${BENCH_WARMUP:-2}
only=${BENCH_ONLY:-}
java=${BENCH_JAVA:-java}
here=$(cd "$(dirname "$0")/.." && pwd)
jar="$here/node-agent/target/quarkus-app/quarkus-run.jar"
[ "$(id -u)" = 0 ] || { echo "bench/download.sh: needs root (mounts, owners)" >&2; exit 2; }
[ -f "$jar" ] || { echo "bench/download.sh: $jar missing; build with mvn -B -q -pl node-agent -am package -DskipTests" >&2; exit 2; }
for tool in nginx curl openssl zstd gzip mksquashfs hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "bench/download.sh: $tool not installed" >&2; exit 2; }
done

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/cb-bench.XXXXXX")
nginx_pid=""
cleanup() {
  set +e
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  # Innermost mounts first: overlay, then its tmpfs/squashfs lowers, then the scratch tmpfs.
  if [ -d "$work" ]; then
    grep -F " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount "$m"; done
    rm -rf "$work"
  fi
}
# shellcheck disable=SC2154 # rc is assigned first thing in the trap
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM

log() { echo "# $*" >&2; }
wants() { [ -z "$only" ] || [[ "$1" == *"$only"* ]]; }

# --- the agent as the bootstrap starts it -----------------------------------------------------
# With the AppCDS archive the build makes (quarkus.package.jar.appcds.enabled), as the agent
# runs; the archive records the class path relative to the quarkus-app directory.
app=$(dirname "$jar")
# The bootstrap's JVM flags (serial GC, a 48 MiB heap, ...) from src/bootstrap/build.sh, and its
# JIT mode on this machine (src/bootstrap/jit-mode), unless BENCH_JVM_FLAGS says otherwise.
boot_flags=$(CB_AGENT_XMX=48m bash -c "$(grep '^jvm_flags=' "$here/node-agent/src/bootstrap/build.sh"); echo \"\$jvm_flags\"")
boot_flags=${boot_flags/-XX:TieredStopAtLevel=1 /}
if [ -z "${BENCH_JVM_FLAGS+set}" ]; then
  [ -e /dev/cpu/0/cpuid ] || modprobe cpuid 2>/dev/null || true
  jit=$(sh "$here/node-agent/src/bootstrap/jit-mode")
  log "JIT: $jit (src/bootstrap/jit-mode, as the bootstrap decides on this machine)"
  BENCH_JVM_FLAGS=$boot_flags
  if [ "${jit%% *}" = c1 ]; then BENCH_JVM_FLAGS="-XX:TieredStopAtLevel=1 $BENCH_JVM_FLAGS"; fi
fi
log "agent JVM flags: $BENCH_JVM_FLAGS"
# agent_cmd FLAGS: the command line that starts the agent with those JVM flags.
agent_cmd() {
  if [ -f "$app/app-cds.jsa" ]; then
    echo "cd $app && $java $1 -XX:SharedArchiveFile=app-cds.jsa -Xshare:auto -jar quarkus-run.jar"
  else
    echo "$java $1 -jar $jar"
  fi
}
agent=$(agent_cmd "$BENCH_JVM_FLAGS")

echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# --- hash: SHA-256 alone, of a file in RAM ----------------------------------------------------
# The agent's `fetch` of a file reads it on one thread and hashes it (ImageStream) on another;
# openssl reads and hashes on one. Each engine and JIT mode in its own JVM, BENCH_WARMUP +
# BENCH_RUNS runs, the mean of the last BENCH_RUNS.
if wants hash; then
  mkdir -p "$work/hash"
  mount -t tmpfs -o size=$((hash_mb + 16))m cb-bench-hash "$work/hash"
  log "hash: a ${hash_mb} MiB file of random bytes in a tmpfs"
  head -c "$((hash_mb << 20))" /dev/urandom > "$work/hash/data"
  hash_sum=$(openssl dgst -sha256 -r "$work/hash/data" | cut -d' ' -f1)
  # hash_agent NAME ENGINE FLAGS: RESULT sha256_NAME in MB/s.
  hash_agent() {
    log "hash: sha256_$1 (CB_SHA256_ENGINE=$2, $3), $((warmup + runs)) runs in one JVM"
    if ! (export CB_SHA256_ENGINE="$2" && cd "$work" && eval "$(agent_cmd "$3") fetch --sha256 $hash_sum --repeat $((warmup + runs)) $work/hash/data") \
        > "$work/hash-$1.out" 2> "$work/hash-$1.err"; then
      cat "$work/hash-$1.out" "$work/hash-$1.err" >&2
      exit 1
    fi
    # The engine the agent logged (Quarkus logs to stdout), then the runs.
    grep -ho 'SHA-256 by .*' "$work/hash-$1.out" "$work/hash-$1.err" | head -1 >&2
    grep -E '^run [0-9]+ of ' "$work/hash-$1.err" >&2
    python3 - "$work/hash-$1.err" "$1" "$runs" "$((hash_mb << 20))" <<'PY'
import re, sys
times = [float(m.group(1)) for m in re.finditer(r"^run \d+ of \d+: ([0-9.]+) s$", open(sys.argv[1]).read(), re.M)]
name, runs, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
print(f"RESULT sha256_{name} {size / (sum(times[-runs:]) / runs) / 1e6:.0f} MB/s")
PY
  }
  hash_agent native libcrypto "$BENCH_JVM_FLAGS" | tee "$work/hash-results"
  hash_agent native_c1 libcrypto "-XX:TieredStopAtLevel=1 $boot_flags" | tee -a "$work/hash-results"
  hash_agent messagedigest_c1 jdk "-XX:TieredStopAtLevel=1 $boot_flags" | tee -a "$work/hash-results"
  hash_agent messagedigest_tiered jdk "$boot_flags" | tee -a "$work/hash-results"
  log "hash: sha256_openssl (openssl dgst -sha256)"
  hyperfine --style none --runs "$runs" --warmup 1 --export-json "$work/hash-openssl.json" \
    -n openssl "openssl dgst -sha256 $work/hash/data" >&2
  python3 - "$work/hash-openssl.json" "$work/hash-results" "$((hash_mb << 20))" <<'PY'
import json, sys
openssl = int(sys.argv[3]) / json.load(open(sys.argv[1]))["results"][0]["mean"] / 1e6
ours = {l.split()[1]: float(l.split()[2]) for l in open(sys.argv[2]) if l.startswith("RESULT ")}
print(f"RESULT sha256_openssl {openssl:.0f} MB/s")
print(f"SPEEDUP sha256_vs_openssl {ours['sha256_native'] / openssl:.2f}")
print(f"SPEEDUP sha256_native_vs_messagedigest_c1 {ours['sha256_native'] / ours['sha256_messagedigest_c1']:.2f}")
PY
  umount "$work/hash"
fi
images=no
for n in download_sha256_vs_curl targz_vs_curl_tar tarzst_vs_curl_tar squashfs_vs_curl_mount; do
  if wants "$n"; then images=yes; fi
done
if [ "$images" = no ]; then
  echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  exit 0
fi

# --- the image: real files from /usr, about $size_mb MiB ------------------------------------
log "building a ${size_mb} MiB image from /usr files in $work"
mkdir -p "$work/www" "$work/tree"
find /usr/lib /usr/share /usr/bin -xdev -type f -printf '%s %p\n' > "$work/all-files" 2>/dev/null || true
python3 -c '
import sys
limit = int(sys.argv[1]) << 20
total = 0
for line in sys.stdin:
    size, path = line.rstrip("\n").split(" ", 1)
    if "\\" in path or "\n" in path:
        continue
    total += int(size)
    print(path.lstrip("/"))
    if total >= limit:
        break
' "$size_mb" < "$work/all-files" > "$work/files"
tar -C / --no-recursion -cf "$work/www/image.tar" -T "$work/files"
tar -C "$work/tree" -xf "$work/www/image.tar"
gzip -1 -c "$work/www/image.tar" > "$work/www/image.tar.gz"
zstd -q -T0 -3 -c "$work/www/image.tar" > "$work/www/image.tar.zst"
mksquashfs "$work/tree" "$work/www/image.squashfs" -quiet -noappend -comp lz4 >/dev/null
rm -rf "$work/tree"
declare -A sha256
for f in image.tar image.tar.gz image.tar.zst image.squashfs; do
  sha=$(openssl dgst -sha256 -r "$work/www/$f" | cut -d' ' -f1)
  sha256[$f]=$sha
  log "$f: $(stat -c %s "$work/www/$f") bytes, sha256 $sha"
done

# --- nginx on loopback ------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
daemon off;
worker_processes 1;
user root;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  types { }
  default_type application/octet-stream;
  client_body_temp_path $work/nginx-tmp;
  proxy_temp_path $work/nginx-tmp;
  fastcgi_temp_path $work/nginx-tmp;
  uwsgi_temp_path $work/nginx-tmp;
  scgi_temp_path $work/nginx-tmp;
  server {
    listen 127.0.0.1:$port;
    root $work/www;
  }
}
CONF
mkdir -p "$work/nginx-tmp"
nginx -c "$work/nginx.conf" -e "$work/nginx-error.log" &
nginx_pid=$!
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/image.tar" -r 0-0 && break; sleep 0.1; done
url="http://127.0.0.1:$port"
# Warm the page cache so both sides read the image from RAM.
cat "$work"/www/* > /dev/null

# --- scratch tmpfs for extraction and squashfs files ------------------------------------------
mkdir -p "$work/ram"
mount -t tmpfs -o size=$(( size_mb * 5 ))m cb-bench "$work/ram"

# bench NAME OURS REFERENCE PREPARE: the agent's job repeated in one JVM, the reference under
# hyperfine; prints the RESULT and SPEEDUP lines.
bench() {
  local name=$1 ours=$2 ref=$3 prepare=$4
  wants "$name" || return 0
  eval "$prepare"
  log "$name: the agent, $((warmup + runs)) runs in one JVM"
  if ! (eval "$ours --repeat $((warmup + runs))") > /dev/null 2> "$work/$name.err"; then
    cat "$work/$name.err" >&2
    exit 1
  fi
  grep -E '^run [0-9]+ of ' "$work/$name.err" >&2
  eval "$prepare"
  log "$name: the reference"
  hyperfine --style none --runs "$runs" --warmup 1 --prepare "$prepare" \
    --export-json "$work/$name.json" -n reference "$ref" >&2
  python3 - "$work/$name.json" "$work/$name.err" "$name" "$runs" <<'PY'
import json, re, sys
reference = json.load(open(sys.argv[1]))["results"][0]["mean"]
times = [float(m.group(1)) for m in re.finditer(r"^run \d+ of \d+: ([0-9.]+) s$", open(sys.argv[2]).read(), re.M)]
name, runs = sys.argv[3], int(sys.argv[4])
ours = sum(times[-runs:]) / runs
print(f"RESULT {name}_ours {ours:.3f} s")
print(f"RESULT {name}_ours_first {times[0]:.3f} s")
print(f"RESULT {name}_reference {reference:.3f} s")
print(f"SPEEDUP {name} {reference / ours:.2f}")
PY
}

out="$work/ram/out"
# Undo one run: the overlay first, then what is below it. Not-mounted paths are fine.
reset="umount -q $work/ram/root 2>/dev/null || true; for m in $work/ram/ovl/lower $work/ram/ovl/rw $work/ram/root.cb/lower $work/ram/root.cb/rw; do umount -q \$m 2>/dev/null || true; done; rm -rf $out $work/ram/img $work/ram/root $work/ram/root.cb $work/ram/ovl"

bench download_sha256_vs_curl \
  "$agent fetch --sha256 ${sha256[image.tar]} $url/image.tar" \
  "curl -sf $url/image.tar | openssl dgst -sha256" \
  "$reset"

bench targz_vs_curl_tar \
  "$agent unpack --format tar.gz --sha256 ${sha256[image.tar.gz]} --into $out $url/image.tar.gz" \
  "mkdir -p $out && curl -sf $url/image.tar.gz | tar -xz -C $out" \
  "$reset"

bench tarzst_vs_curl_tar \
  "$agent unpack --format tar.zst --sha256 ${sha256[image.tar.zst]} --into $out $url/image.tar.zst" \
  "mkdir -p $out && curl -sf $url/image.tar.zst | tar --zstd -x -C $out" \
  "$reset"

# The reference mounts squashfs + tmpfs + overlay like the agent's default (overlay: tmpfs).
bench squashfs_vs_curl_mount \
  "$agent mount --sha256 ${sha256[image.squashfs]} --overlay tmpfs --cache $work/ram/img --into $work/ram/root $url/image.squashfs" \
  "curl -sf -o $work/ram/img $url/image.squashfs && sha256sum $work/ram/img >/dev/null && mkdir -p $work/ram/ovl/lower $work/ram/ovl/rw $work/ram/root && mount -o loop,ro -t squashfs $work/ram/img $work/ram/ovl/lower && mount -t tmpfs cb-upper $work/ram/ovl/rw && mkdir $work/ram/ovl/rw/upper $work/ram/ovl/rw/work && mount -t overlay overlay -o lowerdir=$work/ram/ovl/lower,upperdir=$work/ram/ovl/rw/upper,workdir=$work/ram/ovl/rw/work $work/ram/root" \
  "$reset"
eval "$reset"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
