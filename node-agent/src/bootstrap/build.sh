#!/bin/bash
# Builds the bootstrap that machines PXE-boot: a Debian kernel, an initramfs holding busybox,
# the kernel modules the bootstrap needs, the node agent on a jlink'ed Java runtime and /init,
# and a second initrd, agent-cache.img, holding the agent's class archive (docs/architecture.md
# §4).
#
#   build.sh --app target/quarkus-app --out target/bootstrap [--work DIR]
#            [--compression lz4|zstd|xz] [--no-vmlinux]
#
# Reproducible: the same inputs (kernel .deb, busybox, JDK, agent jars, this folder and
# SOURCE_DATE_EPOCH) give the same initramfs.img, vmlinuz and vmlinux (SHA256SUMS). Every file
# gets mtime SOURCE_DATE_EPOCH and owner 0:0, the cpio archive is written in sorted order with
# --reproducible, and the compressors are deterministic. agent-cache.img is not reproducible
# (the JDK's class archive dumps are not; see "class archives" below): it has its own digest,
# agent-cache.sha256, and the initramfs only names the key of the inputs it was trained on.
# check-reproducible.sh builds a commit twice from two clones and compares the digests.
#
# Inputs are found or fetched with Debian's tools, never guessed:
#   kernel   CB_KERNEL_DEB=<linux-image-*.deb>, else the package linux-image-amd64 depends
#            on, fetched with `apt-get download` into the cache; modules come from that .deb
#   busybox  CB_BUSYBOX=<static busybox>, else busybox-static's /bin/busybox, else fetched
#   Java     CB_JAVA_HOME, else the newest JDK 25 or later under /usr/lib/jvm (its AOT cache
#            starts the agent faster), else the JDK running `jlink` on the PATH (Java 17)
#   firmware CB_FIRMWARE_FREE_DEB=<firmware-linux-free_*.deb>, else fetched with `apt-get download`
# Tools: cpio, kmod (depmod, modprobe), zip/unzip, lz4 | zstd | xz-utils, util-linux,
# squashfs-tools; nbd-client, dmsetup and util-linux's losetup are copied into the initramfs
# (delivery Lazy).
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

here=$(cd "$(dirname "$0")" && pwd)
app="" out="" work="" compression="${CB_INITRAMFS_COMPRESSION:-lz4}" vmlinux=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --app) app=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --compression) compression=$2; shift 2 ;;
    --no-vmlinux) vmlinux=no; shift ;;
    *) echo "build.sh: unknown argument '$1'; see the header of $0" >&2; exit 2 ;;
  esac
done
{ [ -n "$app" ] && [ -n "$out" ]; } || { echo "build.sh: --app and --out are required" >&2; exit 2; }
[ -f "$app/quarkus-run.jar" ] || { echo "build.sh: $app/quarkus-run.jar missing: run mvn package first" >&2; exit 2; }
app=$(cd "$app" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=${work:-$out.work}
cache=${CB_BOOTSTRAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chrootbooter-bootstrap}
mkdir -p "$cache"

# The timestamp every file gets. Default: the last commit, so a checkout builds the same bytes.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 1700000000)
fi
export SOURCE_DATE_EPOCH

# The jlink'ed runtime's modules: images download with HttpURLConnection, the
# operator's stream and reports use java.net.http (Failsafe, which times the retries, needs
# java.base only), Quarkus' start-up sets up java.naming's initial context. No java.desktop, java.sql (it pulls in java.xml) nor
# java.rmi: `jdeps` finds no use of them on the agent's paths (only GraalVM substitutions in
# quarkus-core, JNA's AWT helpers and EL/commons-lang3 classes the agent never loads), and they
# were half of the runtime: 98 MB with them, 62 MB without (Java 25).
java_modules=${CB_JAVA_MODULES:-java.base,java.naming,jdk.management,jdk.unsupported,jdk.crypto.ec,jdk.zipfs,java.net.http}
# Modules the bootstrap loads (docs/architecture.md §4); NIC drivers are loaded by PCI modalias at boot.
# cpuid: /dev/cpu/0/cpuid, read by jit-mode before the agent's JVM starts (agent).
kmods_base="loop squashfs overlay evdev virtio_pci virtio_net cpuid"
kmods_nic="e1000 e1000e igb ixgbe r8169 tg3 bnxt_en mlx5_core"
# Shipped, not loaded at boot: delivery Lazy's block stack (agent.lazy.LazyRoot), which runs
# `modprobe nbd dm_verity` when a Lazy image is loaded (dm_verity brings dm_mod, dm_bufio and
# reed_solomon; SHA-256 is built into Debian's kernel). A bootstrap that never loads a Lazy
# image pays nothing for them at boot.
kmods_lazy="nbd dm_verity"
# The JVM flags used at boot; the class archive is trained with the same ones.
# -XX:TieredStopAtLevel=1: C1 only. The archive is trained with it and checked without it:
# agent.conf leaves it out, and the agent script puts it in front where jit-mode says c1 (QEMU's
# TCG, cb.jit=c1); real hardware and KVM run tiered. Under TCG, tiered compilation (C1, then C2
# for hot methods) crashed the agent now and then with SIGSEGV at the first instruction of a
# C1-compiled method (one boot in 6 to 10 in the lab, with Java 17 and 25; the entry of a method
# replaced by its next tier is patched while the other CPU may run it), and C2 compiling the
# start-up path took the second CPU from /init. With C1 only: no crash in 26 lab boots, and power-on -> agent
# reported (bench/boot.sh, median of 5) 12.7 and 13.2 s, against 13.0 s with C2 kept for
# SHA-256 alone (one of those 5 boots crashed: 21.0 s). C1 has no SHA-256 intrinsic
# (MessageDigest at ≈ 100 MB/s): the agent hashes with libcrypto, shipped below.
# -XX:TrimNativeHeapInterval: compiler arenas leave freed malloc memory in the process;
# trimming it every 2 s (with MALLOC_ARENA_MAX=2 in agent.conf) took the agent's RSS while a
# target runs from 100-102 MB to 82-84 MB in the lab's boot benchmark (with C2).
# -XX:+ExitOnOutOfMemoryError: an agent whose heap is exhausted exits (status 3) rather than
# limp on with threads dead; init restarts it and the launcher tells the new run (agent-exit).
jvm_flags="-XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError -XX:TrimNativeHeapInterval=2000 -XX:+UseSerialGC -XX:-UsePerfData -Xss512k -XX:ReservedCodeCacheSize=16m -XX:MaxMetaspaceSize=64m -Xmx${CB_AGENT_XMX:-48m}"

step_t0=$(date +%s.%N)
step() { printf 'bootstrap: [%5.1fs] %s\n' "$(echo "$(date +%s.%N) - $step_t0" | bc)" "$*"; }
need() { command -v "$1" >/dev/null || { echo "build.sh: '$1' not found: apt-get install $2" >&2; exit 3; }; }
need cpio cpio; need strip binutils; need depmod kmod; need modprobe kmod; need zip zip; need unzip unzip; need bc bc
case "$compression" in
  lz4) need lz4 lz4 ;; zstd) need zstd zstd ;; xz) need xz xz-utils ;;
  none) ;; *) echo "build.sh: --compression $compression: expected lz4, zstd, xz or none" >&2; exit 2 ;;
esac

# ---- kernel ---------------------------------------------------------------------------------
kdeb=${CB_KERNEL_DEB:-}
if [ -z "$kdeb" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ && !found {print $2; found = 1}')
  [ -n "$pkg" ] || { echo "build.sh: apt-cache knows no linux-image-amd64; set CB_KERNEL_DEB" >&2; exit 3; }
  # shellcheck disable=SC2012 # Debian package file names have no spaces or newlines
  kdeb=$(ls "$cache"/"${pkg}"_*.deb 2>/dev/null | sort | tail -1 || true)
  if [ -z "$kdeb" ]; then
    step "fetching $pkg (apt-get download)"
    ({ cd "$cache" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed'; } || true)
    # shellcheck disable=SC2012 # Debian package file names have no spaces or newlines
    kdeb=$(ls "$cache"/"${pkg}"_*.deb | sort | tail -1)
  fi
fi
kroot="$cache/$(basename "$kdeb" .deb)"
if [ ! -f "$kroot/.complete" ]; then
  step "extracting $(basename "$kdeb")"
  rm -rf "$kroot"; mkdir -p "$kroot"
  dpkg-deb -x "$kdeb" "$kroot"
  kv=$(ls "$kroot/lib/modules")
  depmod -b "$kroot" "$kv"
  touch "$kroot/.complete"
fi
kver=$(ls "$kroot/lib/modules")
step "kernel $kver from $(basename "$kdeb")"

# ---- modules image ---------------------------------------------------------------------------
# The kernel's complete /lib/modules/<version> and the firmware Debian's main ships for it
# (firmware-linux-free), as one squashfs beside the kernel: targets run on this kernel, and an
# image built for another kernel has no modules for it. Not in the initramfs (it is ≈ 85 MB):
# the agent fetches it when a target needs it, verifies it against the digest the initramfs
# carries (etc/chrootbooter/modules.sha256) and mounts it read-only.
# Layout: /lib/modules/<version>/… and /lib/firmware/…. Reproducible: every file gets the
# kernel package's own timestamp (not SOURCE_DATE_EPOCH, so that a new commit of this project
# keeps the digest and machines keep their cached copy), owner 0:0, no xattrs; mksquashfs
# writes files in sorted order whatever the number of processors. CB_FIRMWARE_DEBS=<.deb …>
# adds firmware packages (a site's non-free firmware) on top of firmware-linux-free.
# The result is cached by its inputs; CB_MODULES_REBUILD=yes builds it again (the
# reproducibility check does, and compares).
need mksquashfs squashfs-tools
fwdeb=${CB_FIRMWARE_FREE_DEB:-}
if [ -z "$fwdeb" ]; then
  # shellcheck disable=SC2012 # Debian package file names have no spaces or newlines
  fwdeb=$(ls "$cache"/firmware-linux-free_*.deb 2>/dev/null | sort | tail -1 || true)
  if [ -z "$fwdeb" ]; then
    step "fetching firmware-linux-free (apt-get download)"
    ({ cd "$cache" && apt-get download -q firmware-linux-free 2>&1 | grep -v '^W: Download is performed unsandboxed'; } || true)
    # shellcheck disable=SC2012 # Debian package file names have no spaces or newlines
    fwdeb=$(ls "$cache"/firmware-linux-free_*.deb 2>/dev/null | sort | tail -1 || true)
    [ -n "$fwdeb" ] || { echo "build.sh: could not fetch firmware-linux-free; set CB_FIRMWARE_FREE_DEB" >&2; exit 3; }
  fi
fi
read -r -a fw_extra <<<"${CB_FIRMWARE_DEBS:-}"
modules_time=$(stat -c %Y "$kroot/boot/vmlinuz-$kver")
modules_key=$( { sha256sum "$kdeb" "$fwdeb" "${fw_extra[@]}" | cut -d' ' -f1
  echo "$kver $modules_time"; mksquashfs -version | head -1; sed -n '/^# ---- modules image/,/^# ---- busybox/p' "$0"; } |
  sha256sum | cut -c1-32)
modules_img="$cache/modules-$modules_key.sqfs"
if [ ! -f "$modules_img" ] || [ "${CB_MODULES_REBUILD:-no}" = yes ]; then
  step "modules image: /lib/modules/$kver + $(basename "$fwdeb") ${fw_extra[*]}"
  mroot="$cache/modules-$modules_key.root"
  rm -rf "$cache"/modules-*.root "$cache"/modules-*.root.fw "$cache"/modules-*.sqfs.tmp  # an interrupted build's
  mkdir -p "$mroot/lib/modules" "$mroot/lib/firmware"
  cp -a "$kroot/lib/modules/$kver" "$mroot/lib/modules/"
  fwx="$mroot.fw"
  for d in "$fwdeb" "${fw_extra[@]}"; do
    rm -rf "$fwx"; dpkg-deb -x "$d" "$fwx"
    if [ -d "$fwx/lib/firmware" ]; then cp -a "$fwx/lib/firmware/." "$mroot/lib/firmware/"; fi
    if [ -d "$fwx/usr/lib/firmware" ]; then cp -a "$fwx/usr/lib/firmware/." "$mroot/lib/firmware/"; fi
  done
  rm -rf "$fwx"
  chmod -R u+w,go-w "$mroot"
  find "$mroot" -exec touch -h -d "@$modules_time" {} +
  # SOURCE_DATE_EPOCH sets mksquashfs' creation time and every inode's time.
  SOURCE_DATE_EPOCH=$modules_time mksquashfs "$mroot" "$modules_img.tmp" -noappend -all-root \
    -no-xattrs -quiet -no-progress -comp zstd >/dev/null
  mv "$modules_img.tmp" "$modules_img"
  rm -rf "$mroot"
fi
modules_sha=$(sha256sum "$modules_img" | cut -d' ' -f1)
step "modules image $(stat -c %s "$modules_img") bytes, sha256 $modules_sha"

# ---- busybox --------------------------------------------------------------------------------
busybox=${CB_BUSYBOX:-}
if [ -z "$busybox" ]; then
  if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
    busybox=/bin/busybox
  else
    bdir="$cache/busybox-static"
    if [ ! -x "$bdir/bin/busybox" ]; then
      step "fetching busybox-static (apt-get download)"
      mkdir -p "$bdir"
      ({ cd "$cache" && apt-get download -q busybox-static 2>&1 | grep -v '^W: Download'; } || true)
      # shellcheck disable=SC2012 # Debian package file names have no spaces or newlines
      dpkg-deb -x "$(ls "$cache"/busybox-static_*.deb | sort | tail -1)" "$bdir"
    fi
    busybox="$bdir/bin/busybox"
  fi
fi
if ldd "$busybox" >/dev/null 2>&1; then
  echo "build.sh: $busybox is dynamically linked; the initramfs needs busybox-static" >&2; exit 3
fi

# ---- staging root ---------------------------------------------------------------------------
rm -rf "$work"
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/share/udhcpc,usr/libexec/chrootbooter,etc/chrootbooter,lib/modules,lib64,dev,proc,sys,run,tmp,root,mnt,newroot,var,opt}
chmod 1777 "$root/tmp"
ln -s ../run "$root/var/run"

step "busybox applets"
install -m 0755 "$busybox" "$root/bin/busybox"
"$busybox" --list-full | while read -r p; do
  [ "$p" = bin/busybox ] && continue
  [ -e "$root/$p" ] || ln -s /bin/busybox "$root/$p"
done

step "kernel modules"
mods=$(for m in $kmods_base $kmods_nic $kmods_lazy; do
  if ! modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>/dev/null; then
    echo "bootstrap: kernel $kver has no module $m; skipped" >&2
  fi
done | awk '$1 == "insmod" {print $2}' | sort -u)
for f in $mods; do
  rel=${f#"$kroot"}
  mkdir -p "$root$(dirname "$rel")"
  cp "$f" "$root$rel"
done
cp "$kroot/lib/modules/$kver"/modules.order "$kroot/lib/modules/$kver"/modules.builtin* "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"
echo "$kmods_base" > "$root/etc/chrootbooter/modules"
echo "$kmods_nic" > "$root/etc/chrootbooter/modules.nic"
echo "$kmods_lazy" > "$root/etc/chrootbooter/modules.lazy"
echo "$modules_sha" > "$root/etc/chrootbooter/modules.sha256"

# ---- Java runtime ---------------------------------------------------------------------------
newest_jdk() { # the newest JDK >= 25 with jlink under /usr/lib/jvm, if any (none is no error)
  for j in /usr/lib/jvm/*/; do
    { [ -x "$j/bin/jlink" ] && [ -f "$j/release" ]; } || continue
    v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$j/release")
    if [ -n "$v" ] && [ "$v" -ge 25 ]; then echo "$v ${j%/}"; fi
  done | sort -n | tail -1 | cut -d' ' -f2
}
java_home=${CB_JAVA_HOME:-$(newest_jdk)}
java_home=${java_home:-$(dirname "$(dirname "$(readlink -f "$(command -v jlink)")")")}
java_major=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$java_home/release")
have=$("$java_home/bin/java" --list-modules | sed 's/@.*//')
java_modules=$(echo "$java_modules" | tr ',' '\n' | grep -Fxf <(echo "$have") | paste -sd, -)
# The class archive lives in /opt/agent-cache, which the initramfs leaves empty: agent-cache.img
# fills it, and the launcher (agent) uses it only when it verifies.
cache_dir=/opt/agent-cache
if [ "$java_major" -ge 25 ]; then
  # Java 25's AOT cache (JEP 483/514/515: classes loaded and linked, and method profiles, from
  # a training run) instead of the two CDS archives. It holds no machine code: adapters and
  # stubs compiled for the build host's CPU (AVX...) die with SIGILL on a machine without it.
  archive=$cache_dir/agent.aot
  archives="$archive"   # the AOT cache holds the JDK's classes too: no base archive
  jvm_flags="$jvm_flags -XX:+UnlockDiagnosticVMOptions -XX:-AOTAdapterCaching -XX:-AOTStubCaching"
  archive_flags="-XX:AOTCache=$archive"
else
  # The base archive of the JDK's classes and the agent's dynamic archive on top of it.
  base_archive=$cache_dir/classes.jsa
  archive=$cache_dir/agent.jsa
  archives="$base_archive $archive"
  archive_flags="-XX:SharedArchiveFile=$base_archive:$archive"
fi
step "jlink ($java_modules) from $java_home"
"$java_home/bin/jlink" --add-modules "$java_modules" --strip-debug --no-header-files --no-man-pages \
  --compress="${CB_JLINK_COMPRESS:-0}" --output "$root/opt/java"
# Symbol tables only serve debuggers and crash reports: Temurin ships libjvm.so unstripped
# (30 MB; 25 MB stripped). The dynamic symbols the JVM and JNI need stay.
find "$root/opt/java" -name '*.so' -exec strip --strip-unneeded {} +
# No --generate-cds-archive: the runtime in the initramfs holds no class archive at all (the
# dumps are not reproducible); Java 17's base archive is dumped below into agent-cache.img.
# Debian's JDK links cacerts to /etc/ssl/certs/java/cacerts: ship the file itself.
if [ -L "$root/opt/java/lib/security/cacerts" ] || [ ! -e "$root/opt/java/lib/security/cacerts" ]; then
  rm -f "$root/opt/java/lib/security/cacerts"
  src=$(readlink -f "$java_home/lib/security/cacerts" || true)
  if [ -n "$src" ] && [ -f "$src" ]; then cp "$src" "$root/opt/java/lib/security/cacerts"; fi
fi

step "shared libraries"
# What the runtime's own libraries need from the system (glibc, zlib, libstdc++ ...). AWT and
# sound libraries are headless-irrelevant and would drag X11 in: their deps are not copied.
libs=$(find "$root/opt/java" -name '*.so' ! -name 'libawt_xawt.so' ! -name 'libsplashscreen.so' \
  ! -name 'libjsound.so' ! -name 'libfontmanager.so' ! -name 'liblcms.so' ! -name 'libjawt.so' \
  ! -name 'libjavajpeg.so' ! -name 'libmlib_image.so' -print0 | sort -z | xargs -0 ldd "$root/opt/java/bin/java" 2>/dev/null |
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | sort -u)
for l in $libs; do
  case "$l" in "$root"/*) continue ;; esac
  dest="$root/lib/x86_64-linux-gnu/$(basename "$l")"
  mkdir -p "$(dirname "$dest")"
  cp -L "$l" "$dest"
done
ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
# Loaded by the agent through JNA, with the libraries they link: libcrypto for SHA-256
# (Sha256Engine) at the speed of the CPU's SHA instructions whatever the JIT compiles, liblzma
# for tar.xz images (XzEngine), XZ Utils' C decoder instead of tukaani's Java one under C1.
# Without them the agent hashes with MessageDigest and decodes xz with tukaani. libseccomp
# (SeccompFilter) writes the seccomp filter of a Confined target; without it a Confined image
# fails to boot, it never runs unconfined. JNA's own libjnidispatch.so stays in its jar (below):
# JNA copies it to a temporary file (java.io.tmpdir, /tmp) and loads it, as it does for the
# agent's system calls.
native_libs="libcrypto.so.3:libssl3 liblzma.so.5:liblzma5 libseccomp.so.2:libseccomp2"
for lp in $native_libs; do
  l=${lp%%:*}
  # awk reads all of ldconfig's output: leaving early would kill ldconfig with SIGPIPE, which
  # pipefail makes the build's failure (exit 141), depending on timing.
  f=$(ldconfig -p | awk -v l="$l" '$1 == l && /x86-64/ && !found {print $NF; found = 1}')
  [ -n "$f" ] || { echo "build.sh: $l not found: apt-get install ${lp#*:}" >&2; exit 3; }
  cp -L "$f" "$root/lib/x86_64-linux-gnu/$l"
  for d in $(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do
    [ -e "$root/lib/x86_64-linux-gnu/$(basename "$d")" ] || cp -L "$d" "$root/lib/x86_64-linux-gnu/"
  done
done

# ---- delivery Lazy: the block stack's tools --------------------------------------------------
# agent.lazy.LazyRoot runs nbd-client (the agent's NBD export, over its unix socket, handed to
# the kernel through netlink: no daemon stays behind), dmsetup (a dm-verity table: libdevmapper
# only, where veritysetup would add libcryptsetup and its crypto libraries) and losetup
# (util-linux: busybox's has no --show; it replaces busybox's applet). Taken from this host, with
# the libraries they link, as the runtime's are; without them a Lazy image is downloaded whole
# and the agent says why. nbd-client links GnuTLS (NBD over TLS, unused here): most of the bytes.
step "delivery Lazy: nbd-client, dmsetup, losetup"
lazy_tools="/usr/sbin/nbd-client:nbd-client /usr/sbin/dmsetup:dmsetup /usr/sbin/losetup:mount"
lazy_bytes=0
for tp in $lazy_tools; do
  t=${tp%%:*}
  [ -x "$t" ] || { echo "build.sh: $t not found: apt-get install ${tp#*:}" >&2; exit 3; }
  name=$(basename "$t")
  # One $name on the PATH: the busybox applet of the same name goes.
  for d in bin sbin usr/bin usr/sbin; do
    if [ -L "$root/$d/$name" ]; then rm -f "$root/$d/$name"; fi
  done
  install -m 0755 "$t" "$root/usr/sbin/$name"
  lazy_bytes=$((lazy_bytes + $(stat -c %s "$t")))
  for d in $(ldd "$t" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do
    dest="$root/lib/x86_64-linux-gnu/$(basename "$d")"
    if [ ! -e "$dest" ]; then
      cp -L "$d" "$dest"
      lazy_bytes=$((lazy_bytes + $(stat -c %s "$dest")))
    fi
  done
done
lazy_mod_bytes=$(for m in $kmods_lazy; do
  modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>/dev/null
done | awk '$1 == "insmod" {print $2}' | sort -u | xargs -r stat -c %s | awk '{n += $1} END {print n + 0}')

# ---- the agent ------------------------------------------------------------------------------
step "agent from $app"
mkdir -p "$root/opt/agent" "$root$cache_dir"
(cd "$app" && find . -path ./app-cds.jsa -prune -o -print | sort | cpio -pdm --quiet "$root/opt/agent")
# Quarkus numbers its recorders' proxy keys in the order its build threads happen to run:
# numbered again canonically, the same in every build (ProxyKeys says why that keeps the program).
"$java_home/bin/java" -cp "$(ls "$root"/opt/agent/app/chrootbooter-node-agent-*.jar)" \
  io.chrootbooter.agent.build.ProxyKeys "$root/opt/agent/quarkus/generated-bytecode.jar"
# Native libraries for other platforms: zstd-jni and JNA carry one per OS/arch.
for jar in "$root"/opt/agent/lib/main/*.jar; do
  drop=$(unzip -Z1 "$jar" | grep -E '\.(so|dll|dylib|jnilib|a)$' | grep -vE '(^|/)(linux/amd64|linux-x86-64)/' || true)
  [ -n "$drop" ] && echo "$drop" | zip -q -d "$jar" -@ >/dev/null
done
# What the kept native libraries need from the system (zstd-jni: libpthread, ...): they are
# loaded at run time, so the runtime's ldd above does not see them.
natives="$work/natives"
mkdir -p "$natives"
for jar in "$root"/opt/agent/lib/main/*.jar; do
  for so in $(unzip -Z1 "$jar" | grep -E '\.so$' || true); do
    unzip -q -o -j "$jar" "$so" -d "$natives"
  done
done
for so in "$natives"/*.so; do
  [ -f "$so" ] || continue
  missing=$(ldd "$so" 2>/dev/null | awk '$2 == "=>" && $3 == "not" {print $1}')
  [ -z "$missing" ] || { echo "bootstrap: $(basename "$so") needs $missing, which this host lacks" >&2; exit 1; }
  for l in $(ldd "$so" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do
    dest="$root/lib/x86_64-linux-gnu/$(basename "$l")"
    [ -e "$dest" ] || cp -L "$l" "$dest"
  done
done
rm -rf "$natives"

# ---- /init and its configuration ------------------------------------------------------------
step "init scripts"
install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/rc.sysinit" "$here/agent" "$here/agent-cgroup" "$here/jit-mode" "$here/console" "$here/cds-train" "$root/usr/libexec/chrootbooter/"
install -m 0755 "$here/udhcpc.script" "$root/usr/share/udhcpc/default.script"
# util-linux unshare (libc only): busybox's has no --cgroup, and a target gets its own cgroup
# namespace through it (EnterScript).
install -m 0755 /usr/bin/unshare "$root/usr/libexec/chrootbooter/unshare"
install -m 0644 "$here/inittab" "$root/etc/inittab"
{
  # Without -XX:TieredStopAtLevel=1: the launcher adds it where jit-mode says c1.
  echo "JVM_FLAGS='${jvm_flags/-XX:TieredStopAtLevel=1 /}'"
  echo "# Added by the launcher when agent-cache.img's archive verifies."
  echo "ARCHIVE_FLAGS='$archive_flags'"
  echo "AGENT_CACHE=$cache_dir"
} > "$root/etc/chrootbooter/agent.conf"
cat "$here/agent.conf" >> "$root/etc/chrootbooter/agent.conf"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' > "$root/etc/hosts"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
echo bootstrap > "$root/etc/hostname"
ln -sf /run/resolv.conf "$root/etc/resolv.conf"
ln -sf /proc/self/mounts "$root/etc/mtab"
{
  echo "kernel=$kver"
  echo "kernel_deb=$(basename "$kdeb")"
  echo "busybox=$("$busybox" | head -1)"
  echo "java=$("$root/opt/java/bin/java" -version 2>&1 | head -2 | tail -1)"
  echo "source_date_epoch=$SOURCE_DATE_EPOCH"
  echo "compression=$compression"
  echo "modules_image=$modules_sha"
  echo "agent_cache=$(for f in $archives; do basename "$f"; done | paste -sd, -)"
} > "$root/etc/chrootbooter/build-info"

# ---- class archives: Java 25's AOT cache, or Java 17's base and AppCDS archives -------------
# Dumped inside the staging root (chroot), so they record the paths the guest uses; the jars
# get their final mtime first, because CDS checks each jar's size and mtime.
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
# Neither is byte-for-byte reproducible, so they go into agent-cache.img and not into the
# initramfs. Measured with a small jar, the same command twice:
# - Java 25, -XX:AOTMode=create from one AOTConfiguration, with -Xint, a fixed 128 MB heap,
#   Serial GC and ASLR off: every region differs (about 0.5 MB of 20 MB: most in the archived
#   heap, whose objects come out in a different order, some in rw, ro and the bitmap); two
#   training runs already give different AOTConfiguration files;
# - Java 17, -Xshare:dump of the JDK's own class list with a fixed heap: about 50 kB differ
#   (classes such as jdk.internal.misc.VM$BufferPool land at another place; sorted-order dumps
#   came with JDK 19); on one CPU with ASLR off, 1 dump in 5 still differs.
# An AOT cache also holds the method profiles of a timed training run.
# The archives are cached by the key of their inputs: every other file of the staging root,
# the flags and the dump commands; a build with the same inputs takes them from the cache.
# CB_CDS_CACHE=off dumps afresh. The initramfs holds that key (/etc/chrootbooter/
# agent-cache.key) and agent-cache.img the same key and the archives' digests: the launcher
# uses an archive only when both keys match and the digests verify.
# The agent's archive is trained on the path every boot takes: `run` up to the operator's
# stream and the first report (cds-train), so the classes of that path map from the archive
# instead of being read from the jars and verified under TCG.
if [ "$java_major" -ge 25 ]; then
  base_cmd=""
  cds_cmd="/usr/libexec/chrootbooter/cds-train /opt/java/bin/java $jvm_flags -XX:AOTCacheOutput=$archive -Xlog:aot=off -Xlog:cds=off -jar /opt/agent/quarkus-run.jar"
  check_flags="-XX:AOTMode=on"
else
  base_cmd="/opt/java/bin/java -Xshare:dump -Xmx128M -Xms128M -XX:SharedArchiveFile=$base_archive -Xlog:cds=off"
  cds_cmd="/usr/libexec/chrootbooter/cds-train /opt/java/bin/java $jvm_flags -XX:SharedArchiveFile=$base_archive -XX:ArchiveClassesAtExit=$archive -Xlog:cds=off -Xlog:cds+dynamic=off -jar /opt/agent/quarkus-run.jar"
  check_flags="-Xshare:on"
fi
# -Xshare:on / -XX:AOTMode=on fail when an archive does not map or does not match the jars;
# --help takes picocli's path, the one the boot path (AgentMain) skips.
check_cmd="/opt/java/bin/java $jvm_flags $check_flags $archive_flags -jar /opt/agent/quarkus-run.jar --help"
in_root() { # runs $1 inside the staging root with /proc, /dev and a /tmp
  if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    setarch "$(uname -m)" -R unshare -m --propagation private sh -c "
      mount -t proc proc '$root/proc' && mount -t tmpfs tmpfs '$root/tmp' &&
      mount --bind /dev '$root/dev' && exec chroot '$root' $1"
  else
    echo "build.sh: the CDS dumps run in a chroot of the staging root: run as root" >&2; exit 3
  fi
}
in_training_root() { # runs $1 in the staging root with its own network, /dev, /run and cgroups
  setarch "$(uname -m)" -R unshare -m -n --propagation private sh -c "
    mount -t proc proc '$root/proc' && mount -t tmpfs tmpfs '$root/tmp' &&
    mount -t tmpfs -o mode=0755 dev '$root/dev' &&
    mknod -m 0666 '$root/dev/null' c 1 3 && mknod -m 0666 '$root/dev/zero' c 1 5 &&
    mknod -m 0666 '$root/dev/random' c 1 8 && mknod -m 0666 '$root/dev/urandom' c 1 9 &&
    mount -t sysfs sysfs '$root/sys' && mount -t tmpfs cgroup '$root/sys/fs/cgroup' &&
    mount -t tmpfs run '$root/run' && exec chroot '$root' $1"
}
cds_key=$( { (cd "$root" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  (cd "$root" && find . -type l -printf '%p -> %l\n' | sort)
  echo "$base_cmd"; echo "$cds_cmd"; } | sha256sum | cut -c1-32)
cds_dir="$cache/cds/$cds_key"
cached=yes
for f in $archives; do [ -s "$cds_dir/$(basename "$f")" ] || cached=no; done
if [ "${CB_CDS_CACHE:-on}" != off ] && [ "$cached" = yes ]; then
  step "class archives from the cache ($cds_key)"
  for f in $archives; do cp "$cds_dir/$(basename "$f")" "$root$f"; done
else
  step "class archives: $archives (training run: run, cds-train)"
  [ -z "$base_cmd" ] || in_root "$base_cmd" >/dev/null
  in_training_root "$cds_cmd" >/dev/null
  if [ "${CB_CDS_CACHE:-on}" != off ]; then
    mkdir -p "$cds_dir.tmp"
    for f in $archives; do cp "$root$f" "$cds_dir.tmp/"; done
    rm -rf "$cds_dir"; mv "$cds_dir.tmp" "$cds_dir"
  fi
fi
for f in $archives; do
  [ -s "$root$f" ] || { echo "build.sh: no class archive $f was written" >&2; exit 4; }
done
in_root "$check_cmd" >/dev/null || { echo "build.sh: the class archives do not map ($check_flags failed)" >&2; exit 4; }
in_root "${check_cmd/-XX:TieredStopAtLevel=1 /}" >/dev/null || { echo "build.sh: the class archives do not map with tiered compilation ($check_flags failed)" >&2; exit 4; }
# What the runs above left in the staging root's home: JNA unpacks its native part into
# ~/.cache/JNA when the agent first calls C (libcrypto, libseccomp, netlink). A build whose class
# archives came from the cache runs no training, so keeping it would make two builds differ.
rm -rf "${root:?}/root/.cache"
# Out of the staging root into the second initrd's root, with the key and the digests the
# launcher checks; the initramfs keeps the empty folder and the key.
cache_root="$work/agent-cache"
rm -rf "$cache_root"; mkdir -p "$cache_root$cache_dir"
for f in $archives; do mv "$root$f" "$cache_root$f"; done
rm -rf "${root:?}$cache_dir" && mkdir -p "$root$cache_dir"
echo "$cds_key" > "$root/etc/chrootbooter/agent-cache.key"
echo "$cds_key" > "$cache_root$cache_dir/key"
(cd "$cache_root$cache_dir" && for f in $archives; do sha256sum "$(basename "$f")"; done) > "$cache_root$cache_dir/SHA256SUMS"

# ---- the archive ----------------------------------------------------------------------------
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
step "cpio + $compression"
compress() {
  case "$compression" in
    lz4) lz4 -l -9 -q -c ;;       # legacy frame: the one the kernel's unpacker reads
    zstd) zstd -19 -T0 -q -c ;;   # no --long: the kernel's decompressor limits the window
    xz) xz -9 -T1 --check=crc32 -c ;;
    none) cat ;;
  esac
}
# Ends FILE with 4 to 7 zero bytes, up to a multiple of 4. iPXE puts the next initrd at the next
# multiple of 4, and the kernel's lz4 reader, which cannot tell where a legacy frame ends, reads
# on: at 4 zero bytes it stops and the unpacker skips zeros up to the next archive; after 1 to 3
# bytes it read a wrong chunk length and lost the second initrd ("Initramfs unpacking failed").
pad4() {
  local size
  size=$(stat -c %s "$1")
  head -c $((4 + (4 - size % 4) % 4)) /dev/zero >>"$1"
}
(cd "$root" && find . -mindepth 1 | sort |
  cpio -o -H newc --reproducible --owner=0:0 --quiet) > "$work/initramfs.cpio"
compress < "$work/initramfs.cpio" > "$out/initramfs.img.tmp"
pad4 "$out/initramfs.img.tmp"
mv "$out/initramfs.img.tmp" "$out/initramfs.img"
# The second initrd: iPXE loads it after the initramfs and the kernel unpacks it on top.
find "$cache_root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$cache_root" && find . -mindepth 1 | sort |
  cpio -o -H newc --reproducible --owner=0:0 --quiet) | compress > "$out/agent-cache.img.tmp"
pad4 "$out/agent-cache.img.tmp"
mv "$out/agent-cache.img.tmp" "$out/agent-cache.img"

# ---- the kernel images ----------------------------------------------------------------------
install -m 0644 "$kroot/boot/vmlinuz-$kver" "$out/vmlinuz"
install -m 0644 "$modules_img" "$out/modules.sqfs"
if [ "$vmlinux" = yes ]; then
  # The uncompressed ELF inside the bzImage (the kernel's scripts/extract-vmlinux logic):
  # QEMU boots it through PVH and skips ≈ 6 s of self-decompression under TCG.
  off=$(grep -aboP '\xfd7zXZ\x00' "$out/vmlinuz" | head -1 | cut -d: -f1 || true)
  if [ -n "$off" ]; then
    tail -c +$((off + 1)) "$out/vmlinuz" | xz -dcq --single-stream > "$out/vmlinux" || true
  fi
  if ! head -c 4 "$out/vmlinux" 2>/dev/null | grep -q ELF; then
    echo "bootstrap: could not extract an ELF vmlinux; boot vmlinuz" >&2; rm -f "$out/vmlinux"
  fi
fi
touch -d "@$SOURCE_DATE_EPOCH" "$out"/*
cp "$root/etc/chrootbooter/build-info" "$out/build-info"

unpacked=$(stat -c %s "$work/initramfs.cpio")
packed=$(stat -c %s "$out/initramfs.img")
sums=(initramfs.img vmlinuz modules.sqfs)
[ ! -f "$out/vmlinux" ] || sums+=(vmlinux)
(cd "$out" && sha256sum "${sums[@]}" > SHA256SUMS)
(cd "$out" && sha256sum agent-cache.img > agent-cache.sha256)
step "done"
printf 'bootstrap: initramfs.img %s bytes (%s MiB, %s), unpacked %s bytes (%s MiB)\n' \
  "$packed" "$((packed / 1048576))" "$compression" "$unpacked" "$((unpacked / 1048576))"
printf 'bootstrap:   delivery Lazy: tools and their libraries %s bytes, modules %s bytes (unpacked)\n' \
  "$lazy_bytes" "$lazy_mod_bytes"
printf 'bootstrap:   java runtime %s, agent %s, modules %s\n' \
  "$(du -sh "$root/opt/java" | cut -f1)" "$(du -sh "$root/opt/agent" | cut -f1)" "$(du -sh "$root/lib/modules" | cut -f1)"
sed 's/^/bootstrap:   /' "$out/SHA256SUMS"
printf 'bootstrap: agent-cache.img %s bytes (key %s), not reproducible:\n' "$(stat -c %s "$out/agent-cache.img")" "$cds_key"
sed 's/^/bootstrap:   /' "$out/agent-cache.sha256"
rm -f "$work/initramfs.cpio"
# What iPXE loads before the agent can say anything: at most 64 MiB (CB_INITRAMFS_MAX), so that
# a machine with little RAM keeps room for its images, and the network boot stays short.
max=${CB_INITRAMFS_MAX:-67108864}
echo "bootstrap: initramfs_bytes $packed (limit $max)"
if [ "$packed" -gt "$max" ]; then
  echo "build.sh: initramfs.img is $packed bytes, more than the $max allowed (CB_INITRAMFS_MAX)" >&2
  exit 5
fi
[ "${CB_KEEP_WORK:-no}" = yes ] || rm -rf "$work"
