#!/bin/bash
# test_relay_tor.sh - the main job end to end: clients behind the gateway
# reach the uplink's web server through torsieve and a private Tor network
# (tornet.sh: three relays in the uplink, two client Tor instances on the
# gateway, torsieve's relay spreading clients over both).
#
#   fetch      curl and wget from a client, ports 80 and 443: the page
#              arrives; the server saw the exit's address, never a client's
#   errors     a closed port: Tor says "general failure" (tor hides why),
#              the client gets a reset (an immediate ECONNREFUSED, not a
#              timeout); an address nothing routes to: Tor says "host
#              unreachable", the client gets ICMP host unreachable
#   isolation  two clients' streams are on different circuits (the Tor
#              control port shows each client's SOCKS username on its own
#              circuit)
#   failover   the Tor instance a client used is stopped: its next fetch goes
#              through the other instance
#   leaks      the uplink saw nothing from a client
#
# Prints "PASS name" / "FAIL name: why" and "N passed, N failed". Needs root,
# tor, curl and wget.
set -u

HERE_TOR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../netns/checks.sh
source "$HERE_TOR/../netns/checks.sh"
# shellcheck source=tornet.sh
source "$HERE_TOR/tornet.sh"

if [[ $(id -u) -ne 0 ]]; then
    fail "relay-tor preflight" "must run as root"
    finish
fi
for t in curl wget tor tor-gencert; do
    command -v "$t" >/dev/null 2>&1 || {
        fail "relay-tor preflight" "missing $t"
        finish
    }
done
[[ -x $TS ]] || {
    fail "relay-tor preflight" "$TS is missing (build it first)"
    finish
}

WORK=$(mktemp -d /tmp/ts-relay-tor.XXXXXX)
chmod 755 "$WORK"
CONF=$WORK/torsieve.conf
cat >"$CONF" <<'EOF'
set interface br0
set queue 9
set tor-socks 127.0.0.1:9050 127.0.0.1:9060
set syn-timeout 20
pass icmp6 icmp-type { 133, 135, 136 }
divert tcp to port { 80, 443, 81 }
divert tcp to 203.0.113.99
drop all
EOF

TORSIEVE_PID=

export TOPO_BRIDGE_NF=0 # TPROXY needs it (test/netns/test_inline.sh says why)
TORNET_CLIENT_INSTANCES=2
if ! topo_up || ! tornet_up; then
    fail "relay-tor setup" "the topology or the Tor network did not come up"
    rm -rf "$WORK"
    finish
fi
topo_on_down stop_torsieve
if ! topo_exec gw "$TS" rules -c "$CONF" --apply; then
    fail "relay-tor setup" "torsieve rules --apply failed"
    topo_down
    rm -rf "$WORK"
    finish
fi
topo_bg gw torsieve "$TS" run -c "$CONF" --json --user nobody
TORSIEVE_PID=$TOPO_LAST_PID
if ! topo_wait_listen gw tcp 9040 || ! topo_wait_until 10 "torsieve running" \
    grep -q "running:" "$TOPO_DIR/torsieve.log"; then
    fail "relay-tor setup" "torsieve did not start: $(tail -3 "$TOPO_DIR/torsieve.log")"
    topo_down
    rm -rf "$WORK"
    finish
fi
topo_forwarding on # a leak would get through: only torsieve stands in the way
topo_capture_start uplink

C1=(topo_exec c1)
C2=(topo_exec c2)
H4=$TOPO_HTTP4
EXIT=$(tornet_exit_addr)

# ---------------------------------------------------------------- fetch
want="torsieve-uplink http $H4:80"
got=$("${C1[@]}" curl -sS --max-time 30 "http://$H4/" 2>&1)
check "fetch: curl on port 80 through torsieve and Tor" "$want" "$got"
got=$("${C1[@]}" wget -q -T 30 -t 1 -O - "http://$H4:443/" 2>&1)
check "fetch: wget on port 443 through torsieve and Tor" "torsieve-uplink http $H4:443" "$got"
got=$("${C2[@]}" curl -sS --max-time 30 "http://$H4/" 2>&1)
check "fetch: the second client too" "$want" "$got"
seen=$(grep -c "^http $H4:[0-9]* from $EXIT" "$TOPO_DIR/servers.log")
check "fetch: the server saw the exit ($EXIT) for each fetch" "3" "$seen"
check "fetch: the server never saw a client" "0" \
    "$(grep -c "from $(topo_client_ip4 1)\|from $(topo_client_ip4 2)" "$TOPO_DIR/servers.log")"

# ---------------------------------------------------------------- errors
out=$("${C1[@]}" "$PY" "$NETNS_DIR/relay_client.py" connect "$H4" 81)
read -r what secs <<<"$out"
if [[ $what == ECONNREFUSED ]] && awk -v s="$secs" 'BEGIN { exit !(s < 5) }'; then
    pass "errors: a closed port behind Tor is a reset at once (${secs}s)"
else
    fail "errors: a closed port behind Tor is a reset at once" "$out"
fi
out=$("${C1[@]}" "$PY" "$NETNS_DIR/relay_client.py" connect 203.0.113.99 80)
read -r what secs <<<"$out"
if [[ $what == EHOSTUNREACH ]] && awk -v s="$secs" 'BEGIN { exit !(s < 5) }'; then
    pass "errors: an address the exit cannot reach is ICMP unreachable at once (${secs}s)"
else
    fail "errors: an address the exit cannot reach is ICMP unreachable at once" "$out"
fi

# ---------------------------------------------------------------- isolation
# circuits I: "INSTANCE CIRCUIT USERNAME" for every circuit with a username
circuits() {
    tornet_control_of "$1" GETINFO circuit-status 2>/dev/null | tr -d '\r' |
        sed -n "s/^\([0-9][0-9]*\) BUILT .*SOCKS_USERNAME=\"\([^\"]*\)\".*/$1 \1 \2/p"
}
all_circuits() { circuits 0; circuits 1; }
all_circuits >"$WORK/circuits"
c1_user="torsieve mac $(topo_client_mac 1)"
c2_user="torsieve mac $(topo_client_mac 2)"
c1_circ=$(grep " $c1_user\$" "$WORK/circuits" | head -1 | cut -d' ' -f1,2)
c2_circ=$(grep " $c2_user\$" "$WORK/circuits" | head -1 | cut -d' ' -f1,2)
if [[ -n $c1_circ && -n $c2_circ && $c1_circ != "$c2_circ" ]]; then
    pass "isolation: two clients on different circuits (instance circuit: $c1_circ / $c2_circ)"
else
    fail "isolation: two clients on different circuits" \
        "circuits: $(tr '\n' ';' <"$WORK/circuits")"
fi

# ---------------------------------------------------------------- failover
c1_instance=${c1_circ%% *}
if [[ -n $c1_instance ]]; then
    other=$((1 - c1_instance))
    tornet_stop_client "$c1_instance"
    got=$("${C1[@]}" curl -sS --max-time 30 "http://$H4/" 2>&1)
    check "failover: with the client's Tor instance stopped, the fetch still works" "$want" "$got"
    if circuits "$other" | grep -q " $c1_user\$"; then
        pass "failover: through the other instance ($other)"
    else
        fail "failover: through the other instance" "no circuit of $c1_user on instance $other"
    fi
else
    fail "failover" "the first client's instance is unknown"
fi

# ---------------------------------------------------------------- leaks
topo_capture_stop
check "leaks: nothing from a client reached the uplink" "0" "$(topo_count_leaks "$TOPO_PCAP")"
stop_torsieve
opened=$(grep '"queue"' "$WORK/torsieve.log" | tail -1 | sed 's/^[^{]*//' |
    "$PY" -c 'import json, sys; r = json.load(sys.stdin)["relay"]
print(r["syn_opened"], r["paired"], r["tor_replies"].get("0x01", 0), r["tor_replies"].get("0x04", 0))')
check "counters: 4 SYNs opened by Tor and paired; Tor's 0x01 and 0x04 once each" "4 4 1 1" "$opened"
check "torsieve stopped cleanly (exit status; no sanitizer report)" "0 0" \
    "$TORSIEVE_RC $(grep -c 'Sanitizer\|runtime error' "$WORK/torsieve.log")"
[[ $FAILED -gt 0 ]] && cp "$WORK/torsieve.log" "${TMPDIR:-/tmp}/test_relay_tor.torsieve.log" &&
    echo "torsieve's log: ${TMPDIR:-/tmp}/test_relay_tor.torsieve.log"
topo_down
rm -rf "$WORK"
finish
