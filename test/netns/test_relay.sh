#!/bin/bash
# test_relay.sh - torsieve's built-in relay in the namespace topology, with
# two scriptable SOCKS5 servers (socks_stub.py) standing in for two Tor
# instances on the gateway, so every answer Tor can give is given on cue.
# (test/tor/test_relay_tor.sh does the same with a real private Tor network.)
#
#   relay     a client's connection to the uplink's servers (IPv4 and IPv6,
#             ports 80 and 443) arrives from the gateway with the same bytes;
#             16 MB down, 20 MB up; a half-close from the client still gets the
#             server's answer (eof-echo)
#   held SYN  the client's handshake completes only after the SOCKS server
#             answered (a 1.5 s delay: connect takes 1.5 s, one CONNECT for the
#             SYN and its retransmission); Tor's errors reach the client as
#             what they mean, within a second: refused -> reset
#             (ECONNREFUSED), host unreachable and onion errors -> ICMP host
#             unreachable, network unreachable -> ICMP net unreachable; no
#             answer within syn-timeout -> host unreachable
#   isolation each client has its own SOCKS username (its MAC), the same on
#             every connection, and stays on one instance
#   failover  the client's instance killed: its next connection goes through
#             the other; both killed: refused at once
#   caps      pending-syns-per-client: past it the SYN is accepted first;
#             relay-connections-per-client: past it a reset; relay-idle: an
#             idle connection is closed; out of descriptors: resets, and the
#             reserved descriptor takes the one that meets EMFILE at accept; a slow reader holds back the relay
#             (bytes relayed stay bounded while it does not read)
#   counters  the relay's JSON counters say all of the above
#   leaks     nothing from a client reached the uplink
#
# Prints "PASS name" / "FAIL name: why" and "N passed, N failed". Needs root.
set -u

# shellcheck source=checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

if [[ $(id -u) -ne 0 ]]; then
    fail "relay preflight" "must run as root"
    finish
fi
[[ -x $TS ]] || {
    fail "relay preflight" "$TS is missing (build it first)"
    finish
}

WORK=$(mktemp -d /tmp/ts-relay.XXXXXX)
chmod 755 "$WORK"
CONF=$WORK/torsieve.conf
cat >"$CONF" <<'EOF'
set interface br0
set queue 7
set tor-socks 127.0.0.1:9050 127.0.0.1:9060
set syn-timeout 2
set pending-syns-per-client 2
set relay-connections-per-client 3
set relay-idle 4
set relay-buffer 64K
pass icmp6 icmp-type { 133, 135, 136 }
divert tcp to port { 7, 80, 443, 81, 82, 83, 84, 86 }
drop all
EOF
STUB_ANSWERS=(--answer '*:81=5' --answer '*:82=4' --answer '*:83=hang' --answer '*:84=0xf0'
    --answer '*:86=3' --answer '203.0.113.80:443=delay:1.5')

start_stub() { # NAME PORT
    topo_bg gw "stub-$1" "$PY" "$HERE/socks_stub.py" --listen "127.0.0.1:$2" --name "$1" \
        --log "$WORK/socks.log" "${STUB_ANSWERS[@]}"
    eval "STUB_$1=$TOPO_LAST_PID"
}

gw_setup() {
    topo_exec gw "$TS" rules -c "$CONF" --apply || return 1
    start_stub A 9050
    start_stub B 9060
    topo_wait_listen gw tcp 9050 127.0.0.1 || return 1
    topo_wait_listen gw tcp 9060 127.0.0.1 || return 1
    topo_bg gw torsieve env TORSIEVE_RELAY_CHECK=1 "$TS" run -c "$CONF" --json --user nobody
    TORSIEVE_PID=$TOPO_LAST_PID
    topo_wait_listen gw tcp 9040 || return 1
    topo_wait_until 10 "torsieve running" grep -q "running:" "$TOPO_DIR/torsieve.log"
}


TORSIEVE_PID=
TOPO_GW_SETUP=gw_setup
export TOPO_BRIDGE_NF=0 # TPROXY needs it (test_inline.sh says why)
if ! topo_up; then
    fail "relay setup" "the topology, the SOCKS stubs or torsieve did not come up"
    [[ -n ${TOPO_DIR:-} ]] && tail -5 "$TOPO_DIR/torsieve.log" 2>/dev/null
    rm -rf "$WORK"
    finish
fi
topo_on_down stop_torsieve
topo_forwarding on # a leak would get through: only torsieve stands in the way

# torsieve's descriptors when idle, below 200 (one the test's shell passed on
# may sit far above, where it takes no slot under a low limit)
BASE_FDS=$(ls "/proc/$TORSIEVE_PID/fd" | awk '$1 < 200' | wc -l)
C1=(topo_exec c1 "$PY" "$HERE/relay_client.py")
C2=(topo_exec c2 "$PY" "$HERE/relay_client.py")
H4=$TOPO_HTTP4
H6=$TOPO_HTTP6


# stub_field N FIELD: FIELD of the Nth-last SOCKS request the stubs logged
stub_field() {
    tail -n "$1" "$WORK/socks.log" | head -1 |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}
stub_count() { grep -c "$1" "$WORK/socks.log"; }

# ---------------------------------------------------------------- relay
body_sha=$(printf 'torsieve-uplink http %s:80\n' "$H4" | sha256sum | cut -d' ' -f1)
read -r what status len sha _ <<<"$("${C1[@]}" http "$H4" 80 /)"
check "relay: IPv4 port 80 fetched through the relay" "http 200 $body_sha" "$what $status $sha"
check "relay: the CONNECT asked for the SYN's destination" "203.0.113.80:80" \
    "$(stub_field 1 host):$(stub_field 1 port)"
check "relay: the client's SOCKS username is its MAC" "torsieve mac $(topo_client_mac 1)" \
    "$(stub_field 1 user)"
INSTANCE1=$(stub_field 1 name)
read -r what status len sha _ <<<"$("${C1[@]}" http "$H6" 80 /)"
body6=$(printf 'torsieve-uplink http [%s]:80\n' "$H6" | sha256sum | cut -d' ' -f1)
check "relay: IPv6 port 80 fetched through the relay" "http 200 $body6" "$what $status $sha"
check "relay: the IPv6 CONNECT names the IPv6 destination" "$H6" "$(stub_field 1 host)"
read -r what status len _ <<<"$("${C1[@]}" http "$H6" 443 /bytes/16000000)"
check "relay: 16 MB from the server, byte for byte" "http 200 16000000" "$what $status $len"
out=$("${C1[@]}" eofecho "$H4" 7 20000000)
check "relay: 20 MB to the server, then a half-close: the answer still comes" "ok 20000000" \
    "${out% *}"
out=$("${C1[@]}" urgent "$H4" 7)
check "relay: urgent data goes on in the stream, in order (no stall)" "ok" "${out% *}"
check "relay: the server saw the gateway, never the client" "0" \
    "$(grep -c "from $(topo_client_ip4 1)\|from \[$(topo_client_ip6 1)\]" "$TOPO_DIR/servers.log")"

# A slow reader: while it reads nothing, what the relay moved stays near the
# pipe and the sockets' buffers, far from the 16 MB asked for.
sent_before=$(torsieve_counter relay bytes_to_client)
"${C1[@]}" http "$H4" 80 /bytes/16000000 3 >"$WORK/slow.out" &
slow=$!
sleep 2
moved=$(($(torsieve_counter relay bytes_to_client) - sent_before))
wait $slow
read -r what status len _ <"$WORK/slow.out"
check "backpressure: the slow reader still gets every byte" "http 200 16000000" "$what $status $len"
check "backpressure: counted (held_back)" "yes" "$( (($(torsieve_counter relay held_back) > 0)) && echo yes || echo no)"
if ((moved < 8000000)); then
    pass "backpressure: $moved bytes relayed while the client did not read"
else
    fail "backpressure: relayed bytes bounded while the client did not read" "$moved bytes"
fi

# The uplink is watched from here on (the bulk transfers above would
# overflow the capture's buffer; they are the gateway's own traffic anyway).
topo_capture_start uplink

# ---------------------------------------------------------------- held SYN
n_before=$(stub_count '"port": 443')
read -r what status len sha secs <<<"$("${C1[@]}" http "$H4" 443 /)"
body443=$(printf 'torsieve-uplink http %s:443\n' "$H4" | sha256sum | cut -d' ' -f1)
check "held SYN: the fetch works when Tor takes 1.5 s" "http 200 $body443" "$what $status $sha"
if awk -v s="$secs" 'BEGIN { exit !(s >= 1.45 && s < 3) }'; then
    pass "held SYN: the handshake waited for Tor's answer (${secs}s)"
else
    fail "held SYN: the handshake waited for Tor's answer" "took ${secs}s, expected 1.5 to 3"
fi
check "held SYN: one CONNECT for the SYN and its retransmission" "1" \
    "$(($(stub_count '"port": 443') - n_before))"
copies=$(torsieve_counter relay syn_copies)
if ((copies >= 1)); then pass "held SYN: the retransmitted SYN was held with it ($copies)"; else
    fail "held SYN: the retransmitted SYN was held with it" "syn_copies $copies"; fi

within_second() { # NAME WANT OUTPUT
    local got=${3% *} secs=${3##* }
    if [[ $got == "$2" ]] && awk -v s="$secs" 'BEGIN { exit !(s < 1) }'; then
        pass "$1 (${secs}s)"
    else
        fail "$1" "expected '$2' within 1 s, got '$3'"
    fi
}
within_second "held SYN: Tor's 'refused' is a reset" ECONNREFUSED "$("${C1[@]}" connect "$H4" 81)"
within_second "held SYN: Tor's 'host unreachable' is ICMP host unreachable" EHOSTUNREACH \
    "$("${C1[@]}" connect "$H4" 82)"
within_second "held SYN: Tor's 'onion descriptor not found' is host unreachable" EHOSTUNREACH \
    "$("${C1[@]}" connect "$H4" 84)"
within_second "held SYN: Tor's 'network unreachable' is ICMP net unreachable" ENETUNREACH \
    "$("${C1[@]}" connect "$H4" 86)"
within_second "held SYN: IPv6, 'host unreachable' is ICMPv6 unreachable" EHOSTUNREACH \
    "$("${C1[@]}" connect "$H6" 82)"
read -r what secs <<<"$("${C1[@]}" connect "$H4" 83)"
if [[ $what == EHOSTUNREACH ]] && awk -v s="$secs" 'BEGIN { exit !(s >= 1.9 && s < 3.5) }'; then
    pass "held SYN: no answer within syn-timeout (2 s) is host unreachable (${secs}s)"
else
    fail "held SYN: no answer within syn-timeout is host unreachable" "$what after ${secs}s"
fi
check "counters: Tor's reply codes" "1 2 1 1" "$(torsieve_counter relay tor_replies 0x05) \
$(torsieve_counter relay tor_replies 0x04) $(torsieve_counter relay tor_replies 0xf0) $(torsieve_counter relay tor_replies 0x03)"
check "counters: the timeout" "1" "$(torsieve_counter relay syn_timeout)"

# A new SYN (new ISN) on a tuple whose SYN is held replaces it: the old
# copies are dropped, never left in the kernel's queue (a stuck packet there
# takes a queue slot for good).
"${C1[@]}" newisn "$H4" 83 40555 3 >/dev/null
check "held SYN: SYNs with a new ISN replace the held one" "2" "$(torsieve_counter relay syn_replaced)"
sleep 2.5 # syn-timeout 2: the last one is answered too
queued=$(topo_exec gw awk '$1 == 7 { print $3 }' /proc/net/netfilter/nfnetlink_queue)
check "held SYN: nothing left in the kernel's queue" "0" "$queued"

# Client bookkeeping: a client with a relayed connection and, meanwhile, a
# SYN Tor refused; the connection ends, the refusal is forgotten, more
# clients come. torsieve checks its tables every second
# (TORSIEVE_RELAY_CHECK) and aborts if they disagree.
"${C1[@]}" eofecho "$H4" 7 10 1.5 >"$WORK/book.out" &
book=$!
sleep 0.5
"${C1[@]}" connect "$H4" 81 >/dev/null
wait $book
sleep 3.5
"${C2[@]}" connect "$H4" 81 >/dev/null
"${C1[@]}" connect "$H4" 82 >/dev/null
"${C2[@]}" http "$H4" 80 / >/dev/null
sleep 1.2
if kill -0 "$TORSIEVE_PID" 2>/dev/null && ! grep -q "inconsistent tables" "$TOPO_DIR/torsieve.log"; then
    pass "bookkeeping: the relay's tables stay consistent ($(torsieve_counter relay clients) clients now)"
else
    fail "bookkeeping: the relay's tables stay consistent" "$(grep -m1 "inconsistent tables" "$TOPO_DIR/torsieve.log")"
fi

# ---------------------------------------------------------------- isolation
"${C2[@]}" http "$H4" 80 / >/dev/null
check "isolation: the second client has its own username" "torsieve mac $(topo_client_mac 2)" \
    "$(stub_field 1 user)"
c1_names=$(grep "mac $(topo_client_mac 1)" "$WORK/socks.log" |
    "$PY" -c 'import json, sys; print(" ".join(sorted({json.loads(l)["name"] for l in sys.stdin})))')
check "isolation: every connection of the client went to one instance" "$INSTANCE1" "$c1_names"

# ---------------------------------------------------------------- caps
# pending-syns-per-client 2: three SYNs Tor never answers: two are held
# (and time out: host unreachable), the third is accepted first and reset
# when Tor's answer does not come.
out=$("${C1[@]}" parallel "$H4" 83 3)
check "caps: past pending-syns-per-client the SYN is accepted first" \
    "EHOSTUNREACH EHOSTUNREACH open" "${out% *}"
check "counters: syn_accept_first" "1" "$(torsieve_counter relay syn_accept_first)"
# relay-connections-per-client 3
out=$("${C1[@]}" many "$H4" 7 4 1)
check "caps: past relay-connections-per-client a reset" "open open open ECONNREFUSED" "$out"
check "counters: syn_over_connections" "1" "$(torsieve_counter relay syn_over_connections)"
# relay-idle 4
idle_before=$(torsieve_counter relay closed idle)
out=$("${C1[@]}" eofecho "$H4" 7 10 6)
if [[ $out != ok* ]]; then pass "caps: an idle connection is closed after relay-idle ($out)"; else
    fail "caps: an idle connection is closed after relay-idle" "$out"; fi
check "counters: closed idle" "$((idle_before + 1))" "$(torsieve_counter relay closed idle)"
# Out of descriptors: a second torsieve started with a hard limit of what
# it has open when idle plus 7 (this machine may not raise a hard limit). A
# relayed connection takes 6 (its SOCKS socket, the accepted socket, two
# pipes), so the first connection fits; the second's SOCKS socket takes the
# last slot, Tor opens the stream, and its accept meets EMFILE: the reserved
# descriptor takes it off the backlog and resets it (the client's connect
# had already succeeded: the kernel completed the handshake), and its Tor
# stream is let go at once, so the third goes the same way rather than
# finding no descriptor for its SOCKS socket. torsieve keeps running, and
# once they are closed the relay works again.
stop_torsieve
topo_bg gw torsieve prlimit --nofile=$((BASE_FDS + 7)):$((BASE_FDS + 7)) \
    env TORSIEVE_RELAY_CHECK=1 "$TS" run -c "$CONF" --json --user nobody
TORSIEVE_PID=$TOPO_LAST_PID
topo_wait_until 10 "torsieve running" grep -q "running:" "$TOPO_DIR/torsieve.log"
grep -q "the descriptor limit is $((BASE_FDS + 7))" "$TOPO_DIR/torsieve.log" &&
    pass "EMFILE: a limit below what relay-connections needs is logged" ||
    fail "EMFILE: a limit below what relay-connections needs is logged" \
        "$(grep -m1 descriptor "$TOPO_DIR/torsieve.log")"
out=$("${C2[@]}" many "$H4" 7 3 0.5)
# (a reset can come before the client's connect() returns or after)
check "EMFILE: the first fits, the next two are reset after their handshake" \
    "open reset reset" "$(sed 's/ \(open\|ECONNRESET\)/ reset/g' <<<"$out")"
check "EMFILE: the reserved descriptor took both off the backlog, their streams let go" \
    "2 0 0" "$(torsieve_counter relay emfile) $(torsieve_counter relay syn_broken) \
$(torsieve_counter relay pending)"
sleep 1
read -r what status _ <<<"$("${C2[@]}" http "$H4" 80 /)"
check "EMFILE: after they closed, the relay works again" "http 200" "$what $status"
stop_torsieve
topo_bg gw torsieve env TORSIEVE_RELAY_CHECK=1 "$TS" run -c "$CONF" --json --user nobody
TORSIEVE_PID=$TOPO_LAST_PID
topo_wait_until 10 "torsieve running" grep -q "running:" "$TOPO_DIR/torsieve.log"

# Stopping torsieve resets what it relays (never left half open) and the
# last report counts it.
"${C1[@]}" eofecho "$H4" 7 10 2 >"$WORK/stop.out" &
held=$!
sleep 0.7
stop_torsieve
wait "$held"
check "stop: a relayed connection is reset when torsieve stops" "ECONNRESET" \
    "$(cut -d' ' -f1 "$WORK/stop.out")"
check "stop: the last report counts it" "1" "$(grep '"queue"' "$WORK/torsieve.log" | tail -1 |
    sed 's/^[^{]*//' | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["relay"]["closed"]["shutdown"])')"
topo_bg gw torsieve env TORSIEVE_RELAY_CHECK=1 "$TS" run -c "$CONF" --json --user nobody
TORSIEVE_PID=$TOPO_LAST_PID
topo_wait_until 10 "torsieve running" grep -q "running:" "$TOPO_DIR/torsieve.log"

# ---------------------------------------------------------------- failover
kill "$(eval echo "\$STUB_$INSTANCE1")"
read -r what status _ <<<"$("${C1[@]}" http "$H4" 80 /)"
check "failover: the client's instance gone, its next fetch works" "http 200" "$what $status"
check "failover: through the other instance" "$([[ $INSTANCE1 == A ]] && echo B || echo A)" \
    "$(stub_field 1 name)"
kill "$STUB_A" "$STUB_B" 2>/dev/null
within_second "failover: no instance left: refused at once" ECONNREFUSED \
    "$("${C1[@]}" connect "$H4" 80)"
if (($(torsieve_counter relay syn_no_tor) >= 1)); then pass "counters: syn_no_tor"; else
    fail "counters: syn_no_tor" "0"; fi

# ---------------------------------------------------------------- leaks
topo_capture_stop
check "leaks: nothing from a client reached the uplink" "0" "$(topo_count_leaks "$TOPO_PCAP")"
stop_torsieve
grep -q '"closed":{"done":' "$WORK/torsieve.log" && pass "counters: printed at exit" ||
    fail "counters: printed at exit" "no relay counters in the log"
check "torsieve stopped cleanly (exit status; no sanitizer report)" "0 0" \
    "$TORSIEVE_RC $(grep -c 'Sanitizer\|runtime error' "$WORK/torsieve.log")"
topo_down
rm -rf "$WORK"
finish
