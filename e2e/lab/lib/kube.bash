# shellcheck shell=bash
# The lab's Kubernetes API: the cluster of KUBECONFIG when it answers, else the embedded API server
# of e2e/ (the fabric8 mock in CRUD mode behind a front that kubectl understands).

# With the lab's kubectl plugin on the PATH (`./lab kubectl boot ...`) once `up` installed it.
kube() {
  if [ -n "${PLUGIN_BIN:-}" ]; then
    PATH="$PLUGIN_BIN:$PATH" KUBECTL_BOOT_OPERATOR=${OPERATOR_ADMIN_URL:-} \
      kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"
  else
    kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"
  fi
}

# The cluster of KUBECONFIG when it answers (LAB_KUBE=auto|kubeconfig), else the embedded one.
start_kube_api() {
  local mode=${LAB_KUBE:-auto}
  if [ "$mode" != embedded ] && [ -n "${KUBECONFIG:-}" ] &&
    timeout 10 kubectl --request-timeout=5s version >/dev/null 2>&1; then
    start_external_api
  elif [ "$mode" = kubeconfig ]; then
    die "LAB_KUBE=kubeconfig, but KUBECONFIG is unset or its cluster does not answer"
  else
    start_embedded_api
  fi
}

start_embedded_api() {
  local port cp
  port=$(free_port 6443)
  cp=$(apiserver_classpath)
  note "starting the embedded Kubernetes API (in $LAB_NAME at 127.0.0.1:$port)"
  spawn apiserver --ns "$JAVA" -Xmx512m -XX:+UseSerialGC -cp "$cp" \
    io.chrootbooter.e2e.apiserver.EmbeddedApiServer \
    --port "$port" --bind 127.0.0.1 --kubeconfig "$KUBECONFIG_FILE" --crds "$ROOT/crds"
  # The same port on both sides, so the kubeconfig the server writes is right on the host too.
  forward "$port" 127.0.0.1 "$port" forward-api
  API_NS_URL=http://127.0.0.1:$port
  wait_for "the embedded Kubernetes API" 120 curl -sf "http://127.0.0.1:$port/version" ||
    { show_log apiserver 30; die "the embedded API server did not start"; }
  env_set KUBE embedded
  env_set API_URL "http://127.0.0.1:$port"
}

# An outside cluster is reached from the namespace through a relay that listens, inside it, on
# the API server's own address and port (added to the namespace's loopback) and connects from
# the host's namespace: the kubeconfig and its TLS names stay valid unchanged.
start_external_api() {
  local server host port addr
  kubectl config view --minify --flatten --raw >"$KUBECONFIG_FILE"
  server=$(kubectl --kubeconfig "$KUBECONFIG_FILE" config view -o jsonpath='{.clusters[0].cluster.server}')
  [[ "$server" =~ ^https?://(\[[^]]+\]|[^:/]+)(:([0-9]+))?(/.*)?$ ]] || die "cannot parse the API server URL $server"
  host=${BASH_REMATCH[1]}
  port=${BASH_REMATCH[3]:-443}
  if [[ "$host" =~ ^[0-9.]+$ ]]; then addr=$host; else addr=$(getent ahostsv4 "$host" | awk 'NR==1 {print $1}'); fi
  [ -n "$addr" ] || die "cannot resolve $host (the API server of KUBECONFIG) to an IPv4 address"
  note "using the cluster of KUBECONFIG ($server)"
  [[ "$addr" == 127.* ]] || ip -n "$LAB_NAME" addr add "$addr/32" dev lo
  # A name for the host's namespace so the relay can enter it; `down` removes the name only.
  ip netns attach "$LAB_NAME-host" $$
  env_set HOST_NS "$LAB_NAME-host"
  spawn forward-api --ns socat "TCP-LISTEN:$port,bind=$addr,reuseaddr,fork" \
    "EXEC:ip netns exec $LAB_NAME-host socat STDIO TCP\\:$addr\\:$port"
  # The operator's JVM resolves the API server's name to that address.
  printf '%s %s\n' "$addr" "$host" >"$STATE/hosts"
  env_set KUBE kubeconfig
  env_set API_URL "$server"
  # shellcheck disable=SC2034 # read by start_operator
  API_NS_URL=""
  kube apply -f "$ROOT/crds/" >/dev/null
}

# wait_bootimages_ready SECONDS: every BootImage Ready, watching the services meanwhile; a
# BootImage that fails stops the wait at once with its message. Each change of phase is shown.
wait_bootimages_ready() {
  local deadline=$((SECONDS + $1)) phases last="" failed not_ready
  while :; do
    check_services || die "$(describe "$DEAD_SERVICE") died while the operator mirrored the images"
    phases=$(kube get bootimages -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase} {end}' 2>/dev/null || true)
    if [ -n "$phases" ] && [ "$phases" != "$last" ]; then note "images: $phases"; last=$phases; fi
    failed=$(tr ' ' '\n' <<<"$phases" | awk -F= '$2 == "Failed" {print $1}')
    if [ -n "$failed" ]; then
      kube get bi -o wide >&2 || true
      die "BootImage $failed failed: $(kube get bi "$failed" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}' 2>/dev/null)"
    fi
    not_ready=$(tr ' ' '\n' <<<"$phases" | awk -F= 'NF == 2 && $2 != "Ready"')
    if [ -n "$phases" ] && [ -z "$not_ready" ]; then return 0; fi
    if [ $SECONDS -ge $deadline ]; then
      kube get bi -o wide >&2 || true
      show_log operator 30
      die "the BootImages did not become Ready in $1 s"
    fi
    sleep 1
  done
}
