# shellcheck shell=bash
# ./lab up, down, status and logs.

# up_failed STATUS: on a failed `up`, show the logs that say why, then take down what was started.
# When a service died, check_services has shown its log already; otherwise the end of each log.
up_failed() {
  trap - EXIT
  if [ "$1" -ne 0 ]; then
    if [ -z "$DEAD_SERVICE" ]; then
      local f
      for f in "$STATE"/logs/*.log "$STATE"/vm/*/console.log; do
        [ -s "$f" ] && { echo "----- ${f#"$STATE"/} (last 15 lines)"; tail -n 15 "$f"; } >&2
      done
    fi
    note "up failed; taking the lab down"
    cmd_down >&2 || true
  fi
  exit "$1"
}

cmd_up() {
  local machines=2 debian=1 hold=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --machines) [[ "${2:-}" =~ ^[1-9]$ ]] || die "--machines takes 1 to 9"; machines=$2; shift 2 ;;
      --no-debian) debian=0; shift ;;
      --hold) hold=1; shift ;;
      *) die "unknown option $1; usage: ./lab up [--machines N] [--no-debian] [--hold]" ;;
    esac
  done
  [ "$(id -u)" = 0 ] || die "run as root: the lab creates a network namespace and taps"
  LAB_NAME=${LAB_NAME:-cblab}
  LAB_NAMESPACE=${LAB_NAMESPACE:-default}
  [[ "$LAB_NAME" =~ ^[a-z][a-z0-9-]{0,14}$ ]] || die "LAB_NAME \"$LAB_NAME\": up to 15 of a-z 0-9 -, starting with a letter"
  [ ! -f "$ENV_FILE" ] || die "a lab is already up ($ENV_FILE); ./lab down first"
  ! ns_exists "$LAB_NAME" || die "network namespace $LAB_NAME exists (a lab that was not taken down?): ./lab down"
  mkdir -p "$STATE"/{pids,logs,vm,www,bootstrap,store,manifests} "$CACHE"
  : >"$ENV_FILE"
  env_set LAB_NAME "$LAB_NAME"
  env_set LAB_STATE "$STATE"
  env_set LAB_NAMESPACE "$LAB_NAMESPACE"
  env_set KUBECONFIG_FILE "$KUBECONFIG_FILE"
  # From here on, a failure (or Ctrl-C) takes down whatever was started.
  trap 'up_failed $?' EXIT
  trap 'exit 130' INT TERM
  local t0=$SECONDS names=() i
  for i in $(seq "$machines"); do names+=("m$i"); done

  install_packages
  build_artifacts
  create_network "${names[@]}"
  start_dnsmasq "${names[@]}"
  start_kube_api

  link_or_copy "$(busybox_image busybox-a)" "$STATE/www/busybox-a.tar.zst"
  link_or_copy "$(busybox_image busybox-b)" "$STATE/www/busybox-b.tar.zst"
  if [ $debian = 1 ]; then
    if build_debian_image; then env_set DEBIAN yes; else debian=0; env_set DEBIAN no-mirror; fi
  else
    env_set DEBIAN no
  fi
  start_image_server

  start_operator
  install_plugin
  # BootImages and MachineBoots. m1 runs Debian when there is one; the others run busybox.
  local image
  for i in "${names[@]}"; do
    image=busybox
    if [ "$i" = m1 ] && [ $debian = 1 ]; then image="debian-12"; fi
    if [ $hold = 1 ]; then image=""; fi
    machineboot_yaml "$i" "$image" >>"$STATE/manifests/machineboots.yaml"
  done
  kube apply -f "$STATE/manifests/bootimages.yaml" >/dev/null
  kube apply -f "$STATE/manifests/machineboots.yaml" >/dev/null
  note "waiting for the operator to mirror the images"
  wait_bootimages_ready 300

  start_pxe_server
  ACCEL=$(choose_accel)
  env_set ACCEL "$ACCEL"
  env_set MACHINES "$(IFS=,; echo "${names[*]}")"
  local upper
  for i in "${names[@]}"; do
    upper=$(echo "$i" | tr '[:lower:]' '[:upper:]')
    env_set "${upper}_MAC" "$(mac_of "$i")"
    env_set "${upper}_IP" "$(ip_of "$i")"
    env_set "${upper}_DIR" "$(vm_dir "$i")"
    start_vm "$i"
  done
  check_services || die "$(describe "$DEAD_SERVICE") died while the machines were started"
  env_set UP 1
  trap - EXIT INT TERM
  up_summary "$((SECONDS - t0))" "${names[@]}"
}

# start_operator: the operator as users run it (its jar, a JVM), inside the namespace, serving
# the bootstrap from $STATE/bootstrap and keeping its image store in $STATE/store.
start_operator() {
  cp "$BOOTSTRAP_DIR/vmlinuz" "$STATE/bootstrap/vmlinuz"
  cp "$BOOTSTRAP_DIR/initramfs.img" "$STATE/bootstrap/initramfs"
  # The agent's class archive, a second initrd (none from an older build: the agent starts without).
  if [ -f "$BOOTSTRAP_DIR/agent-cache.img" ]; then
    cp "$BOOTSTRAP_DIR/agent-cache.img" "$STATE/bootstrap/agent-cache"
  else
    rm -f "$STATE/bootstrap/agent-cache"
  fi
  # The bootstrap kernel's modules and firmware, which targets get (none from an older build).
  if [ -f "$BOOTSTRAP_DIR/modules.sqfs" ]; then
    cp "$BOOTSTRAP_DIR/modules.sqfs" "$STATE/bootstrap/modules"
  else
    rm -f "$STATE/bootstrap/modules"
  fi
  note "starting the operator (in $LAB_NAME at $GW:$OPERATOR_PORT)"
  local props=(
    -Dquarkus.http.host=0.0.0.0 -Dquarkus.http.port="$OPERATOR_PORT"
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$OPERATOR_ADMIN_PORT"
    -Dquarkus.kubernetes-client.namespace="$LAB_NAMESPACE"
    -Dcb.public-url="http://$GW:$OPERATOR_PORT"
    -Dcb.bootstrap.dir="$STATE/bootstrap" -Dcb.store.path="$STATE/store"
    # The image server listens on $GW, an address of the operator's own (it runs in the same
    # namespace), which image sources may not use unless allowed.
    -Dcb.store.allowed-sources="$GW/32"
    # no_timer_check: the kernel's early test of the IO-APIC timer counts ticks in a busy loop,
    # which a QEMU TCG guest on a loaded host can fail ("IO-APIC + timer doesn't work!", a panic
    # before anything else runs); virtual machines skip it (cloud images do the same).
    "-Dcb.ipxe.console=${LAB_CONSOLE_ARGS:-console=ttyS0,115200n8 quiet no_timer_check}${LAB_DEBUG:+ cb.debug}"
  )
  if [ -n "$API_NS_URL" ]; then
    spawn operator --ns "$JAVA" -Xmx512m "${props[@]}" \
      -Dquarkus.kubernetes-client.api-server-url="$API_NS_URL" -jar "$OPERATOR_JAR"
  else
    spawn operator --ns env KUBECONFIG="$KUBECONFIG_FILE" "$JAVA" -Xmx512m "${props[@]}" \
      -Djdk.net.hosts.file="$STATE/hosts" -jar "$OPERATOR_JAR"
  fi
  OPERATOR_HOST_PORT=$(free_port 8080)
  forward "$OPERATOR_HOST_PORT" "$GW" "$OPERATOR_PORT" forward-operator
  env_set OPERATOR_URL "http://127.0.0.1:$OPERATOR_HOST_PORT"
  env_set OPERATOR_NS_URL "http://$GW:$OPERATOR_PORT"
  OPERATOR_ADMIN_HOST_PORT=$(free_port 9000)
  forward "$OPERATOR_ADMIN_HOST_PORT" 127.0.0.1 "$OPERATOR_ADMIN_PORT" forward-admin
  env_set OPERATOR_ADMIN_URL "http://127.0.0.1:$OPERATOR_ADMIN_HOST_PORT"
  wait_for "the operator to be ready" 180 \
    in_ns curl -sf "http://127.0.0.1:$OPERATOR_ADMIN_PORT/q/health/ready" ||
    { show_log operator 40; die "the operator did not become ready"; }
}

# start_pxe_server: proxyDHCP + TFTP on the bridge, beside dnsmasq (both bind :67 with
# SO_REUSEADDR).
start_pxe_server() {
  spawn pxe --ns "$JAVA" -Xmx128m -XX:+UseSerialGC -jar "$(pxe_jar)" \
    --operator "http://$GW:$OPERATOR_PORT" --interface br0
  wait_for "the pxe-server" 60 grep -q "serving as" "$STATE/logs/pxe.log" ||
    { show_log pxe 30; die "the pxe-server did not start"; }
}

# up_summary SECONDS MACHINE...: where everything is, and what to try first.
up_summary() {
  local took=$1 m; shift
  cat <<EOF

Chroot Booter lab "$LAB_NAME" is up (in $took s). The machines PXE-boot now; under
TCG the bootstrap takes about a minute.

  kubeconfig   export KUBECONFIG=$KUBECONFIG_FILE   (or: ./lab kubectl ...)
  kubectl boot export PATH=$STATE/bin:\$PATH KUBECTL_BOOT_OPERATOR=$(sed -n 's/^OPERATOR_ADMIN_URL=//p' "$ENV_FILE")
               (or: eval "\$(./lab env)"; the plugin: kubectl boot --help)
  Kubernetes   $(sed -n 's/^API_URL=//p' "$ENV_FILE") ($(sed -n 's/^KUBE=//p' "$ENV_FILE"))
  operator     http://127.0.0.1:$OPERATOR_HOST_PORT   (machines use http://$GW:$OPERATOR_PORT, netns $LAB_NAME)
  status page  http://127.0.0.1:$OPERATOR_ADMIN_HOST_PORT/   (the admin port: also /q/metrics, /q/health)
  images       http://$GW:$IMAGES_PORT/   ($STATE/www)
  accelerator  $ACCEL
EOF
  for m in "$@"; do
    printf '  %-12s %s  %-12s console %s  (./lab console %s)\n' \
      "$m" "$(mac_of "$m")" "$(ip_of "$m")" "$(vm_dir "$m")/console.sock" "$m"
  done
  cat <<EOF
  logs         ./lab logs [-f] operator|pxe|apiserver|dnsmasq|images|m1   ($STATE/logs)
  services     ./lab status   (a service that died is shown DEAD)

  ./lab kubectl get mb -w
  ./lab kubectl patch mb m1 --type merge -p '{"spec":{"imageRef":"busybox-b"}}'
  ./lab kubectl boot switch m1 busybox-b --wait; ./lab kubectl boot timeline m1
  ./lab key m1 ctrl-alt-f12        then type resume at: ./lab console m1
  ./lab serial m1 $MAGIC
  ./lab down
EOF
}

cmd_down() {
  [ "$(id -u)" = 0 ] || die "run as root"
  if [ -f "$ENV_FILE" ]; then
    # shellcheck disable=SC1090 # written by env_set
    source "$ENV_FILE"
  fi
  LAB_NAME=${LAB_NAME:-cblab}
  # Machines first (they hold the taps), then everything else.
  stop_pids "$STATE"/pids/m[0-9]*.pid
  stop_pids "$STATE"/pids/*.pid
  remove_network
  umount_under "$STATE"
  rm -rf "$STATE"
  rm -f "$KUBECONFIG_FILE"
  note "lab $LAB_NAME is down"
}

# cmd_status: the services (running or DEAD), the machines (power), the BootImages and
# MachineBoots, and the status page's URL. Exit status 1 when a service has died.
cmd_status() {
  load_env
  local m power healthy=0
  services_table || healthy=1
  echo
  printf '%-4s %-18s %-12s %-5s %-5s %s\n' VM MAC IP ACCEL POWER CONSOLE
  # shellcheck disable=SC2153 # MACHINES comes from lab.env
  for m in ${MACHINES//,/ }; do
    if alive "$m"; then power=on; elif [ -f "$STATE/pids/$m.pid" ]; then power=DEAD; else power=off; fi
    printf '%-4s %-18s %-12s %-5s %-5s %s\n' "$m" "$(mac_of "$m")" "$(ip_of "$m")" "$ACCEL" "$power" "$(vm_dir "$m")/console.sock"
  done
  echo
  kube --request-timeout=5s get bi,mb -o wide || note "the Kubernetes API does not answer"
  echo
  echo "status page: ${OPERATOR_ADMIN_URL:-(not started)}/"
  if [ $healthy = 1 ]; then
    note "a service has died: ./lab logs NAME shows why; ./lab down, then ./lab up, starts afresh"
  fi
  return $healthy
}

cmd_logs() {
  load_env
  local follow=0 files=() n
  if [ "${1:-}" = -f ]; then follow=1; shift; fi
  if [ $# -eq 0 ]; then
    echo "logs in $STATE/logs:"
    for n in "$STATE"/logs/*.log; do n=${n##*/}; echo "  ${n%.log}"; done
    echo "machine consoles: ${MACHINES//,/ }"
    return
  fi
  for n in "$@"; do
    if [[ ",$MACHINES," == *",$n,"* ]]; then files+=("$(vm_dir "$n")/console.log")
    elif [ -f "$STATE/logs/$n.log" ]; then files+=("$STATE/logs/$n.log")
    else die "no log \"$n\"; ./lab logs lists them"; fi
  done
  if [ $follow = 1 ]; then exec tail -n 100 -F "${files[@]}"; fi
  cat "${files[@]}"
}
