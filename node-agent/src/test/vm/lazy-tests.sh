#!/usr/bin/env bash
# Runs the Lazy delivery tests that need the nbd and dm-verity modules (LazyRootTest,
# LazyLoadTest) inside a QEMU machine with Debian's kernel, for hosts whose own kernel lacks
# them (they skip there, saying so). The machine sees this host's root read-only over 9p
# (chroot: same JDK, classes and tools), writes only to tmpfs, and loads the modules from
# /lib/modules/<its version>. One machine (TCG; CB_VM_ACCEL=kvm to try KVM), powered off at the end;
# about 6 minutes under TCG, plus 10-20 s for each of LazyLoadTest's CB_LAZY_CYCLES returns during
# the prefetch (default 100). Needs: qemu-system-x86_64, busybox-static, a Debian kernel in /boot
# with its modules, and a built node-agent (mvn -pl node-agent -am test-compile).
# Exit status: 0 when every test passed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../../.." && pwd)
agent="$repo/node-agent"
kernel=${CB_VM_KERNEL:-$(find /boot -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -1)}
kver=${kernel##*/vmlinuz-}
mods="/lib/modules/$kver/kernel"
[ -d "$mods" ] || { echo "lazy-tests.sh: no modules for $kver in /lib/modules" >&2; exit 2; }
[ -d "$agent/target/test-classes/io/chrootbooter/agent/lazy" ] ||
  { echo "lazy-tests.sh: build first: mvn -pl node-agent -am test-compile" >&2; exit 2; }
work=$(mktemp -d /tmp/cb-lazy-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/guest-tmp"

(cd "$agent" && mvn -B -o -q dependency:build-classpath -Dmdep.includeScope=test \
  -Dmdep.outputFile="$work/deps")
cp="$work:$agent/target/test-classes:$agent/target/classes:$repo/protocol/target/classes"
cp="$cp:$(tr ':' '\n' <"$work/deps" | grep -v chrootbooter-protocol | paste -sd:)"
javac -d "$work" -cp "$cp" "$(dirname "$0")/RunOne.java"

ir="$work/initramfs"
mkdir -p "$ir/bin" "$ir/lib/modules" "$ir/proc" "$ir/sys" "$ir/dev" "$ir/host"
cp /bin/busybox "$ir/bin/"
for a in sh mount insmod chroot poweroff; do ln -s busybox "$ir/bin/$a"; done
for m in drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko \
  drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci_legacy_dev.ko \
  drivers/virtio/virtio_pci.ko fs/fscache/fscache.ko fs/netfs/netfs.ko net/9p/9pnet.ko \
  net/9p/9pnet_virtio.ko fs/9p/9p.ko; do
  [ -f "$mods/$m" ] && cp "$mods/$m" "$ir/lib/modules/"
done
cycles=${CB_LAZY_CYCLES:-100}
java_opts="-Djava.io.tmpdir=$work/guest-tmp -Dcb.lazy.cycles=$cycles -XX:-UsePerfData -XX:TieredStopAtLevel=1 -cp $cp"
cat >"$ir/init" <<INIT
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
# In dependency order, whatever it is: each pass loads what the last one made loadable.
for pass in 1 2 3 4 5 6; do for f in /lib/modules/*.ko; do insmod \$f 2>/dev/null && rm \$f; done; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,ro host /host || { echo "lazy-tests: 9p mount failed"; poweroff -f; }
mount -t proc proc /host/proc; mount -t sysfs sysfs /host/sys; mount -t devtmpfs dev /host/dev
mount -t tmpfs tmp /host/run; mount -t tmpfs tmp /host$work/guest-tmp
chroot /host /bin/sh -c 'export HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin
  ip link set lo up; modprobe squashfs; modprobe overlay; modprobe loop
  ok=0
  for t in LazyRootTest LazyLoadTest; do
    java $java_opts RunOne io.chrootbooter.agent.lazy.\$t || ok=1
  done
  echo "lazy-tests: dm devices left: \$(dmsetup ls)"
  echo "lazy-tests: exit \$ok"'
poweroff -f
INIT
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initramfs.gz")
# TCG unless asked: a /dev/kvm that opens is no sign that KVM runs (nested hosts).
accel=${CB_VM_ACCEL:-tcg}
timeout $((900 + 30 * cycles)) qemu-system-x86_64 -machine "q35,accel=$accel" -cpu max -m 3072 -smp 1 -nographic \
  -no-reboot -kernel "$kernel" -initrd "$work/initramfs.gz" \
  -append "console=ttyS0 quiet panic=-1" \
  -virtfs "local,path=/,mount_tag=host,security_model=passthrough,multidevs=remap,readonly=on" \
  | tee "$work/console.log" | grep -v -E '^\s*$|SeaBIOS|iPXE|Booting from' || true
grep -q "lazy-tests: exit 0" "$work/console.log"
