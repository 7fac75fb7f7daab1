#!/usr/bin/env bash
# delivery Lazy against Download, in the same run: a Debian root of about BENCH_SIZE_MB (default
# 1024) MiB as squashfs, served over a link throttled to 1 Gbit/s, loaded by the agent's image
# loader (ImageLoader.prepare, the code a desired state runs) both ways.
#
#   lazy_vs_download_init  time from the load's start (the desired state's image handed to the
#                          loader) to the image's init run from the prepared root (`chroot ROOT
#                          /usr/lib/systemd/systemd --version`, what /sbin/init leads to:
#                          systemd and its libraries are read), Download divided by Lazy
#   lazy_full_vs_download  the plain download (download, SHA-256, mount) divided by the time until
#                          Lazy's background prefetch has made the image fully local
#
# The image: the Debian files of this host (/usr's bin, sbin, lib, libexec and share, /etc)
# until the squashfs (zstd) reaches the size, with /sbin/init = systemd; its dm-verity tree by
# `veritysetup format` (the format the operator writes; its tests hold them equal).
# Where it runs: the block stack needs the kernel's nbd and dm_verity, which this host's kernel may
# lack, so everything runs in one QEMU machine (TCG unless CB_VM_ACCEL=kvm) with Debian's kernel
# from /boot and this host's root read-only over 9p, as the Lazy tests' QEMU machine (LazyInVmIT).
# In it: a network namespace the bench creates holds the server (bench/lazy/LazyBoot.java serve:
# the operator's image routes, with ranges, the digest as ETag and the session), joined to the
# agent's side by a veth pair whose both ends `tc` throttles to 1 Gbit/s (tbf); the image is in
# the machine's RAM. The machine, the namespace and everything else go at the end.
# Under TCG every figure is the emulated machine's, far below the link's 1 Gbit/s: the bench prints
# the download's throughput, so it is plain whether the link or the CPU was the limit.
#
# Prints `RESULT <name> <value> <unit>` and `SPEEDUP lazy_vs_download_init`, `SPEEDUP
# lazy_full_vs_download`. Needs root, qemu-system-x86_64, busybox-static, squashfs-tools,
# cryptsetup-bin (veritysetup), cpio, a Debian kernel in /boot with its modules, nbd-client,
# dmsetup, iproute2, and node-agent built: mvn -B -pl node-agent -am test-compile.
# Environment: BENCH_SIZE_MB (default 1024), BENCH_VM_MB (the machine's RAM, default 5120),
# BENCH_DIR (scratch parent, default /var/tmp), CB_VM_ACCEL (tcg).
set -euo pipefail
size_mb=${BENCH_SIZE_MB:-1024}
vm_mb=${BENCH_VM_MB:-5120}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
agent="$repo/node-agent"
[ "$(id -u)" = 0 ] || { echo "lazy.sh: needs root (9p export of /, chroot in the machine)" >&2; exit 2; }
for tool in qemu-system-x86_64 mksquashfs veritysetup cpio busybox javac nbd-client dmsetup ip tc; do
  command -v "$tool" >/dev/null || { echo "lazy.sh: $tool is missing" >&2; exit 2; }
done
kernel=${CB_VM_KERNEL:-$(find /boot -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -1)}
kver=${kernel##*/vmlinuz-}
mods="/lib/modules/$kver/kernel"
[ -d "$mods" ] || { echo "lazy.sh: no modules for $kver in /lib/modules" >&2; exit 2; }
[ -d "$agent/target/classes/io/chrootbooter/agent/lazy" ] ||
  { echo "lazy.sh: build first: mvn -B -pl node-agent -am test-compile" >&2; exit 2; }
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/cb-lazy-bench.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
log() { echo "# $*" >&2; }
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)" >&2

# ---- the images --------------------------------------------------------------------------------
# image DIR NAME: packs DIR as DIR/../www/NAME (zstd), formats its tree, writes NAME.props.
www="$work/www"
mkdir -p "$www"
image() {
  local tree=$1 name=$2 out
  mksquashfs "$tree" "$www/$name" -quiet -noappend -no-progress -comp zstd -Xcompression-level 3 >/dev/null
  out=$(veritysetup format --hash sha256 --data-block-size 4096 --hash-block-size 4096 \
    "$www/$name" "$www/$name.verity")
  {
    echo "sha256=$(sha256sum "$www/$name" | cut -d' ' -f1)"
    echo "root=$(echo "$out" | awk '/^Root hash:/ {print $3}')"
    echo "salt=$(echo "$out" | awk '/^Salt:/ {print $2}')"
    echo "blocks=$(($(stat -c %s "$www/$name") / 4096))"
    echo "tree=$name.verity"
    echo "treeSize=$(stat -c %s "$www/$name.verity")"
    # /sbin/init's binary, by its own name: systemd named init and not PID 1 execs systemctl.
    echo "init=/usr/lib/systemd/systemd"
  } >"$www/$name.props"
}
# systemd's binary and the libraries it links (their real paths, below usr/), one a line.
systemd_closure() {
  echo usr/lib/systemd/systemd
  if [ -e /usr/lib64/ld-linux-x86-64.so.2 ]; then echo usr/lib64/ld-linux-x86-64.so.2; fi
  local libs
  libs=$(ldd /usr/lib/systemd/systemd | awk '$3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}')
  # The names the loader looks for (links, merged /usr) and the files they lead to.
  echo "$libs" | sed -e 's|^/usr/|/|' -e 's|^/|usr/|'
  echo "$libs" | xargs -r readlink -f | sed 's|^/||'
}
# The Debian root: a file list of this host's /usr and /etc up to RAW bytes, linked (not copied)
# into a tree with Debian's merged-/usr links.
root_tree() {
  local tree=$1 raw=$2
  rm -rf "$tree"
  mkdir -p "$tree"/{proc,sys,dev,run,tmp,var,root,mnt}
  for l in bin sbin lib lib64; do ln -s "usr/$l" "$tree/$l"; done
  # /etc: only what names the system, no keys or passwords of this host.
  # First systemd and the libraries it links, whatever the size.
  { for f in /etc/os-release /etc/debian_version /etc/passwd /etc/group /etc/hostname; do
      if [ -e "$f" ]; then echo "0 $f"; fi
    done
    systemd_closure | sed 's|^|0 /|'
    for d in /usr/lib/systemd /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/bin /usr/sbin /usr/libexec \
      /usr/lib /usr/share; do
      find "$d" -xdev \( -type f -o -type l \) -printf '%s %p\n' 2>/dev/null | sort -k2
    done
    # awk reads to the end: leaving early would end find with SIGPIPE, a failure under pipefail.
    } | awk -v raw="$raw" 't < raw && NF == 2 && $2 !~ /\\/ && !seen[$2]++ { t += $1; print substr($2, 2) }' \
    >"$work/files"
  (cd / && cpio -pdml --quiet "$tree" <"$work/files") 2>/dev/null || true
  [ -x "$tree/usr/lib/systemd/systemd" ] || { echo "lazy.sh: this host has no /usr/lib/systemd/systemd" >&2; exit 2; }
  mkdir -p "$tree/usr/sbin"
  ln -sf /usr/lib/systemd/systemd "$tree/usr/sbin/init"
}
want=$((size_mb << 20))
raw=$((want * 5 / 2))
for attempt in 1 2; do
  log "image: $((raw >> 20)) MiB of this host's files (attempt $attempt)"
  root_tree "$work/tree" "$raw"
  image "$work/tree" debian
  got=$(stat -c %s "$www/debian")
  # Within 10 % of the size asked, or as large as the host's files make it.
  if [ $((got * 100 / want)) -ge 90 ] && [ $((got * 100 / want)) -le 110 ]; then break; fi
  if [ "$(wc -l <"$work/files")" -ge "$(find /etc /usr -xdev \( -type f -o -type l \) 2>/dev/null | wc -l)" ]; then break; fi
  raw=$((raw * want / got))
done
rm -rf "$work/tree"
log "image debian: $(stat -c %s "$www/debian") bytes, tree $(sed -n 's/^treeSize=//p' "$www/debian.props") bytes"
# A small image for the warm-up (the agent is a daemon whose code ran before).
mkdir -p "$work/small"/{proc,sys,dev,run,tmp} "$work/small/usr"/{bin,sbin,lib,lib64}
for l in bin sbin lib lib64; do ln -s "usr/$l" "$work/small/$l"; done
while read -r f; do
  mkdir -p "$work/small/$(dirname "$f")"; cp -L "/$f" "$work/small/$f"
done < <(systemd_closure)
ln -s /usr/lib/systemd/systemd "$work/small/usr/sbin/init"
image "$work/small" warmup
rm -rf "$work/small"

# ---- the programs ------------------------------------------------------------------------------
(cd "$agent" && mvn -B -o -q dependency:build-classpath -Dmdep.includeScope=test \
  -Dmdep.outputFile="$work/deps")
cp="$work/classes:$agent/target/classes:$repo/protocol/target/classes"
cp="$cp:$(tr ':' '\n' <"$work/deps" | grep -v chrootbooter-protocol | paste -sd:)"
javac -d "$work/classes" -cp "$cp" "$here/lazy/LazyBoot.java"

# ---- the machine -------------------------------------------------------------------------------
ir="$work/initramfs"
mkdir -p "$ir/bin" "$ir/lib/modules" "$ir/proc" "$ir/sys" "$ir/dev" "$ir/host" "$work/guest"
cp "$(command -v busybox)" "$ir/bin/busybox"
for a in sh mount insmod chroot poweroff; do ln -s busybox "$ir/bin/$a"; done
for m in drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko \
  drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci_legacy_dev.ko \
  drivers/virtio/virtio_pci.ko fs/fscache/fscache.ko fs/netfs/netfs.ko net/9p/9pnet.ko \
  net/9p/9pnet_virtio.ko fs/9p/9p.ko; do
  [ -f "$mods/$m" ] && cp "$mods/$m" "$ir/lib/modules/"
done
# The JVM as the bootstrap runs it under TCG: C1 only (node-agent/src/bootstrap/build.sh).
java_opts="-XX:-UsePerfData -XX:TieredStopAtLevel=1 -Dorg.jboss.logging.provider=jdk -cp $cp"
cat >"$work/guest.sh" <<GUEST
set -eu
export HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin
g=$work/guest
ip link set lo up
modprobe -a squashfs overlay loop nbd dm_verity veth sch_tbf
mkdir -p \$g/www \$g/work
cp $www/* \$g/www/
ip netns add cb-lazy-srv
ip link add cb-lazy0 type veth peer name cb-lazy1
ip link set cb-lazy1 netns cb-lazy-srv
ip addr add 10.203.0.1/30 dev cb-lazy0
ip link set cb-lazy0 up
ip netns exec cb-lazy-srv ip addr add 10.203.0.2/30 dev cb-lazy1
ip netns exec cb-lazy-srv ip link set cb-lazy1 up
ip netns exec cb-lazy-srv ip link set lo up
# 1 Gbit/s each way: the bucket holds 1 ms at the rate, packets wait at most 50 ms.
tc qdisc add dev cb-lazy0 root tbf rate 1gbit burst 125000 latency 50ms
ip netns exec cb-lazy-srv tc qdisc add dev cb-lazy1 root tbf rate 1gbit burst 125000 latency 50ms
echo "lazy-bench: link \$(tc qdisc show dev cb-lazy0 | head -1)"
ip netns exec cb-lazy-srv java $java_opts LazyBoot serve \$g/www 10.203.0.2 8080 > \$g/serve.log 2>&1 &
server=\$!
for i in \$(seq 600); do grep -q serving \$g/serve.log && break; sleep 0.2; done
rc=0
java $java_opts LazyBoot run http://10.203.0.2:8080 \$g/www \$g/work warmup debian > \$g/run.log 2>&1 || rc=1
cat \$g/run.log
kill \$server; wait \$server 2>/dev/null || true
ip link del cb-lazy0
ip netns del cb-lazy-srv
echo "lazy-bench: dm devices left: \$(dmsetup ls 2>&1)"
echo "lazy-bench: exit \$rc"
GUEST
cat >"$ir/init" <<INIT
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
for pass in 1 2 3 4 5 6; do for f in /lib/modules/*.ko; do insmod \$f 2>/dev/null && rm \$f; done; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,ro host /host || { echo "lazy-bench: 9p mount failed"; poweroff -f; }
mount -t proc proc /host/proc; mount -t sysfs sysfs /host/sys; mount -t devtmpfs dev /host/dev
mount -t tmpfs tmp /host/run; mount -t tmpfs tmp /host/tmp; mount -t tmpfs -o size=90% tmp /host$work/guest
chroot /host /bin/sh $work/guest.sh
poweroff -f
INIT
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initramfs.gz")
accel=${CB_VM_ACCEL:-tcg}
log "machine: $kver, $accel, 2 CPUs, $vm_mb MiB"
timeout 3600 qemu-system-x86_64 -machine "q35,accel=$accel" -cpu max -m "$vm_mb" -smp 2 -nographic \
  -no-reboot -kernel "$kernel" -initrd "$work/initramfs.gz" \
  -append "console=ttyS0 quiet panic=-1" \
  -virtfs "local,path=/,mount_tag=host,security_model=passthrough,multidevs=remap,readonly=on" \
  >"$work/console.log" 2>&1 || true
grep -E '^(TIMES|# |lazy-bench:)' "$work/console.log" | tr -d '\r' | sed 's/^/# /' >&2
if ! { grep -q "^TIMES image=debian mode=lazy" "$work/console.log" &&
  grep -q "lazy-bench: exit 0" "$work/console.log"; }; then
  echo "lazy.sh: the machine's run failed; its console:" >&2; tail -80 "$work/console.log" >&2; exit 1
fi

field() { # field MODE KEY: KEY of the debian image's TIMES line for MODE
  tr -d '\r' <"$work/console.log" | grep "^TIMES image=debian mode=$1 " | tr ' ' '\n' | sed -n "s/^$2=//p"
}
d_ready=$(field download ready) d_init=$(field download init) d_bytes=$(field download bytes)
l_init=$(field lazy init) l_full=$(field lazy full) l_at_init=$(field lazy bytes_at_init)
l_bytes=$(field lazy bytes)
size=$(stat -c %s "$www/debian")
echo "RESULT lazy_image_bytes $size bytes"
echo "RESULT lazy_download_ready $d_ready s"
echo "RESULT lazy_download_init $d_init s"
echo "RESULT lazy_download_throughput $(awk -v b="$d_bytes" -v t="$d_ready" 'BEGIN {printf "%.1f", b / t / 1e6}') MB/s"
echo "RESULT lazy_lazy_init $l_init s"
echo "RESULT lazy_lazy_bytes_before_init $l_at_init bytes"
echo "RESULT lazy_lazy_full $l_full s"
echo "RESULT lazy_lazy_bytes_total $l_bytes bytes"
echo "SPEEDUP lazy_vs_download_init $(awk -v d="$d_init" -v l="$l_init" 'BEGIN {printf "%.2f", d / l}')"
echo "SPEEDUP lazy_full_vs_download $(awk -v d="$d_ready" -v l="$l_full" 'BEGIN {printf "%.2f", d / l}')"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
