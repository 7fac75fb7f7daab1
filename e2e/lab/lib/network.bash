# shellcheck shell=bash
# The lab's network: one network namespace ($LAB_NAME) with a bridge br0 ($GW/24 and a ULA /64)
# and one tap per machine, and dnsmasq as the site's DHCP server on it. Nothing of it appears in
# the host's namespace; `down` deletes the namespace with everything in it.

# create_network MACHINE...: the namespace, its bridge, a tap per machine.
create_network() {
  local m
  ip netns add "$LAB_NAME"
  ip -n "$LAB_NAME" link set lo up
  ip -n "$LAB_NAME" link add br0 type bridge stp_state 0 forward_delay 0
  ip -n "$LAB_NAME" addr add "$GW/24" dev br0
  ip -n "$LAB_NAME" addr add "${ULA}1/64" dev br0 nodad
  ip -n "$LAB_NAME" link set br0 up
  for m in "$@"; do
    ip -n "$LAB_NAME" tuntap add dev "tap-$m" mode tap
    ip -n "$LAB_NAME" link set "tap-$m" master br0
    ip -n "$LAB_NAME" link set "tap-$m" up
  done
}

# start_dnsmasq MACHINE...: the site's DHCP server, tuned as the lab notes say (no ping; RA-only
# IPv6, so iPXE does not wait for a router), without option 175.176: that would make iPXE ignore
# the proxy's offers. Each machine gets a fixed address.
start_dnsmasq() {
  local m hosts=()
  for m in "$@"; do hosts+=("--dhcp-host=$(mac_of "$m"),$(ip_of "$m"),$m"); done
  spawn dnsmasq --ns dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root --port=0 \
    --interface=br0 --bind-interfaces --dhcp-range="$SUBNET.100,$SUBNET.199,1h" \
    --dhcp-range="$ULA,ra-only" --enable-ra --no-ping --log-dhcp --log-facility=- \
    --dhcp-leasefile="$STATE/dnsmasq.leases" --pid-file "${hosts[@]}"
}

# remove_network: whatever still runs inside the namespace was started by this lab (a relay's
# child, say); then the namespace itself, and the name `up` gave the host's namespace.
remove_network() {
  local pid
  if ns_exists "$LAB_NAME"; then
    for pid in $(ip netns pids "$LAB_NAME" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$LAB_NAME"
  fi
  if [ -n "${HOST_NS:-}" ] && ns_exists "$HOST_NS"; then ip netns del "$HOST_NS"; fi
}
