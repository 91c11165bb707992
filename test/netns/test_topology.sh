#!/bin/bash
# test_topology.sh - self-test of test/netns/topology.sh, above all of its
# leak detector: the future leak battery counts client-sourced packets in the
# uplink capture and wants 0, so this proves that the count is not 0 when a
# gateway does leak (and that an unreadable capture never reads as 0).
#
#   stale    topo_cleanup_stale removes a dead run (namespaces, process, run
#            directory), keeps a live one, and treats a reused pid as dead
#   setup    the topology comes up fail-closed (forwarding off), no DAD wait,
#            loopback up everywhere, the uplink servers answer the gateway
#   detector topo_count_leaks / topo_count_foreign on crafted frames (scapy):
#            client IPv4, IPv6 (behind an extension header), ARP (client
#            MAC or only a client sender address), client MAC
#            with a foreign address, VLAN-tagged; gateway frames and markers
#            not counted; an unreadable capture gives -1 and fails
#   (a)      forwarding off: every client probe (ping, HTTP 80/443, DNS
#            udp/tcp; IPv4 and IPv6) fails, the capture (provably recording)
#            holds 0 client-sourced packets, the servers saw no client
#   (b)      IPv4 forwarding on, no firewall (a deliberately leaky gateway):
#            the IPv4 probes succeed, topo_count_leaks > 0 for each client;
#            IPv6 still fails and leaks nothing
#   (c)      the same for IPv6 alone
#   spoof    a forwarded client packet with a spoofed source is invisible to
#            topo_count_leaks but counted by topo_count_foreign
#   l2       an L2 leak (uplink veth bridged into br0) is caught by the
#            client-MAC clause alone
#   (d)      after topo_down: none of the run's namespaces, no live process
#            in them, no run directory, host forwarding and links untouched
#
# Prints "PASS name" / "FAIL name: why" lines and "N passed, N failed";
# exits 1 if anything failed.  Needs root, iproute2, tcpdump, curl, dig
# (bind9-dnsutils), ping (iputils-ping), /usr/bin/python3 with scapy
# (python3-scapy).  Sends traffic only inside the namespaces it creates;
# removes everything on exit, failure, ^C or TERM.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=topology.sh
source "$HERE/topology.sh"

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }
T0=$(topo__now)

finish() {
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0)) || exit 1
    exit 0
}

# ---------------------------------------------------------------- preflight

if [[ $(id -u) -ne 0 ]]; then
    fail "netns preflight" "must run as root (ip netns, tcpdump)"
    finish
fi
missing=
for t in ip ss tcpdump curl dig ping; do
    command -v "$t" >/dev/null 2>&1 || missing+=" $t"
done
[[ -x $TOPO_PY ]] || missing+=" $TOPO_PY"
"$TOPO_PY" -c 'import scapy' 2>/dev/null || missing+=" python3-scapy"
if [[ -n $missing ]]; then
    fail "netns preflight" "missing:$missing (Debian: iproute2 tcpdump curl bind9-dnsutils iputils-ping python3-scapy)"
    finish
fi

HOST_FWD_BEFORE="$(cat /proc/sys/net/ipv4/ip_forward) $(cat /proc/sys/net/ipv6/conf/all/forwarding)"
topo_macs_re='02:00:c0:00:0[23]:|02:00:c6:33:64:'

running() {   # PID: exists and is not a zombie
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ ${st%% *} != Z ]]
}

# ---------------------------------------------------------------- up

TOPO_CLIENTS=2
t=$(topo__now)
if ! topo_up; then
    fail "topology up" "topo_up failed (messages above)"
    finish
fi
pass "topology up in $((($(topo__now) - t) / 1000)) ms: $TOPO_NS_GW, $TOPO_NS_UP, ${TOPO_NS_CLIENTS[*]}"
RUN=$TOPO_RUN
RUN_DIR=$TOPO_DIR
NSS=("$TOPO_NS_GW" "$TOPO_NS_UP" "${TOPO_NS_CLIENTS[@]}")
C1MAC=$(topo_client_mac 1)

# ---------------------------------------------------------------- stale

# Fake runs: one whose owner is dead (with a process inside), one whose
# owner lives.  A down hook removes whatever is left of them on any exit.
FAKE_RUNS=()
FAKE_OWNER=
fake_cleanup() {
    local r
    for r in "${FAKE_RUNS[@]}"; do
        topo__remove_run "$r"
        rm -rf -- "$TOPO_TMP/ts-netns-${r#ts-}".??????
    done
    [[ -n $FAKE_OWNER ]] && { kill "$FAKE_OWNER" 2>/dev/null; wait "$FAKE_OWNER" 2>/dev/null; }
    FAKE_RUNS=()
    FAKE_OWNER=
}
topo_on_down fake_cleanup

# dead owner: a shell that creates a run, leaves a process in it, and exits
read -r dead_pid dead_child < <(bash -c '
    ip netns add "ts-$$-gw" && ip netns add "ts-$$-c1" || exit 1
    ip netns exec "ts-$$-gw" sleep 120 </dev/null >/dev/null 2>&1 &
    d=$(mktemp -d "'"$TOPO_TMP"'/ts-netns-$$.XXXXXX") && echo "$$ 1 run" >"$d/owner"
    echo "$$ $!"')
FAKE_RUNS+=("ts-$dead_pid")
# live owner: a child of ours
sleep 60 &
FAKE_OWNER=$!
FAKE_RUNS+=("ts-$FAKE_OWNER")
ip netns add "ts-$FAKE_OWNER-gw"
live_dir=$(mktemp -d "$TOPO_TMP/ts-netns-$FAKE_OWNER.XXXXXX")
echo "$FAKE_OWNER $(topo__starttime "$FAKE_OWNER") run" >"$live_dir/owner"

why=
[[ -n $dead_pid && $(topo_run_namespaces "ts-$dead_pid" | wc -l) == 2 ]] &&
    running "$dead_child" || why+=" could not make the dead run;"
[[ -n $(topo_run_namespaces "ts-$FAKE_OWNER") ]] || why+=" could not make the live run;"
topo_cleanup_stale 2>/dev/null
[[ -z $(topo_run_namespaces "ts-$dead_pid") ]] || why+=" dead run's namespaces left;"
running "$dead_child" && why+=" process $dead_child in the dead run still runs;"
compgen -G "$TOPO_TMP/ts-netns-$dead_pid.*" >/dev/null && why+=" dead run's directory left;"
[[ -n $(topo_run_namespaces "ts-$FAKE_OWNER") ]] || why+=" a live run was removed;"
[[ -d $live_dir ]] || why+=" a live run's directory was removed;"
[[ -n $(topo_run_namespaces "$RUN") ]] || why+=" our own run was removed;"
# the same pid with another start time is another process: the run is stale
echo "$FAKE_OWNER 1 run" >"$live_dir/owner"
topo_cleanup_stale 2>/dev/null
[[ -z $(topo_run_namespaces "ts-$FAKE_OWNER") ]] || why+=" run of a reused pid kept;"
if [[ -z $why ]]; then
    pass "stale cleanup: dead run removed with its process, live run kept, reused pid detected"
else
    fail "stale cleanup" "$why"
fi
fake_cleanup

# ---------------------------------------------------------------- setup checks

state=$(topo_forwarding_state)
if [[ $state == "ipv4=0 ipv6=0" ]]; then
    pass "gateway does not forward by default ($state)"
else
    fail "gateway does not forward by default" "$state"
fi

why=
for ns in "${NSS[@]}"; do
    ip -n "$ns" -o link show dev lo | grep -q '<LOOPBACK,UP,LOWER_UP>' || why+=" lo down in $ns;"
    [[ -z $(ip -n "$ns" -6 addr show tentative) ]] || why+=" tentative address in $ns;"
    [[ $(ip netns exec "$ns" cat /proc/sys/net/ipv6/conf/default/accept_dad) == 0 ]] ||
        why+=" accept_dad not 0 in $ns;"
done
if [[ -z $why ]]; then
    pass "loopback up and no DAD delay in all ${#NSS[@]} namespaces"
else
    fail "loopback and DAD" "$why"
fi

CURL=(curl -q -sS --noproxy '*' --connect-timeout 1 --max-time 2)
DIG=(dig -r +time=1 +tries=1 +short)

# probe NS KIND: one probe, 0 if it got the right answer
probe() {
    local ns=$1 kind=$2 out
    case $kind in
    ping4) topo_exec "$ns" ping -4 -n -c 1 -W 1 "$TOPO_HTTP4" >/dev/null 2>&1 ;;
    ping6) topo_exec "$ns" ping -6 -n -c 1 -W 1 "$TOPO_HTTP6" >/dev/null 2>&1 ;;
    http4-80) out=$(topo_exec "$ns" "${CURL[@]}" "http://$TOPO_HTTP4/" 2>&1) &&
        [[ $out == "torsieve-uplink http $TOPO_HTTP4:80" ]] ;;
    http4-443) out=$(topo_exec "$ns" "${CURL[@]}" "http://$TOPO_HTTP4:443/" 2>&1) &&
        [[ $out == "torsieve-uplink http $TOPO_HTTP4:443" ]] ;;
    http6-80) out=$(topo_exec "$ns" "${CURL[@]}" "http://[$TOPO_HTTP6]/" 2>&1) &&
        [[ $out == "torsieve-uplink http [$TOPO_HTTP6]:80" ]] ;;
    http6-443) out=$(topo_exec "$ns" "${CURL[@]}" "http://[$TOPO_HTTP6]:443/" 2>&1) &&
        [[ $out == "torsieve-uplink http [$TOPO_HTTP6]:443" ]] ;;
    dns4-udp) out=$(topo_exec "$ns" "${DIG[@]}" "@$TOPO_DNS4" "$TOPO_DNS_NAME" A 2>&1) &&
        [[ $out == "$TOPO_HTTP4" ]] ;;
    dns4-tcp) out=$(topo_exec "$ns" "${DIG[@]}" +tcp "@$TOPO_DNS4" "$TOPO_DNS_NAME" A 2>&1) &&
        [[ $out == "$TOPO_HTTP4" ]] ;;
    dns6-udp) out=$(topo_exec "$ns" "${DIG[@]}" "@$TOPO_DNS6" "$TOPO_DNS_NAME" AAAA 2>&1) &&
        [[ $out == "$TOPO_HTTP6" ]] ;;
    dns6-tcp) out=$(topo_exec "$ns" "${DIG[@]}" +tcp "@$TOPO_DNS6" "$TOPO_DNS_NAME" AAAA 2>&1) &&
        [[ $out == "$TOPO_HTTP6" ]] ;;
    *) return 2 ;;
    esac
}
PROBES4=(ping4 http4-80 http4-443 dns4-udp dns4-tcp)
PROBES6=(ping6 http6-80 http6-443 dns6-udp dns6-tcp)

# probes NAME EXPECT4 EXPECT6 NS...: run every probe of both families from
# every NS in parallel; EXPECT is ok or fail.  One PASS/FAIL line.
probes() {
    local name=$1 e4=$2 e6=$3 ns kind exp i=0 pids=() labels=() exps=() why='' rc
    shift 3
    for ns in "$@"; do
        for kind in "${PROBES4[@]}" "${PROBES6[@]}"; do
            exp=$e4
            [[ $kind == *6* ]] && exp=$e6
            probe "$ns" "$kind" &
            pids+=($!)
            labels+=("${ns##*-}:$kind")
            exps+=("$exp")
        done
    done
    for ((i = 0; i < ${#pids[@]}; i++)); do
        rc=0
        wait "${pids[i]}" || rc=$?
        if [[ ${exps[i]} == ok && $rc -ne 0 ]]; then
            why+=" ${labels[i]} failed;"
        elif [[ ${exps[i]} == fail && $rc -eq 0 ]]; then
            why+=" ${labels[i]} succeeded;"
        fi
    done
    if [[ -z $why ]]; then
        pass "$name: ${#pids[@]} probes (IPv4 $e4, IPv6 $e6)"
    else
        fail "$name" "$why"
    fi
}

# the servers themselves work: from the gateway (its own traffic, no forwarding)
probes "servers answer the gateway itself" ok ok gw

why=
for k in 1 2; do
    topo_exec "c$k" ping -4 -n -c 1 -W 1 "$TOPO_GW_LAN4" >/dev/null 2>&1 || why+=" c$k ping $TOPO_GW_LAN4;"
    topo_exec "c$k" ping -6 -n -c 1 -W 1 "$TOPO_GW_LAN6" >/dev/null 2>&1 || why+=" c$k ping $TOPO_GW_LAN6;"
done
if [[ -z $why ]]; then pass "clients reach the gateway over br0"; else fail "clients reach the gateway" "$why"; fi

# ---------------------------------------------------------------- detector, crafted

# The generator labels every frame and writes, per detector, one capture of
# the frames it must count and one of the frames it must not, so a missed
# frame cannot hide behind a false positive.
CR=$RUN_DIR/crafted
n_leak='?' n_foreign='?'
read -r n_leak n_foreign < <("$TOPO_PY" - "$CR" "$TOPO_GW_UP_MAC" "$TOPO_UP_MAC" \
    "$(topo_client_mac 1)" "$(topo_client_mac 2)" "$TOPO_GW_LAN_MAC" 2>"$RUN_DIR/crafted.err" <<'EOF'
import sys
from scapy.layers.l2 import Ether, ARP, Dot1Q
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, ICMPv6MLReport2
from scapy.utils import wrpcap
out, gw, up, c1, c2, br = sys.argv[1:]
# (frame, is a leak, is foreign)
frames = [
    (Ether(src=gw, dst=up) / IP(src="192.0.2.11", dst="203.0.113.80") / TCP(dport=80), 1, 1),
    (Ether(src=gw, dst=up) / IPv6(src="2001:db8:1::12", dst="2001:db8:3::53") / UDP(dport=53), 1, 1),
    (Ether(src=gw, dst=up) / IPv6(src="2001:db8:1::11", dst="2001:db8:3::80") /
     IPv6ExtHdrFragment(id=7) / UDP(dport=9), 1, 1),
    (Ether(src=c1, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="192.0.2.11", pdst="198.51.100.2"), 1, 1),
    (Ether(src=gw, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="192.0.2.12", pdst="198.51.100.2"), 1, 1),
    (Ether(src=c2, dst=up) / IP(src="198.51.100.77", dst="198.51.100.2") / UDP(dport=9), 1, 1),
    (Ether(src=gw, dst=up) / Dot1Q(vlan=5) / IP(src="192.0.2.12", dst="203.0.113.80") / TCP(), 1, 1),
    (Ether(src=gw, dst=up) / IP(src="203.0.113.9", dst="203.0.113.80") / TCP(), 0, 1),
    (Ether(src=gw, dst=up) / IP(src="198.51.100.1", dst="203.0.113.80") / TCP(dport=443), 0, 0),
    (Ether(src=gw, dst=up) / IPv6(src="2001:db8:2::1", dst="2001:db8:3::80") / TCP(), 0, 0),
    (Ether(src=gw, dst="33:33:00:00:00:16") / IPv6(src="fe80::c6ff:fe33:6401", dst="ff02::16") /
     ICMPv6MLReport2(), 0, 0),
    (Ether(src=gw, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="198.51.100.1", pdst="198.51.100.2"), 0, 0),
    (Ether(src=br, dst=up) / IP(src="198.51.100.1", dst="203.0.113.80") / TCP(), 0, 0),
    (Ether(src=gw, dst=up, type=0x88b5) / (b"marker".ljust(46, b"\0")), 0, 0),
]
for name, col in (("leak", 1), ("foreign", 2)):
    wrpcap(out + "-" + name + "-yes.pcap", [f[0] for f in frames if f[col]])
    wrpcap(out + "-" + name + "-no.pcap", [f[0] for f in frames if not f[col]])
print(sum(f[1] for f in frames), sum(f[2] for f in frames))
EOF
)
leak_yes=$(topo_count_leaks "$CR-leak-yes.pcap")
leak_no=$(topo_count_leaks "$CR-leak-no.pcap")
foreign_yes=$(topo_count_foreign "$CR-foreign-yes.pcap")
foreign_no=$(topo_count_foreign "$CR-foreign-no.pcap")
empty=$RUN_DIR/empty.pcap
"$TOPO_PY" -c 'import sys; from scapy.utils import wrpcap; wrpcap(sys.argv[1], [])' "$empty" 2>/dev/null
got_empty=$(topo_count_leaks "$empty")
bad_rc=0
got_bad=$(topo_count_leaks "$RUN_DIR/no-such.pcap" 2>/dev/null) || bad_rc=$?
if [[ $leak_yes == "$n_leak" && $leak_no == 0 && $foreign_yes == "$n_foreign" &&
    $foreign_no == 0 && $got_empty == 0 && $got_bad == -1 && $bad_rc -ne 0 ]]; then
    pass "leak detector on 14 crafted frames: counts all $n_leak client frames (IPv4, IPv6+ext, ARP x2, MAC only, VLAN) and no other; topo_count_foreign all $n_foreign and no other; unreadable capture = -1"
else
    fail "leak detector on crafted frames" "leaks $leak_yes of $n_leak, $leak_no false; foreign $foreign_yes of $n_foreign, $foreign_no false; empty $got_empty (want 0); missing file $got_bad rc $bad_rc (want -1, non-zero); $(head -c 300 "$RUN_DIR/crafted.err" 2>/dev/null)"
fi

# ---------------------------------------------------------------- live scenarios

# capture_phase NAME: start a capture
capture_phase() {
    topo_capture_start "$1" || { fail "$1 capture" "topo_capture_start failed"; return 1; }
}
# end_phase NAME: stop it; fail the phase if the capture did not record
end_phase() {
    topo_capture_stop || { fail "$1 capture" "topo_capture_stop failed (dropped packets?)"; return 1; }
    local m
    m=$(topo_count "$TOPO_PCAP" "ether proto $TOPO_MARKER_ETHERTYPE")
    [[ $m == 2 ]] || { fail "$1 capture" "$m markers in $TOPO_PCAP, want 2"; return 1; }
}
C4=$(topo_client_ip4 1) C4B=$(topo_client_ip4 2) C6=$(topo_client_ip6 1) C6B=$(topo_client_ip6 2)
server_saw_client() { grep -Eq " from (192\.0\.2\.|2001:db8:1::)" "$RUN_DIR/servers.log"; }

# (a) fail closed
if capture_phase off; then
    probes "(a) forwarding off: client traffic fails" fail fail c1 c2
    if end_phase "(a)"; then
        n=$(topo_count_leaks "$TOPO_PCAP")
        if [[ $n == 0 ]] && ! server_saw_client; then
            pass "(a) forwarding off: 0 client-sourced packets reach the uplink (capture recorded $(topo_count "$TOPO_PCAP" "") frames)"
        else
            fail "(a) forwarding off: no leak" "$n client-sourced packets; $(topo_show_leaks "$TOPO_PCAP" | head -n 3)"
        fi
    fi
fi

# (b) a leaky IPv4 gateway
topo_forwarding on 4
if capture_phase v4; then
    probes "(b) IPv4 forwarding on, no firewall: IPv4 succeeds, IPv6 still fails" ok fail c1 c2
    if end_phase "(b)"; then
        n=$(topo_count_leaks "$TOPO_PCAP")
        n1=$(topo_count "$TOPO_PCAP" "src host $C4")
        n2=$(topo_count "$TOPO_PCAP" "src host $C4B")
        n6=$(topo_count "$TOPO_PCAP" "ip6 and ($(topo_leak_filter))")
        if ((n > 0 && n1 > 0 && n2 > 0 && n6 == 0)); then
            pass "(b) leaky IPv4 gateway detected: topo_count_leaks = $n (c1 $n1, c2 $n2, IPv6 0)"
        else
            fail "(b) leaky IPv4 gateway detected" "leaks $n, c1 $n1, c2 $n2, IPv6 $n6"
        fi
    fi
fi

# (c) a leaky IPv6 gateway
topo_forwarding off 4
topo_forwarding on 6
if capture_phase v6; then
    probes "(c) IPv6 forwarding on, no firewall: IPv6 succeeds, IPv4 fails again" fail ok c1 c2
    if end_phase "(c)"; then
        n=$(topo_count_leaks "$TOPO_PCAP")
        n1=$(topo_count "$TOPO_PCAP" "src host $C6")
        n2=$(topo_count "$TOPO_PCAP" "src host $C6B")
        n4=$(topo_count "$TOPO_PCAP" "(ip or arp) and ($(topo_leak_filter))")
        if ((n > 0 && n1 > 0 && n2 > 0 && n4 == 0)); then
            pass "(c) leaky IPv6 gateway detected: topo_count_leaks = $n (c1 $n1, c2 $n2, IPv4 0)"
        else
            fail "(c) leaky IPv6 gateway detected" "leaks $n, c1 $n1, c2 $n2, IPv4 $n4"
        fi
    fi
fi
topo_forwarding off
state=$(topo_forwarding_state)
[[ $state == "ipv4=0 ipv6=0" ]] || fail "topo_forwarding off" "state $state"

# spoof: forwarded with a source that is not a client address
topo_forwarding on 4
SPOOF=198.51.100.77
topo_exec c2 ip addr add "$SPOOF/32" dev eth0
if capture_phase spoof; then
    topo_exec c2 ping -4 -n -c 1 -W 1 -I "$SPOOF" "$TOPO_HTTP4" >/dev/null 2>&1
    if end_phase spoof; then
        n=$(topo_count_leaks "$TOPO_PCAP")
        f=$(topo_count_foreign "$TOPO_PCAP")
        s=$(topo_count "$TOPO_PCAP" "src host $SPOOF")
        if ((n == 0 && s > 0 && f >= s)); then
            pass "spoofed-source leak: invisible to topo_count_leaks (0), counted by topo_count_foreign ($f)"
        else
            fail "spoofed-source leak" "leaks $n (want 0), from $SPOOF $s (want > 0), foreign $f"
        fi
    fi
fi
topo_exec c2 ip addr del "$SPOOF/32" dev eth0
topo_forwarding off

# l2: the uplink veth bridged with the clients (forwarding off)
L2SRC=198.51.100.78
topo_exec gw ip link set up0 master br0
topo_exec c1 ip addr add "$L2SRC/24" dev eth0
if capture_phase l2; then
    l2ok=0
    topo_exec c1 ping -4 -n -c 1 -W 1 -I "$L2SRC" "$TOPO_UP4" >/dev/null 2>&1 && l2ok=1
    if end_phase l2; then
        n=$(topo_count_leaks "$TOPO_PCAP")
        m=$(topo_count "$TOPO_PCAP" "ether src $C1MAC and not (src net $TOPO_CLIENT_NET4 or src net $TOPO_CLIENT_NET6)")
        if ((l2ok && n > 0 && m > 0)); then
            pass "L2 leak (up0 bridged into br0): caught by the client-MAC clause ($m frames with a non-client source address)"
        else
            fail "L2 leak" "ping ok=$l2ok, leaks $n, MAC-only frames $m"
        fi
    fi
fi
topo_exec c1 ip addr del "$L2SRC/24" dev eth0
topo_exec gw ip link set up0 nomaster

# ---------------------------------------------------------------- (d) down

declare -A INODE
for ns in "${NSS[@]}"; do
    INODE[$ns]=$(stat -L -c %i "/run/netns/$ns" 2>/dev/null)
done
PIDS_BEFORE=$(for ns in "${NSS[@]}"; do ip netns pids "$ns"; done)
BG_PIDS=("${TOPO_PIDS[@]}")
topo_down
down_rc=$?
why=
((down_rc == 0)) || why+=" topo_down returned $down_rc;"
left=$(topo_run_namespaces "$RUN")
[[ -z $left ]] || why+=" namespaces left: $left;"
for p in $PIDS_BEFORE "${BG_PIDS[@]}"; do
    running "$p" && why+=" process $p still runs;"
done
for link in /proc/[0-9]*/ns/net; do
    ino=$(readlink "$link" 2>/dev/null) || continue
    for ns in "${NSS[@]}"; do
        if [[ -n ${INODE[$ns]} && $ino == "net:[${INODE[$ns]}]" ]]; then
            p=${link#/proc/}
            why+=" process ${p%%/*} still in $ns;"
        fi
    done
done
[[ ! -e $RUN_DIR ]] || why+=" $RUN_DIR left;"
host_fwd="$(cat /proc/sys/net/ipv4/ip_forward) $(cat /proc/sys/net/ipv6/conf/all/forwarding)"
[[ $host_fwd == "$HOST_FWD_BEFORE" ]] || why+=" host forwarding changed ($HOST_FWD_BEFORE -> $host_fwd);"
ip -o link | grep -Eq "$topo_macs_re" && why+=" a topology MAC is in the root namespace;"
if [[ -z $why ]]; then
    pass "(d) after topo_down: no namespace, process or file of $RUN left; host untouched"
else
    fail "(d) after topo_down" "$why"
fi

# How long it took is information, not a test (speed is for benchmarks).
echo "took $((($(topo__now) - T0) / 1000000))s"
finish
