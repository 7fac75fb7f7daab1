#!/bin/bash
# The base image of the operator image, built without a registry or Docker: a jlink'ed Java 17
# runtime, the shared libraries it links against (from this Debian host), CA certificates, a
# non-root user (185, the UID the Helm chart runs as) and /tmp, written as a `docker save`
# archive that Jib takes as its base (quarkus.jib.base-jvm-image=tar://...).
#
# Usage: build-base.sh OUT_DIR      (writes OUT_DIR/base.tar; OUT_DIR/rootfs is the tree)
# Java:  CB_JAVA_HOME, else the JDK running `jlink` on the PATH (openjdk-17-jdk-headless).
set -euo pipefail

out=${1:?usage: build-base.sh OUT_DIR}
root="$out/rootfs"
rm -rf "$out"
mkdir -p "$root"/{etc,tmp,proc,sys,dev,lib64,lib/x86_64-linux-gnu,deployments}
chmod 1777 "$root/tmp"

java_home=${CB_JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v jlink)")")")}
# What Quarkus, Vert.x, the fabric8 client and Micrometer's JVM/process metrics use
# (jdeps --print-module-deps over quarkus-app/lib, plus the ones loaded reflectively).
modules=java.base,java.compiler,java.instrument,java.logging,java.management,java.naming,\
java.net.http,java.rmi,java.scripting,java.security.jgss,java.security.sasl,java.sql,java.xml,\
jdk.crypto.ec,jdk.management,jdk.naming.dns,jdk.unsupported,jdk.zipfs
"$java_home/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
  --output "$root/opt/java"
# Debian's JDK links cacerts to /etc/ssl/certs/java/cacerts: ship the file itself.
if [ -L "$root/opt/java/lib/security/cacerts" ] || [ ! -e "$root/opt/java/lib/security/cacerts" ]; then
  rm -f "$root/opt/java/lib/security/cacerts"
  src=$(readlink -f "$java_home/lib/security/cacerts" || true)
  if [ -n "$src" ] && [ -f "$src" ]; then cp "$src" "$root/opt/java/lib/security/cacerts"; fi
fi

# What the runtime's libraries need from the system: glibc (with its built-in NSS since 2.34),
# zlib, libstdc++ ...
libs=$(find "$root/opt/java" -name '*.so' -print0 | sort -z |
  xargs -0 ldd "$root/opt/java/bin/java" 2>/dev/null |
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | sort -u)
for l in $libs; do
  case "$l" in "$root"/*) continue ;; esac
  cp -L "$l" "$root/lib/x86_64-linux-gnu/$(basename "$l")"
done
ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"

printf 'root:x:0:0:root:/:/sbin/nologin\nchrootbooter:x:185:185:chrootbooter:/deployments:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nchrootbooter:x:185:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

# One layer, reproducible: sorted names, numeric root ownership, a fixed time.
(cd "$root" && tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -cf ../layer.tar .)
diff_id=$(sha256sum "$out/layer.tar" | cut -d' ' -f1)
cat >"$out/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z",
 "config":{"User":"185:185","Env":["PATH=/opt/java/bin:/usr/bin:/bin","JAVA_HOME=/opt/java"],"WorkingDir":"/deployments"},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},
 "history":[{"created":"1970-01-01T00:00:00Z","created_by":"operator/src/image/build-base.sh: jlink'ed Java runtime and its libraries"}]}
JSON
echo '[{"Config":"config.json","RepoTags":["chrootbooter-operator-base:local"],"Layers":["layer.tar"]}]' >"$out/manifest.json"
(cd "$out" && tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -cf base.tar manifest.json config.json layer.tar)
rm -f "$out/layer.tar"
echo "build-base: $out/base.tar ($(du -h "$out/base.tar" | cut -f1), runtime $(du -sh "$root/opt/java" | cut -f1))"
