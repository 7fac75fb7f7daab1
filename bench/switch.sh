#!/bin/bash
# Switch benchmark: the node agent daemon (`node-agent run`) follows a desired-state
# stream on loopback and is told, N times, to run the other of two cached squashfs images. Each
# switch is the whole path a machine takes: the event arrives, the running target is asked to
# power off (graceful return: its init's power-off signal, then teardown of overlay, tmpfs,
# squashfs, loop device and cgroup), the next image is hashed again from the cache (a cached image
# is never trusted by its name), mounted, and its init is exec'd as PID 1 of new namespaces.
#
#   switch time  = event sent -> the next image's init has written /run/booted (polled every 1 ms)
#   return time  = the agent's own lastReturn.durationMillis of each SpecChange return (trigger ->
#                  bootstrap ready), graceful: the init exits on its power-off signal
#
# Reference, same images, same run: the same switch by hand in busybox sh with nothing around it
# (see REFERENCE below): `SPEEDUP switch_cached_p99` = reference p99 / ours.
#
# Prints `RESULT switch_cached_p50|p99 <ms> ms` and `RESULT return_graceful_p50|p99 <ms> ms`,
# then a leak check after the cycles (mounts, loop devices, cgroups): `LEAKS none` or exit 1.
#
# The cache check: every boot from the cache hashes the cached image again before it is mounted
# (its name is no proof: a target may have rewritten the cache disk). The agent logs each check
# ("cached image … hashed again in … ms"); the benchmark prints its median for the switch images
# and for a third image of BENCH_CHECK_MIB MiB of incompressible data (default 256), to which
# the agent switches BENCH_CHECKS more times after the cycles (default 5; its first boot
# downloads it):
#   RESULT switch_cache_check_<size> <s> s         median time of the check
#   RESULT switch_cache_check_rate_<size> <MB/s> MB/s
# The forced return (SIGKILL after the grace period) is bench/return.sh.
#
# The agent runs as machines run it (bench/bootstrap-runtime.bash: the bootstrap build's runtime,
# class archive, agent.conf's JVM flags and JIT mode, in a chroot of its initrds); it prints which
# runtime and flags it used.
#
# Needs root, busybox-static, squashfs-tools, lz4, cpio, python3, a cgroup2 directory and the
# agent built: mvn -B -q -pl node-agent -am package -DskipTests, then the bootstrap (see
# bench/download.sh).
# Environment: BENCH_CYCLES (default 100), BENCH_BOOTSTRAP (a bootstrap build's output folder),
# BENCH_CHECK_MIB (default 256), BENCH_CHECKS (default 5).
set -euo pipefail

cycles=${BENCH_CYCLES:-100}
check_mib=${BENCH_CHECK_MIB:-256}
checks=${BENCH_CHECKS:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
bb=/bin/busybox
[ "$(id -u)" = 0 ] || { echo "bench/switch.sh: needs root (mounts, namespaces, cgroups)" >&2; exit 2; }
[ -x "$bb" ] || { echo "bench/switch.sh: no $bb (apt-get install busybox-static)" >&2; exit 2; }
command -v mksquashfs >/dev/null || { echo "bench/switch.sh: mksquashfs missing (squashfs-tools)" >&2; exit 2; }
if [ -f /sys/fs/cgroup/unified/cgroup.subtree_control ]; then cg2=/sys/fs/cgroup/unified; else cg2=/sys/fs/cgroup; fi

work=$(mktemp -d /var/tmp/cb-switch.XXXXXX)
cgroup="$cg2/cb-switch-$$"
cleanup() {
  set +e
  # The agent, if the driver died without stopping it (SIGTERM: it returns its target first).
  if [ -f "$work/agent.pid" ] && kill "$(cat "$work/agent.pid")" 2>/dev/null; then sleep 3; fi
  if [ -d "$cgroup" ]; then
    for c in "$cgroup"/*/; do [ -d "$c" ] && echo 1 > "$c/cgroup.kill" && sleep 0.2 && rmdir "$c"/*/ "$c" 2>/dev/null; done
    rmdir "$cgroup"
  fi
  rm -rf "$work"
}
# shellcheck disable=SC2154 # rc is assigned first thing in the trap
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM

# --- two images: static busybox, an init that says it is up and powers off on SIGTERM -------
for name in a b; do
  t="$work/tree-$name"
  mkdir -p "$t"/{bin,sbin,etc,proc,sys,dev,run,tmp}
  cp "$bb" "$t/bin/busybox"
  for a in sh sleep echo; do ln -s busybox "$t/bin/$a"; done
  echo "$name" > "$t/etc/image"
  printf '#!/bin/sh\ntrap "exit 0" TERM USR2\necho up > /run/booted\nwhile :; do sleep 1 & wait $!; done\n' > "$t/sbin/init"
  chmod +x "$t/sbin/init"
  mksquashfs "$t" "$work/$name.squashfs" -quiet -noappend -comp gzip >/dev/null
done
# The third image: the same init and BENCH_CHECK_MIB MiB of random bytes (stored uncompressed:
# compressing them would only cost time), so that its cache check hashes an image of that size.
cp -a "$work/tree-a" "$work/tree-c"
echo c > "$work/tree-c/etc/image"
head -c "$((check_mib * 1048576))" /dev/urandom > "$work/tree-c/filler"
mksquashfs "$work/tree-c" "$work/c.squashfs" -quiet -noappend -noD -noF -noI -noX >/dev/null
rm -rf "$work/tree-c"

loops_before=$(losetup -a | wc -l)
mkdir "$cgroup"
# shellcheck source=bench/bootstrap-runtime.bash
. "$here/bench/bootstrap-runtime.bash"
bootstrap_runtime switch.sh "$work"

# --- the stand-in operator and the driver (python3, loopback only) ---------------------------
# The agent runs in a private mount namespace (unshare -m) with its work directory on a tmpfs:
# everything it mounts dies with that namespace even if the benchmark is interrupted.
python3 - "$work" "$cycles" "$boot_agent" "$cgroup" "$bb" "$checks" <<'PY'
import hashlib, http.server, json, os, queue, re, socketserver, subprocess, sys, threading, time
work, cycles, launcher, cgroup, bb = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
checks = int(sys.argv[6])
MAC, NONCE = "52:54:00:00:5e:01", "bench-nonce-0123456789"
sha = {n: hashlib.sha256(open(f"{work}/{n}.squashfs", "rb").read()).hexdigest() for n in "abc"}
events, streams, returns = [], [], []
lock = threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path.startswith("/images/"):
            data = open(f"{work}/{self.path[8:]}", "rb").read()
            self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
            self.wfile.write(data); return
        if not self.path.endswith("/desired"):
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        q = queue.Queue()
        with lock:
            streams.append(q)
            if events: q.put(events[-1])
        self.send_response(200); self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked"); self.end_headers()
        while True:
            try: ev = q.get(timeout=10)
            except queue.Empty: ev = ": heartbeat\n\n"
            chunk = ev.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk)); self.wfile.flush()
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/enroll"):  # the agent exchanges its boot nonce for a session
            data = json.dumps({"session": "bench-session", "expiresAt": "2999-01-01T00:00:00Z"}).encode()
            self.send_response(200); self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data))); self.end_headers()
            self.wfile.write(data); return
        lr = body.get("lastReturn")
        if lr and lr.get("trigger") == "SpecChange":
            with lock:
                if not returns or returns[-1][0] != lr["time"]:
                    returns.append((lr["time"], lr["durationMillis"]))
        self.send_response(202); self.send_header("Content-Length", "0"); self.end_headers()

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
srv = Server(("127.0.0.1", 0), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{srv.server_address[1]}"

def push(gen, name):
    state = {"action": "Run", "generation": gen, "image": {"name": f"image-{name}", "url": f"{url}/images/{name}.squashfs",
             "sha256": sha[name], "format": "squashfs", "init": "/sbin/init",
             # This host does not run the bootstrap's kernel: its modules image has no tree for it.
             "kernelModules": "None"}, "overlay": "tmpfs"}
    ev = f"event: desired\nid: {gen}\ndata: {json.dumps(state)}\n\n"
    with lock:
        events.append(ev)
        for q in streams: q.put(ev)

REFERENCE = r'''
work=$1 bb=$2 cycles=$3 old="" child=""
for i in $(seq 0 "$cycles"); do
  name=$([ $((i % 2)) = 0 ] && echo a || echo b); r="$work/ref-$i"
  t0=$(date +%s%N)
  if [ -n "$child" ]; then
    kill -TERM "$child"; wait "$upid"
    umount "$old/root" && umount "$old/rw" && umount "$old/lower"
  fi
  mkdir -p "$r/lower" "$r/rw" "$r/root"
  mount -t squashfs -o loop,ro "$work/$name.squashfs" "$r/lower"
  mount -t tmpfs cb-ref "$r/rw" && mkdir "$r/rw/u" "$r/rw/w"
  mount -t overlay -o "lowerdir=$r/lower,upperdir=$r/rw/u,workdir=$r/rw/w" cb-ref "$r/root"
  unshare --fork --pid chroot "$r/root" /sbin/init & upid=$!
  while [ ! -e "$r/root/run/booted" ]; do :; done
  child=$(cat "/proc/$upid/task/$upid/children")
  t1=$(date +%s%N)
  [ -n "$old" ] && echo $(( (t1 - t0) / 1000 ))
  old=$r
done
kill -TERM "$child"; wait "$upid"
umount "$old/root" "$old/rw" "$old/lower"
'''

state = f"{work}/state"
open(f"{work}/console.log", "w").close()
script = (f"mount --make-rprivate / && mkdir -p {work}/agent && mount -t tmpfs cb-bench {work}/agent && "
          f"exec {launcher} run --operator {url} --mac {MAC} --nonce {NONCE} "
          f"--work-dir {work}/agent --state-dir {state} --cgroup {cgroup} --busybox {bb} --dev {work}/nodev "
          f"--target-console {work}/console.log --no-console --report-interval 100ms")
agent = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdout=open(f"{work}/agent.log", "w"), stderr=subprocess.STDOUT)
open(f"{work}/agent.pid", "w").write(str(agent.pid))

def current_pid():
    try: return int(open(f"{state}/pid_in_target").read().strip() or 0)
    except (OSError, ValueError): return 0

def wait_booted(old, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pid = current_pid()
        if pid and pid != old and os.path.exists(f"/proc/{pid}/root/run/booted"):
            return pid
        time.sleep(0.001)
    sys.stderr.write(open(f"{work}/agent.log").read()[:4000])
    raise SystemExit("bench/switch.sh: the next image did not boot within %d s" % timeout)

try:
    # Warm-up: both images downloaded once into the agent's cache, the JVM warmed by 10 switches.
    push(1, "a"); pid = wait_booted(0, 180)
    gen = 1
    for i in range(10):
        gen += 1; push(gen, "b" if gen % 2 == 0 else "a"); pid = wait_booted(pid)
    with lock: returns.clear()
    log_start = os.path.getsize(f"{work}/agent.log")
    switches = []
    for i in range(cycles):
        gen += 1
        t0 = time.monotonic(); push(gen, "b" if gen % 2 == 0 else "a"); pid = wait_booted(pid)
        switches.append((time.monotonic() - t0) * 1000)
    time.sleep(0.5)
    with lock: durations = [d for _, d in returns]
    # The cache check of the large image: its first boot downloads it, each later one checks it.
    for i in range(checks + 1):
        gen += 1; push(gen, "c"); pid = wait_booted(pid, 300)
        gen += 1; push(gen, "a"); pid = wait_booted(pid)
finally:
    # SIGTERM: the agent returns its target and unmounts before it exits.
    agent.terminate(); agent.wait(30)

# The reference, same images, same run: the same switch by hand in busybox sh with nothing
# around it -- SIGTERM to the old init, umount of its overlay, tmpfs and squashfs, then mount of
# the other squashfs (loop), a tmpfs and the overlay, and its init as PID 1 of a new PID
# namespace (chroot, no /proc, /dev, cgroup, helper or state files). It is the floor for a switch
# on this machine; SPEEDUP = reference p99 / ours p99 shows the agent's overhead over it.
ref = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", REFERENCE, "ref", work, bb, str(cycles)],
                     capture_output=True, text=True, timeout=600)
if ref.returncode != 0:
    raise SystemExit("bench/switch.sh: the reference failed: " + ref.stderr[-2000:])
reference = [int(x) / 1000 for x in ref.stdout.split()]


def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
print("RESULT switch_cached_p50 %.1f ms" % pct(switches, 50))
print("RESULT switch_cached_p99 %.1f ms" % pct(switches, 99))
print("RESULT reference_switch_p50 %.1f ms" % pct(reference, 50))
print("RESULT reference_switch_p99 %.1f ms" % pct(reference, 99))
print("SPEEDUP switch_cached_p99 %.2f" % (pct(reference, 99) / pct(switches, 99)))
if durations:
    print("RESULT return_graceful_p50 %.1f ms" % pct(durations, 50))
    print("RESULT return_graceful_p99 %.1f ms" % pct(durations, 99))
print("# %d switches, %d graceful returns reported by the agent" % (len(switches), len(durations)), file=sys.stderr)

# The cache checks the agent logged after the warm-up, by image.
check = re.compile(r"cached image ([0-9a-f]{12}) \((\d+) bytes\) hashed again in ([0-9.]+) ms")
hashed = {}
with open(f"{work}/agent.log", errors="replace") as log:
    log.seek(log_start)
    for line in log:
        m = check.search(line)
        if m: hashed.setdefault(m.group(1), []).append((int(m.group(2)), float(m.group(3)) / 1000))
def size_label(n):
    return "%dMiB" % round(n / 2**20) if n >= 2**20 else "%dKiB" % round(n / 1024)
for names in ("ab", "c"):
    runs = [r for n in names for r in hashed.get(sha[n][:12], [])]
    if not runs:
        raise SystemExit("bench/switch.sh: the agent logged no cache check of image %s" % names)
    size, secs = runs[0][0], pct([s for _, s in runs], 50)
    print("RESULT switch_cache_check_%s %.4f s" % (size_label(size), secs))
    print("RESULT switch_cache_check_rate_%s %.0f MB/s" % (size_label(size), size / 1e6 / max(secs, 1e-9)))
PY

leaks=""
left=$(find "$cgroup" -mindepth 1 -type d | wc -l)
[ "$left" = 0 ] || leaks="$leaks cgroups:$left"
[ "$(losetup -a | wc -l)" -le "$loops_before" ] || leaks="$leaks loop-devices:$(( $(losetup -a | wc -l) - loops_before ))"
grep -q " $work" /proc/self/mountinfo && leaks="$leaks mounts"
if [ -z "$leaks" ]; then echo "LEAKS none"; else echo "LEAKS$leaks"; exit 1; fi
