# shellcheck shell=bash
# The packages the lab runs and the artifacts it starts: installed and built by `up` itself, so a
# fresh Debian 12 machine with nothing but a clone needs no step of its own. Every artifact,
# classpaths included, comes from the reactor build in this repository, never from what an earlier
# `mvn install` left in a local Maven repository.

# Every program `up` and the other commands run, by Debian package.
PACKAGES=(
  qemu-system-x86 ipxe-qemu ipxe        # the machines and their PXE firmware
  dnsmasq-base                          # the site's DHCP server (the binary, no host service)
  iproute2 socat curl                   # namespace, bridge, loopback forwarders
  busybox-static                        # the image server (busybox httpd) and the busybox images
  squashfs-tools zstd debootstrap cpio  # the images; the KVM canary's initramfs
  bc util-linux                         # e2e/lab/images/debian.sh
  openjdk-17-jdk-headless maven         # the build, the API server, the operator, the pxe-server
  kmod zip unzip lz4 binutils           # the bootstrap initramfs build (node-agent -Pbootstrap)
  nbd-client dmsetup                    # ... which ships them for delivery Lazy
)

install_packages() {
  [ "${LAB_INSTALL:-auto}" = never ] && return 0
  if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091 # the machine's own file
    (. /etc/os-release && [ "${ID:-}" = debian ] && [ "${VERSION_ID:-}" = 12 ]) ||
      note "this is not Debian 12; package names may differ"
  fi
  local wanted=("${PACKAGES[@]}") missing=() p
  command -v kubectl >/dev/null || wanted+=(kubernetes-client)
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  note "installing ${missing[*]} (log: $STATE/logs/apt.log)"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >"$STATE/logs/apt.log" 2>&1 ||
    { tail -20 "$STATE/logs/apt.log"; die "apt-get update failed"; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    >>"$STATE/logs/apt.log" 2>&1 </dev/null ||
    { tail -30 "$STATE/logs/apt.log"; die "apt-get install failed"; }
}

OPERATOR_JAR=$ROOT/operator/target/quarkus-app/quarkus-run.jar
BOOTSTRAP_DIR=${LAB_BOOTSTRAP_DIR:-$ROOT/node-agent/target/bootstrap}
APISERVER_CLASS=$ROOT/e2e/target/classes/io/chrootbooter/e2e/apiserver/EmbeddedApiServer.class
# Written by e2e's own build (maven-dependency-plugin in e2e/pom.xml), in the reactor.
APISERVER_CP_FILE=$ROOT/e2e/target/lab-classpath.txt
# The kubectl plugin (one file: a shell stub and a jar), installed into $STATE/bin by `up`.
PLUGIN_FILE=$ROOT/cli/target/kubectl-boot

pxe_jar() {
  local j
  for j in "$ROOT"/pxe-server/target/chrootbooter-pxe-server-*.jar; do
    [ -f "$j" ] && echo "$j" && return 0
  done
  return 1
}

# stale ARTIFACT SOURCES...: true when the artifact is missing or a source file is newer.
stale() {
  local artifact=$1; shift
  [ -n "$artifact" ] && [ -e "$artifact" ] || return 0
  [ -n "$(find "$@" -type f -newer "$artifact" -print -quit 2>/dev/null)" ]
}

# The modules whose artifacts are missing or older than their sources (all with LAB_BUILD=always).
stale_modules() {
  local always=0 common=("$ROOT/pom.xml" "$ROOT/crds/src/main" "$ROOT/crds/pom.xml")
  [ "${LAB_BUILD:-auto}" = always ] && always=1
  if [ $always = 1 ] || stale "$OPERATOR_JAR" "$ROOT/operator/src/main" "$ROOT/operator/pom.xml" "${common[@]}"; then
    echo operator
  fi
  if [ $always = 1 ] || stale "$(pxe_jar || true)" "$ROOT/pxe-server/src/main" "$ROOT/pxe-server/pom.xml"; then
    echo pxe-server
  fi
  # A bootstrap from elsewhere (LAB_BOOTSTRAP_DIR) is not ours to rebuild.
  if [ -z "${LAB_BOOTSTRAP_DIR:-}" ] && { [ $always = 1 ] || stale "$BOOTSTRAP_DIR/build-info" \
    "$ROOT/node-agent/src/main" "$ROOT/node-agent/src/bootstrap" "$ROOT/node-agent/pom.xml"; }; then
    echo node-agent
  fi
  if [ $always = 1 ] || stale "$APISERVER_CLASS" "$ROOT/e2e/src/main" ||
    stale "$APISERVER_CP_FILE" "$ROOT/e2e/pom.xml" "$ROOT/pom.xml"; then
    echo e2e
  fi
  if [ $always = 1 ] || stale "$PLUGIN_FILE" "$ROOT/cli/src/main" "$ROOT/cli/pom.xml" "$ROOT/pom.xml"; then
    echo cli
  fi
}

build_artifacts() {
  local modules=() profile=()
  mapfile -t modules < <(stale_modules)
  if [[ " ${modules[*]} " == *" node-agent "* ]]; then profile=(-Pbootstrap); fi
  if [ "${LAB_BUILD:-auto}" = never ]; then
    [ ${#modules[@]} -eq 0 ] || note "LAB_BUILD=never: not rebuilding ${modules[*]}, which look stale"
  elif [ ${#modules[@]} -gt 0 ]; then
    local list
    list=$(IFS=,; echo "${modules[*]}")
    note "building $list (mvn package -DskipTests ${profile[*]}; the first build takes minutes; log: $STATE/logs/build.log)"
    local mvn=(mvn -B -DskipTests "${profile[@]}" -pl "$list" -am package)
    # Offline first (everything is usually in ~/.m2 already); online when that fails.
    (cd "$ROOT" && { "${mvn[@]}" -o >"$STATE/logs/build.log" 2>&1 || "${mvn[@]}" >>"$STATE/logs/build.log" 2>&1; }) ||
      { tail -40 "$STATE/logs/build.log"; die "the build failed; see $STATE/logs/build.log"; }
  fi
  local how="mvn -B -DskipTests -Pbootstrap -pl operator,pxe-server,node-agent,cli,e2e -am package"
  [ -f "$OPERATOR_JAR" ] || die "missing $OPERATOR_JAR ($how)"
  pxe_jar >/dev/null || die "missing the pxe-server jar ($how)"
  if [ ! -f "$BOOTSTRAP_DIR/vmlinuz" ] || [ ! -f "$BOOTSTRAP_DIR/initramfs.img" ]; then
    die "missing $BOOTSTRAP_DIR/{vmlinuz,initramfs.img} ($how)"
  fi
  if [ ! -f "$APISERVER_CLASS" ] || [ ! -s "$APISERVER_CP_FILE" ]; then
    die "missing the embedded API server's classes or $APISERVER_CP_FILE ($how)"
  fi
  [ -x "$PLUGIN_FILE" ] || die "missing $PLUGIN_FILE ($how)"
}

# install_plugin: `kubectl boot` for the lab: the plugin's file in $STATE/bin, which `./lab env`
# and `up` put on the PATH, with KUBECTL_BOOT_OPERATOR naming the admin port's forwarder (the
# lab's operator has no Service to find).
install_plugin() {
  mkdir -p "$STATE/bin"
  install -m 0755 "$PLUGIN_FILE" "$STATE/bin/kubectl-boot"
  env_set PLUGIN_BIN "$STATE/bin"
}

# The embedded API server's classpath: e2e's classes and its runtime dependencies (not its test
# dependencies, which include whole applications), as e2e's build wrote them.
apiserver_classpath() { echo "$ROOT/e2e/target/classes:$(cat "$APISERVER_CP_FILE")"; }
