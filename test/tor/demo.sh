#!/bin/bash
# demo.sh - what `make demo` runs: a Tor-only gateway, live, on this machine,
# with nothing leaving it. Network namespaces for a client, the gateway and
# "the internet" (test/netns/topology.sh), a private Tor network in them
# (tornet.sh), the shipped policy (etc/torsieve.conf) with torsieve running
# inline; then a client fetches a page, tries a few things the policy does
# not allow, and the account is printed: what the client saw, what the web
# server saw, torsieve's verdicts and relay counters, and the Tor circuit the
# client's stream took. Everything is torn down at the end (also on ^C).
#
#   TORSIEVE   the binary (default build/gcc/torsieve). Needs root.
set -u

HERE_TOR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../netns/checks.sh
source "$HERE_TOR/../netns/checks.sh"
# shellcheck source=tornet.sh
source "$HERE_TOR/tornet.sh"

say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
die() {
    printf 'demo: %s\n' "$*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, NFQUEUE, TPROXY): run it as root"
[[ -x $TS ]] || die "$TS is missing: run make first"
for t in curl tor tor-gencert ping iptables-legacy; do
    command -v "$t" >/dev/null 2>&1 || die "$t is missing: make deps installs it"
done

T0=$(topo__now)
elapsed() { printf '%.1f s' "$(($(topo__now) - T0))e-6"; }
WORK=$(mktemp -d /tmp/ts-demo.XXXXXX)
chmod 755 "$WORK"
# The shipped policy, with the demo's interface and the gateway's address in
# the demo's address plan: nothing else changed.
# ('set' applies wherever it stands: at the end, the rules keep the line
# numbers they have in etc/torsieve.conf.)
{
    sed "s/^list gateway = .*/list gateway = { $TOPO_GW_LAN4, $TOPO_GW_LAN6 }/" \
        "$ROOT/etc/torsieve.conf"
    echo "set interface br0"
} >"$WORK/torsieve.conf"

TORSIEVE_PID=
stop_torsieve() {
    [[ -n $TORSIEVE_PID ]] || return 0
    kill -TERM "$TORSIEVE_PID" 2>/dev/null
    wait "$TORSIEVE_PID" 2>/dev/null
    TORSIEVE_PID=
}
cleanup() { rm -rf "$WORK"; }

say "torsieve demo: a Tor-only gateway, live, in network namespaces on this machine."
say "Nothing leaves the machine: the 'internet' (203.0.113.0/24) and its Tor relays are"
say "namespaces too. The policy is the shipped one (etc/torsieve.conf)."

step "bringing up the client, the gateway and the internet"
export TOPO_BRIDGE_NF=0
TOPO_CLIENTS=1
topo_up || die "the namespaces did not come up"
topo_on_down cleanup
topo_on_down stop_torsieve
say "client $(topo_client_ip4 1) --- gateway $TOPO_GW_LAN4 | $TOPO_GW_UP4 --- internet (web server $TOPO_HTTP4)"

step "starting a private Tor network (3 relays in the internet, Tor on the gateway)"
tornet_up || die "the Tor network did not bootstrap"
say "bootstrapped in $(tornet__ms "$TORNET_BOOT_MS") s; the exit relay is $(tornet_exit_addr)"

step "starting torsieve on the gateway"
topo_exec gw "$TS" rules -c "$WORK/torsieve.conf" --apply || die "torsieve rules --apply failed"
topo_bg gw torsieve "$TS" run -c "$WORK/torsieve.conf" --user nobody
TORSIEVE_PID=$TOPO_LAST_PID
topo_wait_until 10 "torsieve running" grep -q "running:" "$TOPO_DIR/torsieve.log" ||
    die "torsieve did not start: $(tail -3 "$TOPO_DIR/torsieve.log")"
grep -o "running: .*" "$TOPO_DIR/torsieve.log" | head -1
topo_forwarding on # only torsieve stands between the client and the internet
topo_capture_start uplink >/dev/null || die "cannot watch the uplink"

step "the client fetches http://$TOPO_HTTP4/ (port 80: diverted to Tor)"
t=$(topo__now)
page=$(topo_exec c1 curl -sS --max-time 30 "http://$TOPO_HTTP4/" 2>&1)
say "client got: $page  (in $(printf '%.2f' "$(($(topo__now) - t))e-6") s)"
say "web server: $(grep "^http " "$TOPO_DIR/servers.log" | tail -1)"
say "            (the request came from the Tor exit, not from the client)"

step "things the policy does not let through"
t=$(topo__now)
out=$(topo_exec c1 curl -sS --max-time 10 "http://203.0.113.99/" 2>&1)
say "curl http://203.0.113.99/   -> ${out#curl: } ($(printf '%.2f' "$(($(topo__now) - t))e-6") s:"
say "                               Tor could not reach it, torsieve held the SYN and told the client)"
out=$(topo_exec c1 ping -c 1 -W 1 "$TOPO_HTTP4" 2>&1 | grep -o '[0-9]* received')
say "ping $TOPO_HTTP4            -> $out (ICMP is dropped: Tor carries TCP only)"
out=$(topo_exec c1 curl -sS --max-time 2 "telnet://$TOPO_HTTP4:22" 2>&1 </dev/null | head -1)
say "ssh port 22                  -> ${out#curl: } (dropped: only 80 and 443 go to Tor)"

topo_capture_stop >/dev/null
leaks=$(topo_count_leaks "$TOPO_PCAP")

step "the circuit the client's stream took (Tor's control port)"
user="torsieve mac $(topo_client_mac 1)"
tornet_control GETINFO circuit-status 2>/dev/null | tr -d '\r' | grep "SOCKS_USERNAME=\"$user\"" |
    head -1 | sed -E 's/^([0-9]+) BUILT ([^ ]*) .*/circuit \1: \2/; s/\$[0-9A-F]*~//g; s/,/ -> /g'
say "(its SOCKS username '$user' keeps this client on circuits of its own)"

step "torsieve's account"
kill -USR1 "$TORSIEVE_PID"
sleep 0.5
sed -n '/counters of queue/,$p' "$TOPO_DIR/torsieve.log" | sed 's/^[^]]*\]: //; s/^torsieve: //' |
    grep -E "^packets|^flows|^verdicts|^  line|^  no rule|^relay|^tor  " | head -30
say "(line N: the rule on line N of etc/torsieve.conf; most packets of a diverted connection"
say " skip the queue once the relay accepted it: the fast path)"
say ""
say "client packets that reached the internet directly: $leaks"

step "tearing down"
stop_torsieve
topo_down
say "done in $(elapsed)."
