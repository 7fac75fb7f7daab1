# shellcheck shell=bash disable=SC2034 # these settings are read by the lab's other parts
# ./lab's paths, settings, messages and lab.env: what every other part of the lab reads.
# Sourced by ./lab after it sets ROOT (the repository).

HERE=$ROOT/e2e/lab   # image builders; default state, cache and kubeconfig
STATE=$(realpath -m "${LAB_STATE:-$HERE/state}")
CACHE=$(realpath -m "${LAB_CACHE:-$HERE/cache}")
if [ -n "${LAB_STATE:-}" ]; then KUBECONFIG_FILE=$STATE/kubeconfig; else KUBECONFIG_FILE=$HERE/kubeconfig; fi
ENV_FILE=$STATE/lab.env
JAVA=${LAB_JAVA:-java}

# The lab's network: a /24 and a ULA /64 on br0; machine mN gets MAC 52:54:00:12:34:(55+N) and
# address .(100+N), so m1 and m2 match examples/.
SUBNET=10.88.0
GW=$SUBNET.1
ULA=fd88::
OPERATOR_PORT=8080
# The operator's admin port (status page, /q/health, /q/metrics): on the namespace's loopback
# only, so that the machines on br0 never reach it; the host reaches it through a forward.
OPERATOR_ADMIN_PORT=9000
IMAGES_PORT=8081
MAGIC=RETURN_TO_BOOTSTRAP

note() { echo "lab: $*" >&2; }
die() { echo "lab: $*" >&2; exit 1; }

# lab.env holds KEY=VALUE lines without spaces or quotes, so that both `source` and a plain
# line parser (the e2e test) read it.
env_set() {
  [[ "$2" != *[[:space:]\'\"\$\`\\]* ]] || die "lab.env value for $1 is not plain: $2"
  echo "$1=$2" >>"$ENV_FILE"
}

load_env() {
  [ -f "$ENV_FILE" ] || die "no lab is up (no $ENV_FILE); start one with ./lab up"
  # shellcheck disable=SC1090 # written by env_set
  source "$ENV_FILE"
}

vm_dir() { echo "$STATE/vm/$1"; }

require_vm() {
  load_env
  [[ ",${MACHINES:-}," == *",$1,"* ]] || die "no machine \"$1\"; the lab has: ${MACHINES//,/ }"
}

# link_or_copy SRC DST: a hard link when on one file system (the cache's files never change).
link_or_copy() { ln -f "$1" "$2" 2>/dev/null || cp "$1" "$2"; }

umount_under() {
  local m
  # Deepest first. /proc/mounts escapes spaces as \040; the lab's paths have none.
  awk -v p="$1/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}
