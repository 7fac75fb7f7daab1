#!/bin/bash
# Builds a Debian 12 (bookworm) systemd root as a squashfs image that the node agent boots as
# a target (docs/architecture.md §4): PID 1 of its own PID, mount, UTS, IPC and cgroup namespaces, on the
# bootstrap's kernel, with the bootstrap console as its console.
#
#   e2e/lab/images/debian.sh OUT.squashfs [CACHE_DIR]
#
# What goes in: debootstrap --variant=minbase plus systemd, systemd-sysv, dbus, iproute2 and
# procps from deb.debian.org (CB_DEBIAN_MIRROR overrides), then:
#   - hostname chrootbooter-debian; /etc/os-release untouched; /etc/machine-id empty, so each
#     boot gets its own ID;
#   - root without a password, and autologin as root on the console (console-getty.service,
#     which systemd starts in a container, and serial-getty@.service for other setups);
#   - ShowStatus=yes, so the boot and shutdown status lines reach the console, and
#     DefaultTimeoutStopSec=5s, so a graceful return (SIGRTMIN+4) fits the agent's grace period;
#   - masked: udev (no hardware of its own: the devices belong to the bootstrap's kernel),
#     systemd-networkd-wait-online, getty@tty1 (the screen stays the bootstrap's);
#   - the sysctl defaults the packages ship masked (/etc/sysctl.d/*.conf -> /dev/null): the kernel is
#     shared with the bootstrap (and, in tests, with the build host), so this lab image does not
#     change its settings; systemd-sysctl still applies any /etc/sysctl.d file added to the image;
#   - chrootbooter-healthy.service, ordered after multi-user.target: runs
#     `/.bootstrap-return --healthy` when the agent bound the helper there;
#   - chrootbooter-console-marker.service, ordered after multi-user.target: writes
#     `chrootbooter-debian: multi-user.target reached (PRETTY_NAME of /etc/os-release)` to
#     /dev/console. systemd's own "Reached target" status lines stop once console-getty owns the
#     console, which it often does before multi-user.target is reached: this line is what a person
#     (or the lab's end-to-end test) reads on the serial console.
#
# Caches in CACHE_DIR (default ~/.cache/chrootbooter-images): the debootstrap'ed tree as a tar,
# keyed by the sha256 of the debootstrap inputs (suite, mirror, package list), and the finished
# image, keyed by the sha256 of this script, SOURCE_DATE_EPOCH and the compressor: an unchanged
# rerun copies the image (≈ 1 s), an edited configuration reuses the tree (≈ 10 s); the first
# build downloads ≈ 45 MB of packages (≈ 90 s here).
# `rm -r CACHE_DIR` fetches the packages afresh.
#
# Reproducible where cheap: file times, the image's creation time and /etc/shadow's change dates
# are SOURCE_DATE_EPOCH (default: the commit time of this script), logs, apt lists and caches
# are dropped. The package versions are whatever the mirror served when the tree was cached.
#
# Needs root, debootstrap, squashfs-tools (mksquashfs), util-linux (unshare) and wget; zstd is
# the compressor (CB_IMAGE_COMPRESSION=xz|gzip|lz4 picks another). Exit status: 0 done, 2 usage,
# 3 failed, 4 the mirror cannot be reached (no network).
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

usage() { echo "usage: $0 OUT.squashfs [CACHE_DIR]" >&2; exit 2; }
{ [ $# -ge 1 ] && [ $# -le 2 ]; } || usage
out=$1
cache=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/chrootbooter-images}
here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"

suite=bookworm
mirror=${CB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# kmod: modprobe, lsmod and systemd-modules-load find the bootstrap kernel's modules, which the
# agent binds into the target (BootImage spec.kernelModules).
packages=systemd,systemd-sysv,dbus,iproute2,procps,kmod
compression=${CB_IMAGE_COMPRESSION:-zstd}
hostname=chrootbooter-debian

step_t0=$(date +%s.%N)
step() { printf 'debian.sh: [%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $step_t0" | bc)" "$*"; }
die() { echo "debian.sh: $*" >&2; exit 3; }
need() { command -v "$1" >/dev/null || die "'$1' not found: apt-get install -y $2"; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, device nodes, owners)"
need debootstrap debootstrap; need mksquashfs squashfs-tools; need unshare util-linux
need bc bc; need sha256sum coreutils; need flock util-linux; need wget wget
case "$compression" in zstd | xz | gzip | lz4) ;; *) die "CB_IMAGE_COMPRESSION=$compression: expected zstd, xz, gzip or lz4" ;; esac

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$here" log -1 --format=%ct -- "$self" 2>/dev/null || true)
  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
fi
export SOURCE_DATE_EPOCH

mkdir -p "$cache" "$(dirname "$out")"
cache=$(cd "$cache" && pwd)
base_key=$(printf '%s\n' "$suite" "$mirror" minbase "$packages" "$(debootstrap --version)" | sha256sum | cut -c1-16)
image_key=$( (cat "$self"; echo "$SOURCE_DATE_EPOCH $compression $mirror") | sha256sum | cut -c1-16)
base_tar="$cache/debian-$suite-base-$base_key.tar"
image="$cache/debian-$suite-$image_key.squashfs"

# One build at a time per cache; a second caller waits and then finds the image cached.
exec 9>"$cache/.lock"
flock 9

if [ -f "$image" ]; then
  step "cached image $image"
  cp "$image" "$out.tmp" && mv "$out.tmp" "$out"
  step "wrote $out ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-64))"
  exit 0
fi

work=$(mktemp -d "$cache/work.XXXXXX")
# Every mount below $work lives in a private mount namespace (unshare -m) that dies with its
# process, so nothing is mounted here when the tree is removed.
trap 'rm -rf --one-file-system "$work"' EXIT
tree="$work/tree"

if [ ! -f "$base_tar" ]; then
  # Exit status 4 (and no other) means "no network": callers such as the tests skip on it.
  wget -q -T 20 -t 2 -O /dev/null "$mirror/dists/$suite/InRelease" \
    || { echo "debian.sh: cannot fetch $mirror/dists/$suite/InRelease (no network?)" >&2; exit 4; }
  step "debootstrap $suite (minbase + $packages) from $mirror"
  unshare -m --propagation private \
    debootstrap --variant=minbase --include="$packages" --components=main \
    "$suite" "$tree" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (network? see above)"; }
  step "caching the tree as $base_tar"
  rm -f "$tree"/var/cache/apt/archives/*.deb
  tar -C "$tree" --numeric-owner --xattrs --xattrs-include='*' -cf "$base_tar.tmp" .
  mv "$base_tar.tmp" "$base_tar"
else
  step "cached tree $base_tar"
  mkdir "$tree"
  tar -C "$tree" --numeric-owner --xattrs --xattrs-include='*' -xpf "$base_tar"
fi

step "configuring the tree"
etc="$tree/etc"
sysd="$etc/systemd/system"

echo "$hostname" > "$etc/hostname"
cat > "$etc/hosts" <<HOSTS
127.0.0.1	localhost
127.0.1.1	$hostname
::1		localhost ip6-localhost ip6-loopback
HOSTS
# The target runs on the bootstrap's network; DNS is the image's to configure.
echo "# Chroot Booter lab image: no resolver configured" > "$etc/resolv.conf"
: > "$etc/machine-id"
rm -f "$tree/var/lib/dbus/machine-id"

# root: no password; every shadow entry's "last changed" day is SOURCE_DATE_EPOCH's.
day=$((SOURCE_DATE_EPOCH / 86400))
sed -i -e 's/^root:[^:]*:/root::/' -e "s/^\([^:]*:[^:]*:\)[0-9]*:/\1$day:/" "$etc/shadow"

mkdir -p "$etc/systemd/system.conf.d"
cat > "$etc/systemd/system.conf.d/chrootbooter.conf" <<'CONF'
# Chroot Booter lab image: the bootstrap console shows the boot, and a graceful return
# (SIGRTMIN+4 from the agent) finishes within the agent's grace period.
[Manager]
ShowStatus=yes
DefaultTimeoutStopSec=5s
CONF

# Autologin as root on the console: console-getty.service is what systemd's getty generator
# starts in a container (our case: container=chrootbooter), serial-getty@ on a serial console.
# The units' own agetty lines (systemd 252) plus --autologin root and login's -f.
{ grep -qF -- "--noclear --keep-baud - 115200,38400,9600 \$TERM" "$tree/lib/systemd/system/console-getty.service" \
  && grep -qF -- "--keep-baud 115200,57600,38400,9600 - \$TERM" "$tree/lib/systemd/system/serial-getty@.service"; } \
  || die "the getty units' agetty lines changed: update the autologin drop-ins"
mkdir -p "$sysd/console-getty.service.d" "$sysd/serial-getty@.service.d"
cat > "$sysd/console-getty.service.d/autologin.conf" <<'CONF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root -o '-p -f -- \\u' --noclear --keep-baud - 115200,38400,9600 $TERM
CONF
cat > "$sysd/serial-getty@.service.d/autologin.conf" <<'CONF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root -o '-p -f -- \\u' --keep-baud 115200,57600,38400,9600 - $TERM
CONF

for unit in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-udev-trigger.service systemd-udev-settle.service systemd-networkd-wait-online.service \
  getty@tty1.service; do
  ln -sfn /dev/null "$sysd/$unit"
done
mkdir -p "$etc/sysctl.d"
for f in "$tree"/usr/lib/sysctl.d/*.conf "$tree"/lib/sysctl.d/*.conf; do
  [ -e "$f" ] && ln -sfn /dev/null "$etc/sysctl.d/$(basename "$f")"
done

cat > "$sysd/chrootbooter-healthy.service" <<'UNIT'
[Unit]
Description=Report a healthy boot to the Chroot Booter bootstrap
After=multi-user.target
ConditionPathExists=/.bootstrap-return

[Service]
Type=oneshot
RemainAfterExit=yes
# Writes one line to the agent's FIFO; blocks only while nobody reads it.
ExecStart=/.bootstrap-return --healthy
TimeoutStartSec=30s

[Install]
WantedBy=multi-user.target
UNIT
cat > "$sysd/chrootbooter-console-marker.service" <<'UNIT'
[Unit]
Description=Say on the console that multi-user.target is reached
After=multi-user.target

[Service]
Type=oneshot
RemainAfterExit=yes
# $$: a literal $ for sh (systemd expands $NAME itself).
ExecStart=/bin/sh -c '. /etc/os-release && echo "chrootbooter-debian: multi-user.target reached ($$PRETTY_NAME)" >/dev/console'

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$sysd/multi-user.target.wants"
ln -sfn ../chrootbooter-healthy.service "$sysd/multi-user.target.wants/chrootbooter-healthy.service"
ln -sfn ../chrootbooter-console-marker.service "$sysd/multi-user.target.wants/chrootbooter-console-marker.service"
ln -sfn /lib/systemd/system/multi-user.target "$sysd/default.target"

# What a build leaves that differs between builds and is of no use in the image.
rm -rf "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/*.bin "$tree"/var/cache/apt/archives/*.deb \
  "$tree"/var/cache/ldconfig/aux-cache "$tree"/var/lib/dpkg/*-old "$tree"/var/log/*.log \
  "$tree"/var/log/apt/* "$tree"/var/lib/systemd/catalog/database "$tree"/debootstrap
find "$tree/var/log" -type f -exec truncate -s 0 {} +

step "mksquashfs -comp $compression"
# mksquashfs refuses SOURCE_DATE_EPOCH together with the explicit options.
# zstd level 9: 4 s here, 6 % larger than the default level 15, which takes 40 s.
level=()
[ "$compression" = zstd ] && level=(-Xcompression-level 9)
env -u SOURCE_DATE_EPOCH mksquashfs "$tree" "$work/image.squashfs" -noappend -comp "$compression" "${level[@]}" -quiet -no-progress \
  -mkfs-time "$SOURCE_DATE_EPOCH" -all-time "$SOURCE_DATE_EPOCH" > "$work/mksquashfs.log" 2>&1 \
  || { cat "$work/mksquashfs.log" >&2; die "mksquashfs failed"; }
rm -f "$cache"/debian-"$suite"-[0-9a-f]*.squashfs  # earlier builds of this script
mv "$work/image.squashfs" "$image"
cp "$image" "$out.tmp" && mv "$out.tmp" "$out"
step "wrote $out ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-64))"
