# shellcheck shell=bash
# The lab's processes: each one is a *service* with a name, a pid file ($STATE/pids/NAME.pid) and
# a log ($STATE/logs/NAME.log). A service whose pid file exists but whose process is gone has
# died: every wait of `up` checks that (check_services) and stops at once, naming it and showing
# the end of its log, instead of waiting out its timeout on a dead dependency; `status` shows it.
# `down` and `power off` remove the pid file of what they stop.

# What each service is, for messages.
describe() {
  case "$1" in
    apiserver) echo "the embedded Kubernetes API" ;;
    operator) echo "the operator" ;;
    pxe) echo "the pxe-server (proxyDHCP + TFTP)" ;;
    dnsmasq) echo "dnsmasq (the site's DHCP server)" ;;
    images) echo "the image server (busybox httpd)" ;;
    forward-api) echo "the forwarder of the Kubernetes API to the host" ;;
    forward-operator) echo "the forwarder of the operator to the host" ;;
    forward-admin) echo "the forwarder of the operator's admin port (status page) to the host" ;;
    m[0-9]*) echo "machine $1 (QEMU)" ;;
    *) echo "$1" ;;
  esac
}

# spawn NAME [--ns] CMD...: runs CMD in the background in a session of its own (so `down`
# signals it and every child it forks as one process group), output to logs/NAME.log, pid to
# pids/NAME.pid; with --ns inside the lab's network namespace. A background job of a
# non-interactive shell is no group leader, so setsid execs rather than forks, and `ip netns
# exec` execs too: $! is CMD's own pid.
spawn() {
  local name=$1; shift
  local prefix=()
  if [ "${1:-}" = --ns ]; then shift; prefix=(ip netns exec "$LAB_NAME"); fi
  setsid "${prefix[@]}" "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name.pid"
}

# alive NAME: the service's process exists and is no zombie (a service that died is one until its
# parent, `up` or an init, reaps it).
alive() {
  local pid stat
  [ -f "$STATE/pids/$1.pid" ] || return 1
  pid=$(cat "$STATE/pids/$1.pid")
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  # The state is the field after the command, which ends at the last ')'.
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

# The services `up` started, by name, in the order of their pid files.
services() {
  local f
  for f in "$STATE"/pids/*.pid; do
    [ -e "$f" ] || continue
    f=${f##*/}
    echo "${f%.pid}"
  done
}

# show_log NAME LINES: the end of a service's log (and of a machine's console), on stderr.
show_log() {
  local f
  for f in "$STATE/logs/$1.log" "$(vm_dir "$1")/console.log"; do
    [ -e "$f" ] || continue
    if [ ! -s "$f" ]; then echo "----- ${f#"$STATE"/} is empty"; continue; fi
    echo "----- ${f#"$STATE"/} (last $2 lines)"
    tail -n "$2" "$f" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\r$//'
  done >&2
}

# check_services: true when every started service still runs; else names the first dead one
# (DEAD_SERVICE), shows the end of its log and returns 1.
DEAD_SERVICE=
check_services() {
  local name pid rc how
  for name in $(services); do
    alive "$name" && continue
    DEAD_SERVICE=$name
    # A service is a child of the `up` that started it: wait tells how it ended.
    pid=$(cat "$STATE/pids/$name.pid") rc=0
    wait "$pid" 2>/dev/null || rc=$?
    if [ $rc -gt 128 ] && [ $rc -ne 255 ]; then how="killed by signal $((rc - 128)) ($(kill -l $((rc - 128))))"
    elif [ $rc = 127 ]; then how="gone"
    else how="exited with status $rc"; fi
    note "$(describe "$name") ($name) has died ($how); the end of its log:"
    show_log "$name" 25
    return 1
  done
}

# wait_for DESCRIPTION SECONDS CMD...: polls CMD every 0.25 s until it succeeds; fails at once
# when a service has died, and after SECONDS.
wait_for() {
  local what=$1 limit=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    check_services || die "$(describe "$DEAD_SERVICE") died while waiting for $what"
    [ $SECONDS -lt $deadline ] || { note "gave up after ${limit} s waiting for $what"; return 1; }
    sleep 0.25
  done
}

# wait_job PID DESCRIPTION: waits for a background job of this shell while watching the services;
# returns the job's exit status.
wait_job() {
  local pid=$1 what=$2
  while kill -0 "$pid" 2>/dev/null; do
    check_services || { kill "$pid" 2>/dev/null; die "$(describe "$DEAD_SERVICE") died during $what"; }
    sleep 1
  done
  local rc=0
  wait "$pid" || rc=$?
  return "$rc"
}

# stop_pids PIDFILE...: SIGTERM to each process group, up to 10 s to exit, then SIGKILL.
stop_pids() {
  local f pid pids=()
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  local deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  for f in "$@"; do rm -f "$f"; done
}

# services_table: one line per service, running or DEAD, with its pid and log; false when one
# is dead.
services_table() {
  local name run_state pid dead=0
  printf '%-17s %-8s %-8s %s\n' SERVICE STATE PID WHAT
  for name in $(services); do
    pid=$(cat "$STATE/pids/$name.pid")
    if alive "$name"; then run_state=running; else run_state=DEAD; dead=1; fi
    printf '%-17s %-8s %-8s %s\n' "$name" "$run_state" "$pid" "$(describe "$name")"
  done
  return $dead
}

in_ns() { ip netns exec "$LAB_NAME" "$@"; }

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

# A TCP port free on the host: the preferred one, else the next free one above it.
free_port() {
  local p=$1
  while [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; do p=$((p + 1)); done
  echo "$p"
}

# forward HOST_PORT NS_ADDRESS NS_PORT NAME: 127.0.0.1:HOST_PORT on the host → NS_ADDRESS:NS_PORT
# inside the namespace. Each connection runs `ip netns exec … socat`, so the host's network
# gets no veth, no route, no address.
forward() {
  spawn "$4" socat "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork" \
    "EXEC:ip netns exec $LAB_NAME socat STDIO TCP\\:$2\\:$3"
}
