#!/bin/bash
# demo.sh - what `make demo` runs: a Tor-only gateway, live, on this machine,
# with nothing leaving it. Network namespaces for a client, the gateway and
# "the internet" (test/netns/topology.sh), a private Tor network in them
# (tornet.sh, with an onion service), the shipped policy (etc/torsieve.conf)
# with torsieve running inline; then a client looks a name up and fetches a
# page by it, fetches from the onion service by its .onion name, tries a few
# things the policy does not allow, and the account is printed: what the
# client saw, what the web server saw, torsieve's verdicts, relay and DNS
# counters, and the Tor circuit the client's stream took. Everything is torn
# down at the end (also on ^C).
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
for t in curl dig tor tor-gencert ping iptables-legacy; do
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
C1_NS=
cleanup() {
    rm -rf "$WORK"
    [[ -n $C1_NS ]] && rm -rf "/etc/netns/$C1_NS" && rmdir /etc/netns 2>/dev/null
    return 0
}

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

# The client's resolver: some address on the internet, as a hotspot
# client's may be (`ip netns exec` puts this file over /etc/resolv.conf).
C1_NS=$(topo_ns c1)
mkdir -p "/etc/netns/$C1_NS" && echo "nameserver 198.51.100.99" >"/etc/netns/$C1_NS/resolv.conf"

step "starting a private Tor network (relays and an onion service in the internet, Tor on the gateway)"
TORNET_ONION=1
tornet_up >/dev/null 2>&1 || die "the Tor network did not bootstrap"
say "bootstrapped in $(tornet__ms "$TORNET_BOOT_MS") s; the exit relay is $(tornet_exit_addr)"
say "the onion service is $(tornet_onion_addr) (its page is the web server's)"

step "starting torsieve on the gateway"
topo_exec gw "$TS" rules -c "$WORK/torsieve.conf" --apply || die "torsieve rules --apply failed"
topo_bg gw torsieve "$TS" run -c "$WORK/torsieve.conf" --user nobody
TORSIEVE_PID=$TOPO_LAST_PID
topo_wait_until 10 "torsieve running" grep -q "running:" "$TOPO_DIR/torsieve.log" ||
    die "torsieve did not start: $(tail -3 "$TOPO_DIR/torsieve.log")"
grep -o "running: .*" "$TOPO_DIR/torsieve.log" | head -1
topo_forwarding on # only torsieve stands between the client and the internet
topo_capture_start uplink >/dev/null || die "cannot watch the uplink"

step "the client looks up www.example.test (its resolver is 198.51.100.99)"
out=$(topo_exec c1 dig +time=10 +tries=1 www.example.test A 2>&1)
say "dig: $(awk '/^;; ANSWER SECTION:/ { a = 1; next } a && NF { print $1, $4, $5; exit }' <<<"$out"), \
answered by $(awk '/^;; SERVER:/ { print $3 }' <<<"$out")"
say "     (torsieve answered as 198.51.100.99, after asking Tor; the exit resolved the name:"
say "      $(grep "^dns " "$TOPO_DIR/servers.log" | tail -1))"

step "the client fetches http://www.example.test/ (port 80: diverted to Tor)"
t=$(topo__now)
page=$(topo_exec c1 curl -sS --max-time 30 "http://www.example.test/" 2>&1)
say "client got: $page  (in $(printf '%.2f' "$(($(topo__now) - t))e-6") s)"
say "web server: $(grep "^http " "$TOPO_DIR/servers.log" | tail -1)"
say "            (the request came from the Tor exit, not from the client; Tor was asked"
say "             for www.example.test by name, so the exit resolved it itself)"

step "the client fetches from the onion service by its name"
ONION=$(tornet_onion_addr)
addr=$(topo_exec c1 dig +short +time=10 +tries=1 "$ONION" A 2>&1)
say "dig $ONION -> $addr (a virtual address torsieve keeps for that name)"
t=$(topo__now)
page=$(topo_exec c1 curl -sS --max-time 60 "http://$ONION/" 2>&1)
say "client got: $page  (in $(printf '%.2f' "$(($(topo__now) - t))e-6") s, through a rendezvous circuit)"

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
    grep -E "^packets|^flows|^verdicts|^  line|^  no rule|^relay|^tor  |^dns  |^names" | head -30
say "(line N: the rule on line N of etc/torsieve.conf; most packets of a diverted connection"
say " skip the queue once the relay accepted it: the fast path)"
say ""
say "client packets that reached the internet directly: $leaks"

step "tearing down"
stop_torsieve
topo_down 2>/dev/null # (bash would report each tor it reaps as "Killed")
say "done in $(elapsed)."
