#!/bin/bash
# test_dns_tor.sh - DNS through torsieve and a private Tor network
# (tornet.sh, with an onion service), end to end from a client namespace
# whose resolver is an address on the "internet".
#
#   lookup   dig from the client gets the A record of a test name, which the
#            exit resolved through the uplink's DNS server: the server saw
#            the query from the exit, never from the client or the gateway;
#            a query to any resolver address is answered the same way; a
#            name nobody has is NXDOMAIN
#   by name  curl http://www.example.test/ fetches the page, and Tor was
#            asked to connect to the name (the control port's STREAM NEW
#            event shows the name, not the address)
#   .onion   the onion service's name gets a virtual address, and curl
#            fetches the page behind it through torsieve and Tor
#   DNSPort  the same lookups through Tor's DNSPort (set tor-dns)
#   leaks    nothing from a client reached the uplink
#
# Prints "PASS name" / "FAIL name: why" and "N passed, N failed". Needs root,
# tor, curl and dig.
set -u

HERE_TOR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../netns/checks.sh
source "$HERE_TOR/../netns/checks.sh"
# shellcheck source=tornet.sh
source "$HERE_TOR/tornet.sh"

if [[ $(id -u) -ne 0 ]]; then
    fail "dns-tor preflight" "must run as root"
    finish
fi
for t in curl dig tor tor-gencert; do
    command -v "$t" >/dev/null 2>&1 || {
        fail "dns-tor preflight" "missing $t"
        finish
    }
done
[[ -x $TS ]] || {
    fail "dns-tor preflight" "$TS is missing (build it first)"
    finish
}

WORK=$(mktemp -d /tmp/ts-dns-tor.XXXXXX)
chmod 755 "$WORK"
CONF=$WORK/torsieve.conf
cat >"$CONF" <<'EOF'
set interface br0
set queue 13
pass icmp6 icmp-type { 133, 135, 136 }
divert tcp to port { 80, 443 }
dns proto { tcp, udp } to port 53
drop all
EOF

TORSIEVE_PID=
C1_NS=
drop_resolv() { [[ -n $C1_NS ]] && rm -rf "/etc/netns/$C1_NS" && rmdir /etc/netns 2>/dev/null; }

export TOPO_BRIDGE_NF=0 # TPROXY needs it (test/netns/test_inline.sh says why)
TORNET_ONION=1
TORNET_CLIENT_TORRC_EXTRA="DNSPort 127.0.0.1:5353 IPv6Traffic"
if ! topo_up || ! tornet_up; then
    fail "dns-tor setup" "the topology or the Tor network did not come up"
    rm -rf "$WORK"
    finish
fi
topo_on_down stop_torsieve
topo_on_down drop_resolv
# The client's resolver is some address on the internet, as a hotspot
# client's would be (DHCP from elsewhere, or hard-coded).
C1_NS=$(topo_ns c1)
mkdir -p "/etc/netns/$C1_NS" && echo "nameserver 198.51.100.99" >"/etc/netns/$C1_NS/resolv.conf"
topo_exec gw "$TS" rules -c "$CONF" --apply &&
    topo_bg gw torsieve env TORSIEVE_RELAY_CHECK=1 "$TS" run -c "$CONF" --json --user nobody
TORSIEVE_PID=$TOPO_LAST_PID
if ! topo_wait_listen gw udp 9053 || ! topo_wait_until 10 "torsieve running" \
    grep -q "running:" "$TOPO_DIR/torsieve.log"; then
    fail "dns-tor setup" "torsieve did not start: $(tail -3 "$TOPO_DIR/torsieve.log")"
    topo_down
    rm -rf "$WORK"
    finish
fi
topo_forwarding on
topo_capture_start uplink
EXIT=$(tornet_exit_addr)


# ---------------------------------------------------------------- lookup
check "lookup: dig gets the A record through Tor" "NOERROR 203.0.113.80 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 www.example.test A +time=10)"
# The exit's query comes from inside the uplink (203.0.113.x: the resolver
# is local to the exit there), never from the client's or the gateway's side.
check "lookup: the uplink's DNS server was asked by the exit, never by client or gateway" "1 0" \
    "$(grep -c "^dns .* from 203\.0\.113\.[0-9]* www.example.test A" "$TOPO_DIR/servers.log") \
$(grep -c "^dns .* from \(192\.0\.2\|198\.51\.100\|2001:db8:[12]:\)" "$TOPO_DIR/servers.log")"
check "lookup: any resolver address is answered as itself" "NOERROR 203.0.113.80 198.51.100.99" \
    "$(dig_answer c1 198.51.100.99 example.test A +time=10)"
check "lookup: a name nobody has: NXDOMAIN" "NXDOMAIN - 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 nowhere.example.test A +time=10)"

# ---------------------------------------------------------------- by name
# Tor's control port tells what each new stream asked for (STREAM NEW; later
# events show the address the exit connected to instead).
events=$WORK/stream-events
topo_exec gw "$PY" -c '
import binascii, socket, sys, time
s = socket.create_connection(("127.0.0.1", 9051))
cookie = open(sys.argv[1], "rb").read()
s.sendall(b"AUTHENTICATE " + binascii.hexlify(cookie) + b"\r\nSETEVENTS STREAM\r\n")
s.settimeout(0.5)
out, end = b"", time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        out += s.recv(65536)
    except socket.timeout:
        pass
sys.stdout.write(out.decode(errors="replace"))' "$TORNET_DIR/client/control_auth_cookie" 8 >"$events" &
watcher=$!
sleep 1
page=$(topo_exec c1 curl -sS --max-time 30 http://www.example.test/ 2>&1)
check "by name: curl http://www.example.test/ through torsieve and Tor" \
    "torsieve-uplink http 203.0.113.80:80" "$page"
wait $watcher
check "by name: Tor was asked to connect to the name, not the address" "www.example.test:80" \
    "$(tr -d '\r' <"$events" | awk '$2 == "STREAM" && $4 == "NEW" { print $6; exit }')"

# ---------------------------------------------------------------- .onion
ONION=$(tornet_onion_addr)
read -r st addr _ <<<"$(dig_answer c1 203.0.113.53 "$ONION" A +time=10)"
if [[ $st == NOERROR && $addr == 10.* ]]; then
    pass ".onion: the onion service's name gets a virtual address ($addr)"
else
    fail ".onion: the onion service's name gets a virtual address" "$st $addr"
fi
page=$(topo_exec c1 curl -sS --max-time 60 "http://$ONION/" 2>&1)
check ".onion: curl http://ONION/ reaches the onion service through torsieve" \
    "torsieve-uplink http 203.0.113.80:80" "$page"

# ---------------------------------------------------------------- DNSPort
# The other way to ask Tor: its DNSPort (`set tor-dns`), which passes AAAA
# and TTLs on.
stop_torsieve
echo "set tor-dns 127.0.0.1:5353" >>"$CONF"
topo_bg gw torsieve env TORSIEVE_RELAY_CHECK=1 "$TS" run -c "$CONF" --json --user nobody
TORSIEVE_PID=$TOPO_LAST_PID
topo_wait_until 10 "torsieve running" grep -q "running:" "$TOPO_DIR/torsieve.log"
check "DNSPort: A through Tor's DNSPort" "NOERROR 203.0.113.80 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 www.example.test A +time=10)"
# (This network's exit does not resolve AAAA for clients (no IPv6Exit), so
# Tor's answer is NODATA; what matters here is that it is Tor's answer.)
check "DNSPort: AAAA is Tor's answer" "NOERROR - 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 www.example.test AAAA +time=10)"
check "DNSPort: NXDOMAIN" "NXDOMAIN - 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 nowhere.example.test A +time=10)"
check "DNSPort: asked of Tor three times" "3" "$(torsieve_counter dns resolved)"
page=$(topo_exec c1 curl -sS --max-time 30 http://www.example.test/ 2>&1)
check "DNSPort: curl by name through torsieve and Tor" "torsieve-uplink http 203.0.113.80:80" \
    "$page"

# ---------------------------------------------------------------- leaks
topo_capture_stop
check "leaks: nothing from a client reached the uplink" "0" "$(topo_count_leaks "$TOPO_PCAP")"
stop_torsieve
check "torsieve stopped cleanly (exit status; no sanitizer report)" "0 0" \
    "$TORSIEVE_RC $(grep -c 'Sanitizer\|runtime error' "$WORK/torsieve.log")"
[[ $FAILED -gt 0 ]] && cp "$WORK/torsieve.log" "${TMPDIR:-/tmp}/test_dns_tor.torsieve.log" &&
    echo "torsieve's log: ${TMPDIR:-/tmp}/test_dns_tor.torsieve.log"
topo_down
rm -rf "$WORK"
finish
