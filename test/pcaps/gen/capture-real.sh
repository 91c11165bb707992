#!/bin/bash
# capture-real.sh - record torsieve test fixtures from REAL tools.
#
# Creates two throw-away network namespaces (tscap-cli, tscap-srv) joined by
# one veth pair, runs real servers (python3 http.server, tiny_dns.py) in the
# server namespace and real clients (curl, dig, ping, nc) in the client
# namespace, and records the traffic with tcpdump from the client side:
#
#   real-eth.pcap     tcpdump -i <client veth>              (EN10MB / Ethernet)
#   real-sll.pcap     tcpdump -i any -y LINUX_SLL           (Linux cooked v1)
#   real-sll2.pcap    tcpdump -i any -y LINUX_SLL2          (Linux cooked v2)
#   real-snap96.pcap  tcpdump -s 96 -i <client veth>        (Ethernet, snaplen 96)
#
# All four captures run at the same time and see the same traffic.
#
# Traffic stays inside the two namespaces and uses only documentation
# addresses (192.0.2.0/24, 2001:db8::/32).  The host's interfaces, routes and
# firewall are never touched: the veth pair is created directly inside the
# namespaces.  Everything is removed again on exit (also on error or ^C).
#
# usage: sudo test/pcaps/gen/capture-real.sh [OUTDIR]
#        OUTDIR defaults to test/pcaps (the directory above gen/).
#
# Needs root and: iproute2 (ip, ss), tcpdump, curl, dnsutils (dig),
# iputils-ping (ping), netcat-openbsd (nc), ethtool, util-linux (flock),
# /usr/bin/python3.  Installs nothing; exits 2 if something is missing.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUTDIR=${1:-$HERE/..}

PFX=tscap
NS_C=$PFX-cli            # client namespace (captures run here)
NS_S=$PFX-srv            # server namespace
IF_C=$PFX-c0             # client end of the veth pair (lives in NS_C)
IF_S=$PFX-s0             # server end of the veth pair (lives in NS_S)
MAC_C=02:00:5e:00:53:01  # fixed, locally administered, so captures are stable
MAC_S=02:00:5e:00:53:02
V4_C=192.0.2.1
V4_S=192.0.2.2
V6_C=2001:db8::1
V6_S=2001:db8::2
MTU=1500
PY=/usr/bin/python3
LOCK=/run/$PFX-capture.lock

# Never let a proxy setting or rc file send traffic anywhere else.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
      no_proxy NO_PROXY CURL_HOME || true

log() { printf 'capture-real: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- checks

if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (needs ip netns, tcpdump)"
    exit 2
fi

missing=0
need() {   # need CMD DEBIAN-PACKAGE
    if ! command -v "$1" >/dev/null 2>&1; then
        log "missing tool '$1': install Debian package $2"
        missing=1
    fi
}
need ip       iproute2
need ss       iproute2
need tcpdump  tcpdump
need curl     curl
need dig      dnsutils
need ping     iputils-ping
need nc       netcat-openbsd
need ethtool  ethtool
need flock    util-linux
if [[ ! -x $PY ]]; then
    log "missing $PY: install Debian package python3"
    missing=1
fi
if command -v nc >/dev/null 2>&1 && ! nc -h 2>&1 | grep -q OpenBSD; then
    log "nc is not OpenBSD netcat: install Debian package netcat-openbsd"
    missing=1
fi
[[ $missing -eq 0 ]] || exit 2
[[ -r $HERE/tiny_dns.py ]] || die "tiny_dns.py not found next to $0"

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

# One run at a time (the namespace names are fixed).  Background helpers
# get "9>&-" so an orphan of a killed run never holds the lock.
exec 9>"$LOCK"
flock -n 9 || die "another capture-real.sh is running ($LOCK is locked)"

# ---------------------------------------------------------------- cleanup

TMP=
BG_PIDS=()

remove_ns() {   # kill whatever still runs inside our namespaces, delete them
    local ns pids
    for ns in "$NS_C" "$NS_S"; do
        [[ -e /run/netns/$ns ]] || continue
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        if [[ -n $pids ]]; then
            # shellcheck disable=SC2086
            kill -TERM $pids 2>/dev/null || true
            sleep 0.5
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            # shellcheck disable=SC2086
            [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
        fi
        ip netns del "$ns" 2>/dev/null || true
    done
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BG_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    remove_ns
    [[ -n $TMP && -d $TMP ]] && rm -rf "$TMP"
    if [[ $rc -ne 0 ]]; then
        log "failed (exit $rc); namespaces and helpers removed"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers from an earlier, killed run.
if [[ -e /run/netns/$NS_C || -e /run/netns/$NS_S ]]; then
    log "removing leftover namespaces from a previous run"
    remove_ns
fi
# scratch directories of earlier killed runs (we hold the lock, so no
# other run is using them)
rm -rf "/tmp/$PFX".??????

TMP=$(mktemp -d "/tmp/$PFX.XXXXXX")
chmod 755 "$TMP"

# Run in the client / server namespace.  Only for foreground commands:
# background jobs call "ip netns exec" directly so that $! is the pid of
# the real program (ip execs it) and signals reach it, not a subshell.
inc() { ip netns exec "$NS_C" "$@"; }
ins() { ip netns exec "$NS_S" "$@"; }

# ---------------------------------------------------------------- network

log "creating namespaces $NS_C and $NS_S"
ip netns add "$NS_C"
ip netns add "$NS_S"

for ns in "$NS_C" "$NS_S"; do
    ip netns exec "$ns" sysctl -q -w \
        net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.accept_ra=0 \
        net.ipv6.conf.default.accept_ra=0 \
        net.ipv6.conf.all.router_solicitations=0 \
        net.ipv6.conf.default.router_solicitations=0 \
        net.ipv6.conf.all.disable_ipv6=0 \
        net.ipv6.conf.default.disable_ipv6=0 >/dev/null
    ip -n "$ns" link set lo up
done

# Both ends are created inside the namespaces; the host namespace never
# sees either interface.
ip -n "$NS_C" link add "$IF_C" address "$MAC_C" mtu "$MTU" type veth \
    peer name "$IF_S" address "$MAC_S" mtu "$MTU" netns "$NS_S"

setup_if() {   # setup_if NS IF V4 V6
    local ns=$1 dev=$2 v4=$3 v6=$4
    ip netns exec "$ns" sysctl -q -w \
        "net.ipv6.conf.$dev.accept_dad=0" \
        "net.ipv6.conf.$dev.accept_ra=0" \
        "net.ipv6.conf.$dev.router_solicitations=0" >/dev/null
    # Offloads off so what is on the wire is MTU-sized, fully checksummed
    # segments (no TSO/GSO super-packets, no GRO merging, no partial csum).
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off \
        >/dev/null 2>&1 || die "ethtool -K $dev failed"
    ip -n "$ns" link set "$dev" mtu "$MTU"
    ip -n "$ns" addr add "$v4/24" dev "$dev"
    ip -n "$ns" -6 addr add "$v6/64" dev "$dev" nodad
    ip -n "$ns" link set "$dev" up
}
setup_if "$NS_C" "$IF_C" "$V4_C" "$V6_C"
setup_if "$NS_S" "$IF_S" "$V4_S" "$V6_S"

# check the offloads really are off
for pair in "$NS_C:$IF_C" "$NS_S:$IF_S"; do
    ns=${pair%%:*} dev=${pair#*:}
    if ip netns exec "$ns" ethtool -k "$dev" | grep -E \
        '^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload|tx-checksumming): on' \
        >/dev/null; then
        die "offloads still on for $dev"
    fi
done

# ---------------------------------------------------------------- servers

WWW=$TMP/www
mkdir -p "$WWW"
cat >"$WWW/index.html" <<'EOF'
<!DOCTYPE html>
<html><head><title>torsieve test</title></head>
<body><p>Hello from the torsieve capture namespace.</p></body></html>
EOF
# ~20 KB of predictable text, so the response spans many MSS-sized segments
awk 'BEGIN { for (i = 1; i <= 320; i++)
    printf "line %04d torsieve capture fixture payload 0123456789abcdefghij\n", i }' \
    >"$WWW/data.txt"

log "starting servers in $NS_S"
# http.server binding to :: is dual stack (IPV6_V6ONLY=0) since Python 3.8
ip netns exec "$NS_S" "$PY" -I -m http.server --bind :: --directory "$WWW" 80 \
    >"$TMP/http.log" 2>&1 9>&- &
BG_PIDS+=($!)
ip netns exec "$NS_S" "$PY" -I "$HERE/tiny_dns.py" --bind :: --port 53 >"$TMP/dns.log" 2>&1 9>&- &
BG_PIDS+=($!)

# Wait for the listeners (checked with ss inside the namespace: no packets).
listening() {   # listening -t|-u PORT
    [[ -n $(ins ss -H -ln "$1" "sport = :$2" 2>/dev/null) ]]
}
for _ in $(seq 100); do
    if listening -t 80 && listening -t 53 && listening -u 53; then
        break
    fi
    sleep 0.1
done
listening -t 80 || { cat "$TMP/http.log" >&2; die "http.server did not start"; }
if ! { listening -t 53 && listening -u 53; }; then
    cat "$TMP/dns.log" >&2
    die "tiny_dns.py did not start"
fi

# ---------------------------------------------------------------- captures

CAPS=(real-eth real-sll real-sll2 real-snap96)
declare -A CAP_PID

start_cap() {   # start_cap NAME tcpdump-args...
    local name=$1
    shift
    # -Z root: write the file as root (Debian's tcpdump would otherwise
    # drop to user "tcpdump" before opening it).
    ip netns exec "$NS_C" tcpdump -Z root -U -n "$@" -w "$TMP/$name.pcap" \
        >/dev/null 2>"$TMP/$name.err" 9>&- &
    CAP_PID[$name]=$!
    BG_PIDS+=($!)
}

log "starting captures in $NS_C"
start_cap real-eth    -i "$IF_C"
start_cap real-sll    -i any -y LINUX_SLL
start_cap real-sll2   -i any -y LINUX_SLL2
start_cap real-snap96 -s 96 -i "$IF_C"

for name in "${CAPS[@]}"; do
    for _ in $(seq 100); do
        grep -q 'listening on' "$TMP/$name.err" 2>/dev/null && break
        kill -0 "${CAP_PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    grep -q 'listening on' "$TMP/$name.err" 2>/dev/null || {
        cat "$TMP/$name.err" >&2
        die "tcpdump for $name did not start"
    }
done
sleep 0.5

# ---------------------------------------------------------------- traffic

pause() { sleep 0.3; }

# run STEP-NAME CMD...   : must succeed
run() {
    local what=$1
    shift
    log "traffic: $what"
    inc "$@" >"$TMP/out" 2>&1 || { cat "$TMP/out" >&2; die "$what failed"; }
    pause
}
# fail STEP-NAME CMD...  : must fail (connection refused and the like)
fail() {
    local what=$1
    shift
    log "traffic: $what (expected to fail)"
    if inc "$@" >"$TMP/out" 2>&1; then
        cat "$TMP/out" >&2
        die "$what unexpectedly succeeded"
    fi
    pause
}
# expect PATTERN : last command's output must match
expect() {
    grep -Eq "$1" "$TMP/out" || { cat "$TMP/out" >&2; die "output does not match /$1/"; }
}

CURL=(curl -q -sS --noproxy '*' --max-time 5)
DIG=(dig -r +time=2 +tries=1)

# ICMP / ICMPv6 echo (also the first ARP and neighbour discovery exchange)
run "ping v4"  ping -4 -n -c 2 -i 0.2 -W 2 "$V4_S"
expect '2 received'
run "ping v6"  ping -6 -n -c 2 -i 0.2 -W 2 "$V6_S"
expect '2 received'

# HTTP over IPv4 and IPv6
run "http v4 /" "${CURL[@]}" -4 "http://$V4_S/"
expect 'torsieve capture namespace'
run "http v4 /data.txt" "${CURL[@]}" -4 -o "$TMP/data4.txt" "http://$V4_S/data.txt"
cmp -s "$TMP/data4.txt" "$WWW/data.txt" || die "http v4 /data.txt: content differs"
run "http v6 /" "${CURL[@]}" -6 "http://[$V6_S]/"
expect 'torsieve capture namespace'
run "http v6 /data.txt" "${CURL[@]}" -6 -o "$TMP/data6.txt" "http://[$V6_S]/data.txt"
cmp -s "$TMP/data6.txt" "$WWW/data.txt" || die "http v6 /data.txt: content differs"

# DNS: A over v4, AAAA over v6, TCP, NXDOMAIN
run "dns A (udp/v4)"     "${DIG[@]}" "@$V4_S" www.example.test A
expect 'status: NOERROR' && expect 'www\.example\.test\..*IN[[:space:]]+A[[:space:]]+192\.0\.2\.80'
run "dns AAAA (udp/v6)"  "${DIG[@]}" "@$V6_S" www.example.test AAAA
expect 'status: NOERROR' && expect 'IN[[:space:]]+AAAA[[:space:]]+2001:db8::80'
run "dns A (tcp/v4)"     "${DIG[@]}" +tcp "@$V4_S" mail.example.test A
expect 'status: NOERROR' && expect '192\.0\.2\.26'
run "dns NXDOMAIN"       "${DIG[@]}" "@$V4_S" missing.example.test A
expect 'status: NXDOMAIN'

# Fragmented echo (payload 3000 > MTU 1500): 3 fragments each way
run "ping v4 fragmented" ping -4 -n -c 1 -s 3000 -M dont -W 2 "$V4_S"
expect '1 received'
run "ping v6 fragmented" ping -6 -n -c 1 -s 3000 -M dont -W 2 "$V6_S"
expect '1 received'

# One UDP datagram to a closed port (server answers ICMP port unreachable)
log "traffic: udp datagram to port 5000"
printf 'torsieve udp datagram\n' |
    inc nc -u -n -w 1 "$V4_S" 5000 >/dev/null 2>&1 || true
pause

# TCP to closed ports: SYN answered by RST
fail "http to closed port 81 (RST)" "${CURL[@]}" -4 "http://$V4_S:81/"
fail "nc to closed port 443 (RST)"  nc -n -w 2 "$V4_S" 443

sleep 1   # let -U writers flush the last packets

# ---------------------------------------------------------------- stop

log "stopping captures"
for name in "${CAPS[@]}"; do
    kill -INT "${CAP_PID[$name]}"
done
for name in "${CAPS[@]}"; do
    for _ in $(seq 50); do
        kill -0 "${CAP_PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "${CAP_PID[$name]}" 2>/dev/null && die "tcpdump $name ignored SIGINT"
    rc=0
    wait "${CAP_PID[$name]}" || rc=$?
    [[ $rc -eq 0 ]] || { cat "$TMP/$name.err" >&2; die "tcpdump $name exited $rc"; }
    grep -q '^0 packets dropped by kernel' "$TMP/$name.err" ||
        { cat "$TMP/$name.err" >&2; die "tcpdump $name dropped packets"; }
done
# the captures are reaped; only the servers are left for cleanup()
keep=()
for pid in "${BG_PIDS[@]}"; do
    for name in "${CAPS[@]}"; do
        [[ $pid == "${CAP_PID[$name]}" ]] && continue 2
    done
    keep+=("$pid")
done
BG_PIDS=("${keep[@]}")

for name in "${CAPS[@]}"; do
    n=$(tcpdump -r "$TMP/$name.pcap" 2>/dev/null | wc -l)
    [[ $n -gt 0 ]] || die "$name.pcap is empty"
    install -m 0644 "$TMP/$name.pcap" "$OUTDIR/$name.pcap"
    printf '%-18s %4d packets  %s\n' "$name.pcap" "$n" \
        "$(sed -n 's/.*link-type \([^ ]*\).*/\1/p' "$TMP/$name.err" | head -n1)"
done
log "wrote ${#CAPS[@]} captures to $OUTDIR"
