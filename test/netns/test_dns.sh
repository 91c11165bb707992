#!/bin/bash
# test_dns.sh - torsieve's DNS service in the namespace topology, with a
# scriptable SOCKS5 server standing in for Tor (socks_stub.py: it answers
# Tor's RESOLVE from a table, and "connects" names from the same table).
# (test/tor/test_dns_tor.sh does the same with a real private Tor network.)
#
#   answers   A, AAAA through Tor's RESOLVE; NXDOMAIN for a name Tor cannot
#             resolve; NODATA for other types and for an A query Tor answers
#             with an IPv6 address; FORMERR for a malformed query; the answer
#             comes from the resolver address the client asked, whatever it
#             was, over UDP and TCP, IPv4 and IPv6; a second query is
#             answered from the cache
#   isolation the RESOLVE carries the client's token
#   .onion    a .onion name gets a virtual address (the same one again),
#             AAAA too; PTR of it gives the name back; a connection to it
#             goes to Tor as a CONNECT by name
#   names     a connection to an address Tor resolved goes to Tor by name
#   clients   one client's lookups neither steer nor reveal another's: the
#             name of an address, the cache, PTR and virtual addresses are
#             per client
#   local     single labels and local-network names never reach Tor
#   pending   past dns-pending-per-client SERVFAIL, while answers that need
#             no Tor still come, and other clients still resolve
#   block     dns-block names and the names under them: NXDOMAIN, or with
#             dns-block-answer the sinkhole addresses
#   automap   with dns-automap every name gets a virtual address, Tor never
#             resolves first, and the connection goes to Tor by name
#   caps      dns-tcp-connections: past it a reset
#   leaks     nothing from a client reached the uplink
#
# Prints "PASS name" / "FAIL name: why" and "N passed, N failed". Needs root.
set -u

# shellcheck source=checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

if [[ $(id -u) -ne 0 ]]; then
    fail "dns preflight" "must run as root"
    finish
fi
for t in dig curl; do
    command -v "$t" >/dev/null 2>&1 || {
        fail "dns preflight" "missing $t"
        finish
    }
done
[[ -x $TS ]] || {
    fail "dns preflight" "$TS is missing (build it first)"
    finish
}

ONION=$(printf 'a%.0s' {1..52})torsieve.onion # 52 + 8 = 60 characters, not a real key
ONION2=$(printf 'b%.0s' {1..52})torsieve.onion
WORK=$(mktemp -d /tmp/ts-dns.XXXXXX)
chmod 755 "$WORK"
CONF=$WORK/torsieve.conf
cat >"$CONF" <<'EOF'
set interface br0
set queue 11
set dns-tcp-connections 2
set dns-pending-per-client 2
dns-block { blocked.example }
pass icmp6 icmp-type { 133, 135, 136 }
divert tcp to port { 80, 443 }
dns proto { tcp, udp } to port 53
drop all
EOF

gw_setup() {
    topo_exec gw "$TS" rules -c "$CONF" --apply || return 1
    topo_bg gw stub "$PY" "$HERE/socks_stub.py" --listen 127.0.0.1:9050 --log "$WORK/socks.log" \
        --resolve www.example.test=203.0.113.80 --resolve v6.example.test=2001:db8:3::80 \
        --resolve "$ONION=203.0.113.80" --resolve "$ONION2=203.0.113.80" \
        --resolve evil.example.test=203.0.113.80 \
        --resolve slow1.example.test=hang --resolve slow2.example.test=hang \
        --resolve slow3.example.test=hang
    topo_wait_listen gw tcp 9050 127.0.0.1 || return 1
    topo_bg gw torsieve env TORSIEVE_RELAY_CHECK=1 "$TS" run -c "$CONF" --json --user nobody
    TORSIEVE_PID=$TOPO_LAST_PID
    topo_wait_listen gw udp 9053 || return 1
    topo_wait_until 10 "torsieve running" grep -q "running:" "$TOPO_DIR/torsieve.log"
}


TORSIEVE_PID=
TOPO_GW_SETUP=gw_setup
export TOPO_BRIDGE_NF=0 # TPROXY needs it (test_inline.sh says why)
if ! topo_up; then
    fail "dns setup" "the topology, the SOCKS stub or torsieve did not come up"
    [[ -n ${TOPO_DIR:-} ]] && tail -5 "$TOPO_DIR/torsieve.log" 2>/dev/null
    rm -rf "$WORK"
    finish
fi
topo_on_down stop_torsieve
topo_forwarding on
topo_capture_start uplink

stub_count() { grep -c "$1" "$WORK/socks.log"; }
stub_last() { tail -1 "$WORK/socks.log" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }


# ---------------------------------------------------------------- answers
check "answers: A through Tor, from the resolver asked" "NOERROR 203.0.113.80 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 www.example.test A)"
check "answers: the RESOLVE named the query and carried the client's token (its MAC)" \
    "www.example.test torsieve mac $(topo_client_mac 1)" "$(stub_last host) $(stub_last user)"
resolves=$(stub_count '"resolve"')
check "answers: any resolver address is answered as itself" "NOERROR 203.0.113.80 203.0.113.99" \
    "$(dig_answer c1 203.0.113.99 www.example.test A)"
check "answers: the second time from the cache (no RESOLVE)" "$resolves" \
    "$(stub_count '"resolve"')"
check "answers: over TCP" "NOERROR 203.0.113.80 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 www.example.test A +tcp)"
check "answers: over IPv6, from the IPv6 resolver asked" "NOERROR 203.0.113.80 2001:db8:3::53" \
    "$(dig_answer c1 2001:db8:3::53 www.example.test A)"
check "answers: AAAA through Tor" "NOERROR 2001:db8:3::80 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 v6.example.test AAAA)"
check "answers: an A query Tor answers with IPv6: NODATA" "NOERROR - 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 v6.example.test A)"
check "answers: a name Tor cannot resolve: NXDOMAIN" "NXDOMAIN - 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 nowhere.example.test A)"
before=$(stub_count '"resolve"')
check "answers: MX and TXT: NODATA, not NOTIMP" "NOERROR - 203.0.113.53 NOERROR - 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 www.example.test MX) $(dig_answer c1 203.0.113.53 www.example.test TXT)"
check "answers: other types never reach Tor" "$before" "$(stub_count '"resolve"')"
formerr=$(topo_exec c1 "$PY" -c '
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
# two questions: malformed for a resolver
s.sendto(struct.pack(">HHHHHH", 0x4242, 0x0100, 2, 0, 0, 0) + b"\x01a\x00\x00\x01\x00\x01", ("203.0.113.53", 53))
m, src = s.recvfrom(512)
print("%04x %d %s" % (struct.unpack(">H", m[:2])[0], m[3] & 15, src[0]))')
check "answers: a malformed query: FORMERR with its id, from the resolver asked" \
    "4242 1 203.0.113.53" "$formerr"

# ---------------------------------------------------------------- .onion
read -r st onion_a from <<<"$(dig_answer c1 203.0.113.53 "$ONION" A)"
if [[ $st == NOERROR && $onion_a == 10.* ]]; then
    pass ".onion: a virtual address ($onion_a), without asking Tor"
else
    fail ".onion: a virtual address" "$st $onion_a $from"
fi
check ".onion: the same address again" "NOERROR $onion_a 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 "$ONION" A)"
read -r st onion_aaaa _ <<<"$(dig_answer c1 203.0.113.53 "$ONION" AAAA)"
[[ $st == NOERROR && $onion_aaaa == fd74:6f72:* ]] && pass ".onion: AAAA from the IPv6 range ($onion_aaaa)" ||
    fail ".onion: AAAA from the IPv6 range" "$st $onion_aaaa"
IFS=. read -r o1 o2 o3 o4 <<<"$onion_a"
check ".onion: PTR of the virtual address gives the name" "NOERROR $ONION. 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 "$o4.$o3.$o2.$o1.in-addr.arpa" PTR)"
page=$(topo_exec c1 curl -sS --max-time 10 --resolve "$ONION:80:$onion_a" "http://$ONION/" 2>&1)
check ".onion: a connection to the virtual address fetches through Tor" \
    "torsieve-uplink http 203.0.113.80:80" "$page"
check ".onion: Tor was asked for the name, not the address" "$ONION 80" \
    "$(stub_last host) $(stub_last port)"

# A dual-stack client: the name looked up over IPv6, the connection over
# IPv4. Both are the client's (its MAC, seen in the queue), so the virtual
# address it got works.
read -r st onion2_a _ <<<"$(dig_answer c1 2001:db8:3::53 "$ONION2" A)"
page=$(topo_exec c1 curl -sS --max-time 10 --resolve "$ONION2:80:$onion2_a" "http://$ONION2/" 2>&1)
check ".onion: looked up over IPv6, connected over IPv4: one client" \
    "torsieve-uplink http 203.0.113.80:80 $ONION2" "$page $(stub_last host)"

# ---------------------------------------------------------------- names
# The client's resolver, as DHCP would set it: `ip netns exec` puts
# /etc/netns/NAME/resolv.conf over /etc/resolv.conf inside the namespace.
C1_NS=$(topo_ns c1)
mkdir -p "/etc/netns/$C1_NS" && echo "nameserver 203.0.113.53" >"/etc/netns/$C1_NS/resolv.conf"
drop_resolv() { rm -rf "/etc/netns/$C1_NS"; rmdir /etc/netns 2>/dev/null; }
topo_on_down drop_resolv
page=$(topo_exec c1 curl -sS --max-time 10 http://www.example.test/ 2>&1)
check "names: curl http://www.example.test/ works (resolved by torsieve)" \
    "torsieve-uplink http 203.0.113.80:80" "$page"
check "names: Tor was asked to connect to the name the address was resolved from" \
    "www.example.test 80" "$(stub_last host) $(stub_last port)"

# ---------------------------------------------------------------- clients apart
# Another client's lookups neither steer nor reveal this client's: c2
# resolves a name that shares www.example.test's address, looks up the
# same name (its own RESOLVE, its own token), asks PTR of c1's .onion.
dig_answer c2 203.0.113.53 evil.example.test A >/dev/null
page=$(topo_exec c1 curl -sS --max-time 10 http://www.example.test/ 2>&1)
check "clients apart: c1's connection goes by c1's name, not the one c2 resolved last" \
    "www.example.test" "$(stub_last host)"
before=$(stub_count '"resolve"')
dig_answer c2 203.0.113.53 www.example.test A >/dev/null
check "clients apart: c2's lookup of a name c1 has cached asks Tor, with c2's token" \
    "$((before + 1)) torsieve mac $(topo_client_mac 2)" "$(stub_count '"resolve"') $(stub_last user)"
check "clients apart: PTR of c1's virtual address tells c2 nothing" "NOERROR - 203.0.113.53" \
    "$(dig_answer c2 203.0.113.53 "$o4.$o3.$o2.$o1.in-addr.arpa" PTR)"
# The property: c2 cannot reach c1's onion service through c1's virtual
# address (torsieve answers host unreachable; whatever the way it fails,
# no page comes and Tor is never asked for the name with c2's token).
out=$(topo_exec c2 "$PY" "$HERE/relay_client.py" http "$onion_a" 80 /)
c2_onion=$(grep -c "\"host\": \"$ONION\".*mac $(topo_client_mac 2)\|mac $(topo_client_mac 2).*\"host\": \"$ONION\"" \
    "$WORK/socks.log")
check "clients apart: and c2 cannot reach the service through it" "no-page 0" \
    "$([[ $out == "http 200"* ]] && echo page || echo no-page) $c2_onion"
[[ ${out%% *} == EHOSTUNREACH ]] ||
    echo "    (note: c2's attempt ended as '$out', not EHOSTUNREACH; relay: $(torsieve_counter relay))"

# ---------------------------------------------------------------- local names
before=$(stub_count '"resolve"')
check "local names: a single label, .local, .home.arpa: NXDOMAIN" \
    "NXDOMAIN - 203.0.113.53 NXDOMAIN - 203.0.113.53 NXDOMAIN - 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 wpad A) $(dig_answer c1 203.0.113.53 printer.local A) \
$(dig_answer c1 203.0.113.53 nas.home.arpa AAAA)"
check "local names: never sent to Tor" "$before" "$(stub_count '"resolve"')"

# ---------------------------------------------------------------- pending
# dns-pending-per-client 2: two lookups Tor never answers fill c1's share;
# a third gets SERVFAIL at once; c1's cached, .onion and blocked names are
# still answered, and c2's lookups still go to Tor.
slow=()
for n in 1 2; do
    topo_exec c1 dig +time=8 +tries=1 @203.0.113.53 slow$n.example.test >/dev/null 2>&1 &
    slow+=($!)
done
sleep 1
check "pending: past dns-pending-per-client, SERVFAIL at once" "SERVFAIL - 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 slow3.example.test A)"
check "pending: the client's cached name is still answered" "NOERROR 203.0.113.80 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 www.example.test A)"
check "pending: .onion still answered" "NOERROR $onion_a 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 "$ONION" A)"
check "pending: another client still asks Tor" "NOERROR 203.0.113.80 203.0.113.53" \
    "$(dig_answer c2 203.0.113.53 v6.example.test AAAA | sed 's/2001:db8:3::80/203.0.113.80/')"
check "counters: over_pending" "1" "$(torsieve_counter dns over_pending)"
wait "${slow[@]}"

# ---------------------------------------------------------------- block
check "block: a dns-block name: NXDOMAIN" "NXDOMAIN - 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 blocked.example A)"
check "block: a name under it too" "NXDOMAIN - 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 ads.blocked.example AAAA)"
check "block: counted, never asked of Tor" "2 0" \
    "$(torsieve_counter dns blocked) $(stub_count 'blocked.example')"

# ---------------------------------------------------------------- caps
out=$(topo_exec c1 "$PY" "$HERE/relay_client.py" many 203.0.113.53 53 3 0.5)
check "caps: past dns-tcp-connections a reset" "open open ECONNRESET" \
    "$(sed 's/ \(open\|ECONNREFUSED\|ECONNRESET\)$/ ECONNRESET/' <<<"$out")"
check "counters: tcp_over" "1" "$(torsieve_counter dns tcp_over)"

# ---------------------------------------------------------------- automap
# Another configuration: every name gets a virtual address (Tor never
# resolves before the connection), and blocked names get sinkhole addresses.
stop_torsieve
cat >>"$CONF" <<'EOF'
set dns-automap on
set dns-block-answer 0.0.0.0 ::
EOF
topo_bg gw torsieve env TORSIEVE_RELAY_CHECK=1 "$TS" run -c "$CONF" --json --user nobody
TORSIEVE_PID=$TOPO_LAST_PID
topo_wait_until 10 "torsieve running" grep -q "running:" "$TOPO_DIR/torsieve.log"
before=$(stub_count '"resolve"')
read -r st auto_a _ <<<"$(dig_answer c1 203.0.113.53 www.example.test A)"
if [[ $st == NOERROR && $auto_a == 10.* ]]; then
    pass "automap: a plain name gets a virtual address ($auto_a), Tor not asked"
else
    fail "automap: a plain name gets a virtual address" "$st $auto_a"
fi
check "automap: no RESOLVE" "$before" "$(stub_count '"resolve"')"
page=$(topo_exec c1 curl -sS --max-time 10 http://www.example.test/ 2>&1)
check "automap: curl by name fetches through the virtual address" \
    "torsieve-uplink http 203.0.113.80:80" "$page"
check "automap: Tor was asked for the name" "www.example.test 80" \
    "$(stub_last host) $(stub_last port)"
check "block: with dns-block-answer, the sinkhole addresses" \
    "NOERROR 0.0.0.0 203.0.113.53 NOERROR :: 203.0.113.53" \
    "$(dig_answer c1 203.0.113.53 x.blocked.example A) $(dig_answer c1 203.0.113.53 blocked.example AAAA)"

# ---------------------------------------------------------------- leaks
topo_capture_stop
check "leaks: nothing from a client reached the uplink" "0" "$(topo_count_leaks "$TOPO_PCAP")"
stop_torsieve
check "torsieve stopped cleanly (exit status; no sanitizer report)" "0 0" \
    "$TORSIEVE_RC $(grep -c 'Sanitizer\|runtime error' "$WORK/torsieve.log")"
topo_down
rm -rf "$WORK"
finish
