# shellcheck shell=bash
# The lab's machines: QEMU in the namespace, PXE-booting from a virtio NIC; their MachineBoots;
# and the commands that act on them as a person at the machine would (console, keys, serial
# line, power).

# KVM only when a canary boot works: where /dev/kvm comes from nested paging, the kernel does
# not boot under it (docs/architecture.md §7). The canary boots the bootstrap's vmlinux with a two-file
# initramfs that prints a line and powers off; the verdict is cached per host kernel and QEMU.
choose_accel() {
  if [ -n "${LAB_ACCEL:-}" ]; then echo "$LAB_ACCEL"; return; fi
  if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ] || [ ! -f "$BOOTSTRAP_DIR/vmlinux" ]; then
    echo tcg
    return
  fi
  local key verdict
  key=$( { uname -r; qemu-system-x86_64 --version | head -1; } | sha256sum | cut -c1-16)
  verdict=$CACHE/accel-$key
  if [ ! -f "$verdict" ]; then
    local tmp bb
    tmp=$(mktemp -d "$CACHE/canary.XXXXXX")
    bb=$(static_busybox)
    mkdir -p "$tmp/root/bin"
    install -m 0755 "$bb" "$tmp/root/bin/busybox"
    printf '#!/bin/busybox sh\n/bin/busybox echo CB-CANARY-OK\n/bin/busybox poweroff -f\n' >"$tmp/root/init"
    chmod 0755 "$tmp/root/init"
    (cd "$tmp/root" && find . | cpio -o -H newc --quiet) >"$tmp/initramfs"
    note "probing KVM with a canary boot (at most 30 s, once per host kernel and QEMU)"
    if timeout 30 qemu-system-x86_64 -accel kvm -cpu qemu64,+rdrand -m 256 -nodefaults \
      -display none -serial stdio -no-reboot -kernel "$BOOTSTRAP_DIR/vmlinux" \
      -initrd "$tmp/initramfs" -append "console=ttyS0 quiet panic=-1 no_timer_check" </dev/null 2>&1 |
      grep -q CB-CANARY-OK; then
      echo kvm >"$verdict"
    else
      echo tcg >"$verdict"
    fi
    rm -rf "$tmp"
  fi
  cat "$verdict"
}

# What a lab machine is (MAC, address, QEMU's machine, CPU, processors, memory, NIC), written
# once in machine.properties, which the Java tests' fixture (testkit) reads as well.
MACHINE_PROPERTIES=$ROOT/testkit/src/main/resources/io/chrootbooter/testkit/machine.properties
machine_prop() { # KEY: its value in machine.properties
  local v
  v=$(sed -n "s/^${1//./\\.}=//p" "$MACHINE_PROPERTIES" | tail -1)
  [ -n "$v" ] || die "$MACHINE_PROPERTIES has no $1"
  printf '%s\n' "$v"
}

mac_of() { printf '%s:%02x' "$(machine_prop mac.prefix)" $(($(machine_prop mac.first) + ${1#m})); }
ip_of() { echo "$SUBNET.$(($(machine_prop address.first) + ${1#m}))"; }

# start_vm NAME: QEMU in the namespace, PXE-booting from its virtio NIC (the iPXE of
# efi-virtio.rom, ipxe-qemu). ttyS0 is the console (a socket, and a log that records it even
# when nobody is attached), ttyS1 the magic-string port, ttyS2 the bootstrap's debug shell
# (with LAB_DEBUG=1); the HMP monitor takes `sendkey` and `system_reset`. The PS/2 keyboard of the pc machine is the one the agent's hotkey reads.
start_vm() {
  local name=$1 dir
  dir=$(vm_dir "$name")
  mkdir -p "$dir"
  rm -f "$dir"/*.sock
  spawn "$name" --ns qemu-system-x86_64 -name "$name" -accel "$ACCEL" \
    -machine "$(machine_prop qemu.machine)" -cpu "$(machine_prop qemu.cpu)" \
    -smp "${LAB_VM_SMP:-$(machine_prop qemu.smp)}" -m "${LAB_VM_MEM:-$(machine_prop qemu.memory)}" \
    -nodefaults -display none \
    -chardev "socket,id=con0,path=$dir/console.sock,server=on,wait=off,logfile=$dir/console.log,logappend=on" \
    -serial chardev:con0 \
    -chardev "socket,id=ser1,path=$dir/serial1.sock,server=on,wait=off,logfile=$dir/serial1.log,logappend=on" \
    -serial chardev:ser1 \
    -chardev "socket,id=dbg,path=$dir/debug.sock,server=on,wait=off,logfile=$dir/debug.log,logappend=on" \
    -serial chardev:dbg \
    -monitor "unix:$dir/monitor.sock,server=on,wait=off" \
    -netdev "tap,id=n0,ifname=tap-$name,script=no,downscript=no" \
    -device "$(machine_prop qemu.nic),netdev=n0,mac=$(mac_of "$name"),bootindex=1"
  wait_for "QEMU of $name" 20 test -S "$dir/monitor.sock" ||
    { show_log "$name" 20; die "QEMU for $name did not start"; }
}

monitor() {
  local dir
  dir=$(vm_dir "$1"); shift
  [ -S "$dir/monitor.sock" ] || die "$dir/monitor.sock is missing: is the machine powered on?"
  # HMP answers with a banner and prompts; keep only what the command itself printed.
  printf '%s\n' "$@" | socat -t 1 - "UNIX-CONNECT:$dir/monitor.sock" |
    tr -d '\r' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' | grep -v -e '^QEMU .* monitor' -e '^(qemu)' || true
}

machineboot_yaml() { # NAME IMAGE, or "" to hold the machine in the bootstrap
  cat <<EOF
---
apiVersion: boot.chrootbooter.io/v1alpha1
kind: MachineBoot
metadata:
  name: $1
  namespace: $LAB_NAMESPACE
spec:
  macAddress: "$(mac_of "$1")"
EOF
  if [ -n "$2" ]; then echo "  imageRef: $2"; else echo "  state: Bootstrap"; fi
  cat <<EOF
  kernelArgs: [systemd.show_status=1]
  overlay: tmpfs
  returnTriggers:
    hotkey: true
    helper: true
    serial: {device: ttyS1, magic: $MAGIC}
EOF
}

cmd_console() {
  require_vm "$1"
  local sock
  sock=$(vm_dir "$1")/console.sock
  if [ "${2:-}" = --debug ]; then sock=$(vm_dir "$1")/debug.sock; fi
  [ -S "$sock" ] || die "$sock is missing: is $1 powered on?"
  if [ -t 0 ]; then
    note "attached to $1's console; Ctrl-] detaches"
    exec socat -,rawer,escape=0x1d "UNIX-CONNECT:$sock"
  fi
  exec socat - "UNIX-CONNECT:$sock"
}

# to_socket SOCKET TEXT: writes TEXT and keeps the connection open a while: QEMU drops what it
# has not yet passed to the guest's UART (a 16-byte FIFO) when the client hangs up.
to_socket() {
  { printf '%s' "$2"; sleep $((1 + ${#2} / 64)); } | socat -u - "UNIX-CONNECT:$1"
}

# A line typed on a terminal ends with CR; the guest tty's ICRNL makes it the newline a shell
# reads.
cmd_type() {
  require_vm "$1"
  local sock
  sock=$(vm_dir "$1")/console.sock
  shift
  to_socket "$sock" "$*"$'\r'
}

cmd_serial() {
  require_vm "$1"
  local sock
  sock=$(vm_dir "$1")/serial1.sock
  shift
  # The leading newline ends whatever partial line the port had seen.
  to_socket "$sock" $'\n'"$*"$'\n'
}

cmd_key() {
  require_vm "$1"
  local m=$1 k
  shift
  [ $# -gt 0 ] || die "usage: ./lab key m1 ctrl-alt-f12 [more keys ...]"
  for k in "$@"; do
    [[ "$k" =~ ^[a-z0-9_-]+$ ]] || die "\"$k\" is not a QEMU key combination (see HMP sendkey)"
    monitor "$m" "sendkey $k"
  done
}

cmd_power() {
  require_vm "$1"
  local m=$1
  case "${2:-}" in
    on) if alive "$m"; then die "$m is already on"; fi; start_vm "$m" ;;
    off) stop_pids "$STATE/pids/$m.pid" ;;
    reset) monitor "$m" system_reset ;;
    *) die "usage: ./lab power $m on|off|reset" ;;
  esac
}

