#!/bin/bash
# test_inline.sh - torsieve as the inline gateway in the namespace topology:
# the rules from `torsieve rules --apply`, `torsieve run` on NFQUEUE, stand-in
# TPROXY listeners and a stand-in for Tor's SOCKS port on the gateway.
#
#   rules     --apply twice changes nothing; --remove leaves no trace
#   verdicts  divert reaches the TCP listener with the original destination
#             (IPv4 and IPv6); dns reaches the UDP listener with the resolver
#             address the client asked; pass reaches the gateway's service;
#             reject answers at once (ICMP port unreachable for UDP, a reset
#             for TCP); drop is silence
#   counters  torsieve's per-rule hits equal, packet for packet, what a capture
#             on the client saw it send (by the rule's own match)
#   leaks     with the gateway's forwarding ON, the uplink captured 0 packets
#             from clients and nothing that is not the gateway's own; the
#             servers saw no client
#   reload    SIGHUP with a broken policy: refused, the old one keeps working;
#             with a policy without divert: a diverted connection opened before
#             keeps working (its verdict is kept), a new one is dropped
#   stopped   with torsieve stopped, the same probes all fail and nothing leaks
#             (the queue has no listener and no bypass: the kernel drops)
#
# Prints "PASS name" / "FAIL name: why" and "N passed, N failed". Needs root.
# TORSIEVE names the binary (default build/gcc/torsieve).
set -u

# shellcheck source=checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

if [[ $(id -u) -ne 0 ]]; then
    fail "inline preflight" "must run as root"
    finish
fi
missing=
for t in ip ss tcpdump dig iptables-legacy ip6tables-legacy iptables-legacy-restore; do
    command -v "$t" >/dev/null 2>&1 || missing+=" $t"
done
[[ -x $TS ]] || missing+=" $TS (build it first)"
if [[ -n $missing ]]; then
    fail "inline preflight" "missing:$missing"
    finish
fi

WORK=$(mktemp -d /tmp/ts-inline.XXXXXX)
CONF=$WORK/torsieve.conf
# Rule lines are referred to by number below: keep them in this order. The
# fast path is off so that every packet is judged and counted (the leak
# battery and the benchmark run with it on). Two queues (two workers, flows
# spread by --queue-balance) and marks in the third byte, beside a mark of
# someone else's in the low byte (set in gw_setup), which must survive.
cat >"$CONF" <<'EOF'
set interface br0
set queue 3-4
set mark-mask 0xff0000
set fast-path off
set relay off
set dns-service off
pass icmp6 icmp-type { 133, 135, 136 }
pass tcp to { 192.0.2.1, 2001:db8:1::1 } port 9050
divert tcp to port { 80, 443 }
dns udp to port 53
reject udp to port 443 with port-unreachable
reject tcp to port 8080
drop udp to port 5555
drop all
EOF
LINE_PASS=8 LINE_DIVERT=9 LINE_DNS=10 LINE_REJECT_UDP=11 LINE_REJECT_TCP=12 LINE_DROP_5555=13

save_rules() { # everything torsieve's rules could have touched, without counters
    topo_exec gw sh -c 'iptables-legacy-save; ip6tables-legacy-save; ip rule show; ip -6 rule show;
        ip route show table 100; ip -6 route show table 100' 2>/dev/null |
        grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
}

gw_setup() {
    save_rules >"$WORK/rules-before"
    topo_exec gw "$TS" rules -c "$CONF" --apply || return 1
    save_rules >"$WORK/rules-1"
    topo_exec gw "$TS" rules -c "$CONF" --apply || return 1
    save_rules >"$WORK/rules-2"
    # Another program's mark in the low byte, set before torsieve's queue,
    # and a counter of it arriving locally with the byte intact.
    topo_exec gw iptables-legacy -t raw -I PREROUTING 1 -i br0 -j MARK --set-xmark 0x5/0xff
    topo_exec gw iptables-legacy -t mangle -A INPUT -i br0 -m mark --mark 0x5/0xff
    topo_bg gw sink "$PY" "$HERE/tproxy_sink.py" 9040 9053
    topo_bg gw socks "$PY" -c '
import socket, threading
def serve(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 9050)); s.listen(8)
    while True:
        c, _ = s.accept(); c.sendall(b"tor-socks-standin\n"); c.close()
threading.Thread(target=serve, args=(socket.AF_INET6, "2001:db8:1::1"), daemon=True).start()
serve(socket.AF_INET, "192.0.2.1")'
    # As the daemon should run: dropped to an unprivileged user once its
    # sockets are open (so the policy must be readable for the reloads).
    chmod 755 "$WORK"
    topo_bg gw torsieve "$TS" run -c "$CONF" --json --user nobody
    TORSIEVE_PID=$TOPO_LAST_PID
    topo_wait_listen gw tcp 9040 || return 1
    topo_wait_listen gw udp 9053 || return 1
    topo_wait_listen gw tcp 9050 192.0.2.1 || return 1
    topo_wait_until 10 "torsieve running" grep -q "running:.*as user nobody" "$TOPO_DIR/torsieve.log"
}

stop_torsieve() {
    [[ -n ${TORSIEVE_PID:-} ]] || return 0
    kill -TERM "$TORSIEVE_PID" 2>/dev/null
    wait "$TORSIEVE_PID" 2>/dev/null
    TORSIEVE_RC=$?
    TORSIEVE_PID=
    cp "$TOPO_DIR/torsieve.log" "$WORK/torsieve.log" 2>/dev/null
}
cleanup_work() { rm -rf "$WORK"; }

TORSIEVE_PID=
TOPO_GW_SETUP=gw_setup
# TPROXY needs the bridge's IP traffic to meet iptables at the IP layer: with
# br_netfilter, PREROUTING runs at the bridge, and the socket TPROXY assigns
# is dropped again when the packet enters IP (ip_rcv_core orphans it), so the
# diverted SYN is answered with a reset. docs/deployment.md says the same.
export TOPO_BRIDGE_NF=0
if ! topo_up; then
    fail "inline setup" "the topology, the rules or torsieve did not come up"
    [[ -f $WORK/torsieve.log ]] && tail -5 "$WORK/torsieve.log"
    rm -rf "$WORK"
    finish
fi
topo_on_down stop_torsieve

# ---------------------------------------------------------------- privileges
caps=$(awk '/^Uid:/ {u=$2} /^CapEff:/ {c=$2} END {print u, c}' "/proc/$TORSIEVE_PID/status")
nobody=$(id -u nobody)
check "privileges: runs as nobody with CAP_NET_ADMIN alone" "$nobody 0000000000001000" "$caps"
# The queue's receive buffer is what `set queue-buffer` says (8M by
# default; the kernel reports it doubled).
rb=$(topo_exec gw ss -f netlink -pm | grep -A1 "torsieve/$TORSIEVE_PID" | grep -o 'rb[0-9]*' | head -1)
check "queue: the netlink receive buffer is queue-buffer" "rb16777216" "$rb"

# ---------------------------------------------------------------- rules
if cmp -s "$WORK/rules-1" "$WORK/rules-2"; then
    pass "rules: a second --apply changes nothing"
else
    fail "rules: a second --apply changes nothing" "$(diff "$WORK/rules-1" "$WORK/rules-2" | head -5)"
fi
n=$(grep -c 'torsieve-' "$WORK/rules-1")
if ((n >= 20)) && grep -q 'NFQUEUE --queue-balance 3:4' "$WORK/rules-1" &&
    ! grep -q 'queue-bypass' "$WORK/rules-1"; then
    pass "rules: $n lines in torsieve's chains, the queue without bypass"
else
    fail "rules: applied" "$n torsieve lines; queue rule: $(grep NFQUEUE "$WORK/rules-1" | head -2)"
fi

# The firewall, not the sysctl, has to stop leaks.
topo_forwarding on

# ---------------------------------------------------------------- traffic
C1=$(topo_client_ip4 1)
topo_bg c1 client-capture tcpdump -i eth0 -Q out -U -w "$TOPO_DIR/client.pcap" not arp
CAP_PID=$TOPO_LAST_PID
topo_wait_until 5 "client capture" grep -q "listening on" "$TOPO_DIR/client-capture.log"
topo_capture_start traffic

probe() { topo_exec c1 "$PY" "$HERE/probe.py" "$@"; }
check "divert IPv4: the listener got it, original destination kept" \
    "torsieve-tproxy 203.0.113.80 80" "$(probe banner 203.0.113.80 80)"
check "divert IPv6: the listener got it, original destination kept" \
    "torsieve-tproxy 2001:db8:3::80 443" "$(probe banner 2001:db8:3::80 443)"
check "pass: the gateway's service answered" "tor-socks-standin" "$(probe banner 192.0.2.1 9050)"
check "pass IPv6: the gateway's service answered" "tor-socks-standin" \
    "$(probe banner 2001:db8:1::1 9050)"
check "reject udp 443: port unreachable at once" "refused" "$(probe udp 203.0.113.80 443)"
check "reject tcp 8080: a reset at once" "refused" "$(probe connect 203.0.113.80 8080)"
check "drop all: tcp 22 is silence" "timeout" "$(probe connect 203.0.113.80 22)"
check "drop udp 5555: ten datagrams out" "sent 10" "$(probe burst 203.0.113.80 5555 10)"
topo_exec c1 dig +time=1 +tries=1 @203.0.113.53 www.example.test >/dev/null 2>&1
topo_exec c1 dig +time=1 +tries=1 @2001:db8:3::53 www.example.test AAAA >/dev/null 2>&1
topo_exec c1 ping -c 2 -W 1 203.0.113.80 >/dev/null 2>&1
if grep -q "^udp $C1 [0-9]* 203.0.113.53 53$" "$TOPO_DIR/sink.log" &&
    grep -q "^udp 2001:db8:1::11 [0-9]* 2001:db8:3::53 53$" "$TOPO_DIR/sink.log"; then
    pass "dns: the UDP listener got both queries with the resolver address asked"
else
    fail "dns: the UDP listener got both queries" "sink log: $(grep udp "$TOPO_DIR/sink.log" | head -3)"
fi

topo_capture_stop
kill -INT "$CAP_PID" 2>/dev/null
wait "$CAP_PID" 2>/dev/null

# ---------------------------------------------------------------- leaks
leaks=$(topo_count_leaks "$TOPO_PCAP")
foreign=$(topo_count_foreign "$TOPO_PCAP")
check "leaks: client packets on the uplink (forwarding on)" 0 "$leaks"
check "leaks: packets on the uplink not the gateway's own" 0 "$foreign"
if grep -qE '192\.0\.2\.|2001:db8:1::' "$TOPO_DIR/servers.log" 2>/dev/null; then
    fail "leaks: the uplink servers saw no client" "$(grep -E '192\.0\.2\.|2001:db8:1::' "$TOPO_DIR/servers.log" | head -2)"
else
    pass "leaks: the uplink servers saw no client"
fi

# ---------------------------------------------------------------- counters
counters() { # the JSON counters each queue prints on SIGUSR1 (the newest of each)
    local before
    before=$(grep -c '"queue":' "$TOPO_DIR/torsieve.log")
    kill -USR1 "$TORSIEVE_PID"
    topo_wait_until 5 "counters" sh -c \
        "[ \$(grep -c '\"queue\":' '$TOPO_DIR/torsieve.log') -ge $((before + 2)) ]" || return 1
    grep '"queue":' "$TOPO_DIR/torsieve.log" | tail -2 | sed 's/^torsieve: //'
}
counters >"$WORK/counters.json" || fail "counters" "no answer to SIGUSR1"
sent() { tcpdump -r "$TOPO_DIR/client.pcap" --count "$1" 2>/dev/null | awk '{print $1}'; }
hits() { "$PY" -c '
import json, sys
qs = [json.loads(l)["summary"] for l in open(sys.argv[1])]
print(sum(r["hits"] for c in qs for r in c["rules"] if r["line"] == int(sys.argv[2])))' \
    "$WORK/counters.json" "$1"; }
check "counters: divert hits = client TCP packets to ports 80/443" \
    "$(sent 'tcp and (dst port 80 or dst port 443)')" "$(hits $LINE_DIVERT)"
check "counters: pass hits = client TCP packets to the gateway's 9050" \
    "$(sent 'tcp dst port 9050')" "$(hits $LINE_PASS)"
check "counters: dns hits = client DNS queries" "$(sent 'udp dst port 53')" "$(hits $LINE_DNS)"
check "counters: reject udp hits = datagrams to udp 443" "$(sent 'udp dst port 443')" \
    "$(hits $LINE_REJECT_UDP)"
check "counters: reject tcp hits = packets to tcp 8080" "$(sent 'tcp dst port 8080')" \
    "$(hits $LINE_REJECT_TCP)"
check "counters: drop udp 5555 hits = 10" 10 "$(hits $LINE_DROP_5555)"
check "counters: every queued packet judged once" ok "$("$PY" -c '
import json, sys
cs = [json.loads(l) for l in open(sys.argv[1])]
bad = []
for c in cs:
    s, q = c["summary"], c["nfqueue"]
    judged = sum(s["verdicts"].values())
    reasons = sum(r["hits"] for r in s["rules"]) + s["default_drops"] + s["anomalous"] + s["defrag_drops"]
    if not q["received"] == s["packets"] == judged == reasons == q["accepted"] + q["dropped"]:
        bad.append("queue %d: received %d packets %d judged %d reasons %d" % (c["queue"], q["received"], s["packets"], judged, reasons))
print("; ".join(bad) or "ok")' "$WORK/counters.json")"
check "counters: both queues judged packets (flows spread over the workers)" 2 "$("$PY" -c '
import json, sys
print(sum(json.loads(l)["nfqueue"]["received"] > 0 for l in open(sys.argv[1])))' "$WORK/counters.json")"
n=$(topo_exec gw iptables-legacy -t mangle -vnxL INPUT | awk '/mark match 0x5\/0xff/ {print $1}')
if [[ ${n:-0} -gt 0 ]]; then
    pass "marks: another program's mark bits survive torsieve's verdicts ($n packets)"
else
    fail "marks: another program's mark bits survive" "no packet arrived with 0x5/0xff"
fi
topo_exec gw iptables-legacy -t raw -D PREROUTING -i br0 -j MARK --set-xmark 0x5/0xff
topo_exec gw iptables-legacy -t mangle -D INPUT -i br0 -m mark --mark 0x5/0xff

# ---------------------------------------------------------------- reload
GO=$WORK/go
topo_exec c1 "$PY" "$HERE/probe.py" hold 203.0.113.80 80 "$GO" >"$WORK/hold.out" &
HOLD=$!
topo_wait_until 5 "held connection" grep -q torsieve-tproxy "$WORK/hold.out"
cp "$CONF" "$WORK/good.conf"
echo "this is not a rule" >>"$CONF"
kill -HUP "$TORSIEVE_PID"
topo_wait_until 5 "refusal" grep -q "reload refused" "$TOPO_DIR/torsieve.log" &&
    pass "reload: a broken policy is refused, naming the place" ||
    fail "reload: a broken policy is refused" "$(tail -2 "$TOPO_DIR/torsieve.log")"
grep -q "torsieve.conf:$(wc -l <"$CONF"):1: expected" "$TOPO_DIR/torsieve.log" ||
    fail "reload: the refusal names FILE:LINE:COL" "$(grep refused "$TOPO_DIR/torsieve.log")"
check "reload: the old policy still diverts" "torsieve-tproxy 203.0.113.80 80" \
    "$(probe banner 203.0.113.80 80)"
grep -v '^divert' "$WORK/good.conf" >"$CONF"
kill -HUP "$TORSIEVE_PID"
topo_wait_until 5 "reload" grep -q "reloaded" "$TOPO_DIR/torsieve.log" ||
    fail "reload: a good policy is taken" "$(tail -2 "$TOPO_DIR/torsieve.log")"
touch "$GO"
wait "$HOLD"
check "reload: the connection diverted before keeps its verdict" "echo ok" "$(tail -1 "$WORK/hold.out")"
check "reload: a new connection follows the new policy (dropped)" timeout \
    "$(probe banner 203.0.113.80 80)"

# ---------------------------------------------------------------- stopped
stop_torsieve
check "stop: SIGTERM ends torsieve with status 0" 0 "${TORSIEVE_RC:-none}"
grep -q '"when":"at exit"' "$WORK/torsieve.log" && pass "stop: counters printed at exit" ||
    fail "stop: counters printed at exit" "$(tail -2 "$WORK/torsieve.log")"
topo_capture_start stopped
check "stopped: pass fails" timeout "$(probe banner 192.0.2.1 9050)"
check "stopped: divert fails" timeout "$(probe banner 203.0.113.80 80)"
check "stopped: udp gets no answer" timeout "$(probe udp 203.0.113.80 443)"
topo_exec c1 ping -c 2 -W 1 203.0.113.80 >/dev/null 2>&1
topo_capture_stop
check "stopped: client packets on the uplink" 0 "$(topo_count_leaks "$TOPO_PCAP")"
check "stopped: packets on the uplink not the gateway's own" 0 "$(topo_count_foreign "$TOPO_PCAP")"

# ---------------------------------------------------------------- remove
topo_exec gw "$TS" rules -c "$CONF" --remove
save_rules >"$WORK/rules-removed"
# Only the empty built-in tables the first apply loaded may differ.
strip() { grep -v -E '^\*|^:[A-Z]+ |^COMMIT' "$1"; }
left=$(diff <(strip "$WORK/rules-before") <(strip "$WORK/rules-removed"))
if [[ -z $left ]] && ! grep -q -E 'torsieve|fwmark|table 100' "$WORK/rules-removed"; then
    pass "rules: --remove leaves no trace (rules, ip rules and routes as before)"
else
    fail "rules: --remove leaves no trace" "$(echo "$left" | head -3)"
fi
topo_exec gw "$TS" rules -c "$CONF" --remove && pass "rules: a second --remove is harmless" ||
    fail "rules: a second --remove is harmless" "exit $?"

topo_down
[[ -n ${KEEP_WORK:-} ]] && echo "kept $WORK" || cleanup_work
finish
