#!/bin/bash
# Image pipeline benchmark: the node agent, run as the bootstrap runs it, against the shell tools
# doing the same job, both downloading from the same nginx on 127.0.0.1. Every image is
# BENCH_SIZE_MB (default 1024) MiB.
#
#   sha256_vs_openssl        agent `fetch` of 1 GiB of random bytes    vs curl | openssl dgst -sha256
#   download_sha256_vs_curl  agent `fetch` of the tar image            vs curl | openssl dgst -sha256
#   tar_vs_curl_tar          agent `unpack --format tar` into tmpfs    vs curl | tar -x
#   targz_vs_curl_tar        agent `unpack --format tar.gz`            vs curl | tar -xz
#   tarzst_vs_curl_tar       agent `unpack --format tar.zst`           vs curl | tar --zstd -x
#   tarxz_vs_curl_tar        agent `unpack --format tar.xz`            vs curl | tar -xJ
#   squashfs_vs_curl_mount   agent `mount` (tmpfs overlay)             vs curl -o + sha256sum + mount -o loop
#
# The agent runs as machines run it (bench/bootstrap-runtime.bash): the jlink'ed runtime, the
# libraries and the class archive of the bootstrap build (node-agent/target/bootstrap, or
# BENCH_BOOTSTRAP), in a chroot of its initrds, with agent.conf's JVM flags and heap limit and the
# JIT mode its jit-mode chooses on this machine. It prints which runtime and flags it used. Without
# a bootstrap build it says so and runs the host's JDK.
#
# Each comparison runs the agent twice, in the same run: as it is ("ours": the bootstrap's JIT
# mode here, SHA-256 by libcrypto, xz by liblzma) and as it was ("before": C1 only, SHA-256 by
# MessageDigest, xz by tukaani; the same runtime otherwise). sha256_vs_openssl and
# tarxz_vs_curl_tar also run it as it is under QEMU's TCG ("c1": C1 only, libcrypto, liblzma):
# against "before", what the native SHA-256 and xz decoder do where the JIT is C1.
#
# The agent in a bootstrap is a long-running daemon: its JVM is up (and its code compiled) long
# before a download starts. So the agent's side runs each job BENCH_WARMUP + BENCH_RUNS times in
# one JVM (`--repeat`, each run's output undone untimed before the next) and its figure is the
# mean of the last BENCH_RUNS runs; the JVM start is not in it. The first run of that JVM (class
# loading, no JIT yet; still without the JVM start) is printed as `_ours_first`. The reference
# tools are timed by hyperfine in the same invocation (BENCH_RUNS runs after one warm-up), each
# run from a fresh process, as a shell user would run them.
#
# Prints `RESULT <name>_ours|_ours_first|_before|_c1|_reference <seconds> s`, `SPEEDUP <name> <x.xx>`
# and `SPEEDUP <name>_before|_c1 <x.xx>` (reference time divided by the agent's: > 1 means the agent is
# faster), and the load average before and after (on a shared machine the figures move with it).
# Needs root, nginx-light, curl, openssl, zstd, xz-utils, lz4, cpio, squashfs-tools, hyperfine,
# python3, and the agent built: mvn -B -q -pl node-agent -am package -DskipTests, then the
# bootstrap (node-agent/src/bootstrap/build.sh --app node-agent/target/quarkus-app
# --out node-agent/target/bootstrap, or mvn -B -pl node-agent -am -Pbootstrap package).
#
# Environment: BENCH_SIZE_MB (image size, default 1024), BENCH_RUNS (default 3), BENCH_WARMUP
# (default 2), BENCH_ONLY (run only the comparisons whose name contains it, e.g. targz),
# BENCH_BEFORE (no: skip the "before" runs), BENCH_BOOTSTRAP (a bootstrap build's output folder),
# BENCH_DIR (scratch parent, default /var/tmp), CB_JIT (c1|tiered: the JIT mode, as cb.jit=).
set -euo pipefail

size_mb=${BENCH_SIZE_MB:-1024}
runs=${BENCH_RUNS:-3}
warmup=${BENCH_WARMUP:-2}
only=${BENCH_ONLY:-}
before=${BENCH_BEFORE:-yes}
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench/download.sh: needs root (mounts, owners, chroot)" >&2; exit 2; }
for tool in nginx curl openssl zstd gzip xz lz4 cpio unshare mksquashfs hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "bench/download.sh: $tool not installed" >&2; exit 2; }
done
# shellcheck source=bench/bootstrap-runtime.bash
. "$here/bench/bootstrap-runtime.bash"

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
names="sha256_vs_openssl download_sha256_vs_curl tar_vs_curl_tar targz_vs_curl_tar tarzst_vs_curl_tar tarxz_vs_curl_tar squashfs_vs_curl_mount"
any=no
for n in $names; do if wants "$n"; then any=yes; fi; done
[ "$any" = yes ] || { echo "bench/download.sh: BENCH_ONLY=$only names none of: $names" >&2; exit 2; }

echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)" >&2

# --- the agent as the bootstrap starts it -----------------------------------------------------
bootstrap_runtime download.sh "$work"
# The two ways the agent runs: as it is, and as it was before SHA-256 and xz left the JIT.
ours_env="AGENT_JVM_FLAGS='$boot_flags' CB_SHA256_ENGINE=auto CB_XZ_ENGINE=auto"
before_env="AGENT_JVM_FLAGS='$boot_flags_c1' CB_SHA256_ENGINE=jdk CB_XZ_ENGINE=tukaani"
c1_env="AGENT_JVM_FLAGS='$boot_flags_c1' CB_SHA256_ENGINE=auto CB_XZ_ENGINE=auto"
log "ours:   $ours_env"
log "before: $before_env"

# --- the images: real files from /usr, about $size_mb MiB, and as many random bytes ----------
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
if wants sha256_vs_openssl; then head -c "$((size_mb << 20))" /dev/urandom > "$work/www/random"; fi
if wants targz; then gzip -1 -c "$work/www/image.tar" > "$work/www/image.tar.gz"; fi
if wants tarzst; then zstd -q -T0 -3 -c "$work/www/image.tar" > "$work/www/image.tar.zst"; fi
# xz -3: the decoder's speed hardly depends on the preset, the encoder's does (-6 takes minutes).
if wants tarxz; then xz -q -T0 -3 -c "$work/www/image.tar" > "$work/www/image.tar.xz"; fi
if wants squashfs; then
  tar -C "$work/tree" -xf "$work/www/image.tar"
  mksquashfs "$work/tree" "$work/www/image.squashfs" -quiet -noappend -comp lz4 >/dev/null
fi
rm -rf "$work/tree"
declare -A sha256
for f in "$work"/www/*; do
  f=$(basename "$f")
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

# agent_runs NAME LABEL ENV ARGS: the agent's job BENCH_WARMUP + BENCH_RUNS times in one JVM;
# the run times in $work/NAME-LABEL.err, the engines it logged on stderr.
agent_runs() {
  local name=$1 label=$2 env=$3 args=$4
  log "$name: the agent ($label), $((warmup + runs)) runs in one JVM"
  if ! (cd "$work" && eval "$env $boot_agent $args --repeat $((warmup + runs))") > "$work/$name-$label.out" 2> "$work/$name-$label.err"; then
    cat "$work/$name-$label.out" "$work/$name-$label.err" >&2
    exit 1
  fi
  # Quarkus logs to stdout: which SHA-256 and xz the agent used.
  grep -hoE '(SHA-256|xz) by .*' "$work/$name-$label.out" "$work/$name-$label.err" | sort -u | sed 's/^/#   /' >&2
  grep -E '^run [0-9]+ of ' "$work/$name-$label.err" | sed 's/^/#   /' >&2
}

# bench NAME ARGS REFERENCE PREPARE [c1]: the agent's job as it is and as it was, the reference
# under hyperfine; prints the RESULT and SPEEDUP lines. With c1, also the agent as it is under
# QEMU's TCG (C1 only, libcrypto, liblzma) as `NAME_c1`: against `_before` (C1 only, MessageDigest,
# tukaani) it shows what the native SHA-256 and xz do where the JIT is C1.
bench() {
  local name=$1 args=$2 ref=$3 prepare=$4 extra=${5:-}
  wants "$name" || return 0
  eval "$prepare"
  agent_runs "$name" ours "$ours_env" "$args"
  eval "$prepare"
  if [ "$before" = yes ]; then
    agent_runs "$name" before "$before_env" "$args"
    eval "$prepare"
  fi
  if [ "$extra" = c1 ]; then
    agent_runs "$name" c1 "$c1_env" "$args"
    eval "$prepare"
  fi
  log "$name: the reference: $ref"
  hyperfine --style none --runs "$runs" --warmup 1 --prepare "$prepare" \
    --export-json "$work/$name.json" -n reference "$ref" >&2
  python3 - "$work" "$name" "$runs" <<'PY'
import json, os, re, sys
work, name, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
reference = json.load(open(f"{work}/{name}.json"))["results"][0]["mean"]
def times(label):
    path = f"{work}/{name}-{label}.err"
    if not os.path.exists(path):
        return None
    return [float(m.group(1)) for m in re.finditer(r"^run \d+ of \d+: ([0-9.]+) s$", open(path).read(), re.M)]
ours = times("ours")
print(f"RESULT {name}_ours {sum(ours[-runs:]) / runs:.3f} s")
print(f"RESULT {name}_ours_first {ours[0]:.3f} s")
others = {label: times(label) for label in ("before", "c1")}
for label, t in others.items():
    if t:
        print(f"RESULT {name}_{label} {sum(t[-runs:]) / runs:.3f} s")
print(f"RESULT {name}_reference {reference:.3f} s")
print(f"SPEEDUP {name} {reference / (sum(ours[-runs:]) / runs):.2f}")
for label, t in others.items():
    if t:
        print(f"SPEEDUP {name}_{label} {reference / (sum(t[-runs:]) / runs):.2f}")
PY
}

out="$work/ram/out"
# Undo one run: the overlay first, then what is below it. Not-mounted paths are fine.
reset="umount -q $work/ram/root 2>/dev/null || true; for m in $work/ram/ovl/lower $work/ram/ovl/rw $work/ram/root.cb/lower $work/ram/root.cb/rw; do umount -q \$m 2>/dev/null || true; done; rm -rf $out $work/ram/img $work/ram/root $work/ram/root.cb $work/ram/ovl"

bench sha256_vs_openssl \
  "fetch --sha256 ${sha256[random]:-} $url/random" \
  "curl -sf $url/random | openssl dgst -sha256" \
  "$reset" c1

bench download_sha256_vs_curl \
  "fetch --sha256 ${sha256[image.tar]} $url/image.tar" \
  "curl -sf $url/image.tar | openssl dgst -sha256" \
  "$reset"

bench tar_vs_curl_tar \
  "unpack --format tar --sha256 ${sha256[image.tar]} --into $out $url/image.tar" \
  "mkdir -p $out && curl -sf $url/image.tar | tar -x -C $out" \
  "$reset"

bench targz_vs_curl_tar \
  "unpack --format tar.gz --sha256 ${sha256[image.tar.gz]:-} --into $out $url/image.tar.gz" \
  "mkdir -p $out && curl -sf $url/image.tar.gz | tar -xz -C $out" \
  "$reset"

bench tarzst_vs_curl_tar \
  "unpack --format tar.zst --sha256 ${sha256[image.tar.zst]:-} --into $out $url/image.tar.zst" \
  "mkdir -p $out && curl -sf $url/image.tar.zst | tar --zstd -x -C $out" \
  "$reset"

bench tarxz_vs_curl_tar \
  "unpack --format tar.xz --sha256 ${sha256[image.tar.xz]:-} --into $out $url/image.tar.xz" \
  "mkdir -p $out && curl -sf $url/image.tar.xz | tar -xJ -C $out" \
  "$reset" c1

# The reference mounts squashfs + tmpfs + overlay like the agent's default (overlay: tmpfs).
bench squashfs_vs_curl_mount \
  "mount --sha256 ${sha256[image.squashfs]:-} --overlay tmpfs --cache $work/ram/img --into $work/ram/root $url/image.squashfs" \
  "curl -sf -o $work/ram/img $url/image.squashfs && sha256sum $work/ram/img >/dev/null && mkdir -p $work/ram/ovl/lower $work/ram/ovl/rw $work/ram/root && mount -o loop,ro -t squashfs $work/ram/img $work/ram/ovl/lower && mount -t tmpfs cb-upper $work/ram/ovl/rw && mkdir $work/ram/ovl/rw/upper $work/ram/ovl/rw/work && mount -t overlay overlay -o lowerdir=$work/ram/ovl/lower,upperdir=$work/ram/ovl/rw/upper,workdir=$work/ram/ovl/rw/work $work/ram/root" \
  "$reset"
eval "$reset"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
