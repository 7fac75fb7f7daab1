# shellcheck shell=bash
# The lab's images: two busybox variants (tar.zst, built here from busybox-static) and the Debian 12
# systemd image (squashfs, e2e/lab/images/debian.sh), served to the operator by busybox httpd
# inside the namespace, and the BootImages that name them.

# A static busybox: busybox-static's, else one extracted from that package into the cache (the
# dynamic `busybox` package conflicts with busybox-static, and replacing it is not ours to do).
static_busybox() {
  local b
  for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then echo "$b"; return; fi
  done
  local dir=$CACHE/busybox-static
  if [ ! -x "$dir/bin/busybox" ]; then
    (cd "$CACHE" && apt-get download -q busybox-static >/dev/null 2>&1) || die "cannot fetch busybox-static"
    dpkg-deb -x "$(find "$CACHE" -maxdepth 1 -name 'busybox-static_*.deb' | sort | tail -1)" "$dir"
  fi
  echo "$dir/bin/busybox"
}

# The busybox image's /sbin/init (VARIANT in $1): prints the marker, reports healthy, then reads
# console lines: `return [reason]` runs /.bootstrap-return, anything else runs in sh. It is PID
# 1 of the target's PID namespace; SIGTERM (the agent's graceful return) ends it.
busybox_init() {
  cat <<EOF
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
trap 'echo "$1: SIGTERM, exiting"; exit 0' TERM
[ -e /proc/self ] || mount -t proc proc /proc 2>/dev/null
echo "CB-LAB-MARKER $1: init running"
# In the background: the helper blocks until the agent reads it, and the console must not wait.
[ -x /.bootstrap-return ] && /.bootstrap-return --healthy &
echo "$1: type 'return [reason]' to run /.bootstrap-return; other lines run in sh"
printf '%s# ' "$1"
while :; do
  # End of input only when the console hangs up: wait for it to come back, quietly.
  if ! read -r line; then sleep 1; continue; fi
  case "\$line" in
    return | "return "*) /.bootstrap-return \${line#return} ;;
    "") ;;
    *) sh -c "\$line" ;;
  esac
  printf '%s# ' "$1"
done
EOF
}

# build_busybox_image VARIANT OUT: a tar.zst root with busybox, its applets, /sbin/init and an
# os-release naming the variant. Reproducible: sorted, mtime 0, owner 0:0.
build_busybox_image() {
  local variant=$1 out=$2 bb tmp p
  bb=$(static_busybox)
  tmp=$(mktemp -d "$CACHE/busybox-build.XXXXXX")
  mkdir -p "$tmp"/root/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,var/log}
  chmod 1777 "$tmp/root/tmp"
  install -m 0755 "$bb" "$tmp/root/bin/busybox"
  for p in $("$bb" --list-full); do
    [ -e "$tmp/root/$p" ] || [ -L "$tmp/root/$p" ] || ln -s /bin/busybox "$tmp/root/$p"
  done
  rm -f "$tmp/root/sbin/init"
  busybox_init "$variant" >"$tmp/root/sbin/init"
  chmod 0755 "$tmp/root/sbin/init"
  printf 'NAME="Chroot Booter lab %s"\nID=busybox\nVARIANT_ID=%s\n' "$variant" "$variant" >"$tmp/root/etc/os-release"
  echo "root:x:0:0:root:/root:/bin/sh" >"$tmp/root/etc/passwd"
  echo "root:x:0:" >"$tmp/root/etc/group"
  echo "$variant" >"$tmp/root/etc/hostname"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/root" -cf - . |
    zstd -q -9 -o "$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$tmp"
}

# busybox_image VARIANT: the cached image file, built once per recipe and busybox binary; the
# lock lets two labs (a user's and a test's) share one build.
busybox_image() {
  local key file
  key=$( { declare -f busybox_init build_busybox_image; sha256sum <"$(static_busybox)"; } | sha256sum | cut -c1-16)
  file=$CACHE/$1-$key.tar.zst
  if [ ! -f "$file" ]; then
    (flock 8 && { [ -f "$file" ] || build_busybox_image "$1" "$file"; }) 8>"$CACHE/.lock"
  fi
  echo "$file"
}

bootimage_yaml() { # NAME URL SHA256 FORMAT [GRACE]
  cat <<EOF
---
apiVersion: boot.chrootbooter.io/v1alpha1
kind: BootImage
metadata:
  name: $1
  namespace: $LAB_NAMESPACE
spec:
  source:
    url: $2
  sha256: $3
  format: $4
  init: /sbin/init
EOF
  # systemd under TCG may need more than the agent's default 10 s to power off.
  if [ -n "${5:-}" ]; then printf '  stop:\n    gracePeriod: %s\n' "$5"; fi
}

# build_debian_image: the Debian image into $STATE/www, in the background while the services are
# watched; false (after saying why) when the mirror cannot be reached and none is cached.
build_debian_image() {
  note "the Debian 12 image (e2e/lab/images/debian.sh; the first build takes minutes; log: $STATE/logs/debian-image.log)"
  "$HERE/images/debian.sh" "$STATE/www/debian-12.squashfs" "${LAB_DEBIAN_CACHE:-$CACHE/debian}" \
    >"$STATE/logs/debian-image.log" 2>&1 &
  local rc=0
  wait_job $! "the Debian image build" || rc=$?
  case $rc in
    0) return 0 ;;
    # debian.sh's "no network": the lab is still of use with the busybox images.
    4) tail -3 "$STATE/logs/debian-image.log" >&2
      note "no Debian image: its mirror cannot be reached and none is cached; going on without it"
      return 1 ;;
    *) tail -30 "$STATE/logs/debian-image.log" >&2; die "the Debian image build failed (exit $rc)" ;;
  esac
}

# start_image_server: busybox httpd on $GW:$IMAGES_PORT inside the namespace, serving $STATE/www;
# then one BootImage per image file into manifests/bootimages.yaml, and the images in lab.env.
start_image_server() {
  spawn images --ns "$(static_busybox)" httpd -f -vv -p "$GW:$IMAGES_PORT" -h "$STATE/www"
  local images_url=http://$GW:$IMAGES_PORT entry file name format grace sha key
  env_set IMAGES_URL "$images_url"
  env_set IMAGES_DIR "$STATE/www"
  for entry in busybox-a.tar.zst:busybox:tar.zst: busybox-b.tar.zst:busybox-b:tar.zst: debian-12.squashfs:debian-12:squashfs:30s; do
    IFS=: read -r file name format grace <<<"$entry"
    [ -f "$STATE/www/$file" ] || continue
    sha=$(sha256sum "$STATE/www/$file" | cut -d' ' -f1)
    bootimage_yaml "$name" "$images_url/$file" "$sha" "$format" "$grace" >>"$STATE/manifests/bootimages.yaml"
    key=$(echo "$name" | tr 'a-z-' 'A-Z_')
    env_set "IMAGE_${key}_URL" "$images_url/$file"
    env_set "IMAGE_${key}_SHA256" "$sha"
  done
  wait_for "the image server" 10 in_ns curl -sf -o /dev/null "$images_url/busybox-a.tar.zst" -r 0-0 ||
    { show_log images 20; die "the image server did not answer"; }
}
