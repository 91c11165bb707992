#!/bin/bash
# bench_relay.sh - the built-in relay against redsocks (make bench runs it;
# needs root). The same namespaces, client and SOCKS5 server for each:
#
#   torsieve         `torsieve rules --apply` and `torsieve run` in the
#                    gateway: the client's SYN is held in the queue while the
#                    relay asks the SOCKS server, then diverted (TPROXY) to
#                    the relay, which splices the bytes
#   redsocks         Debian's redsocks with its TCP mode: an iptables nat
#                    REDIRECT of the client's TCP to its port, `type = socks5`,
#                    its default relay: splice through a pipe per direction,
#                    as torsieve's (redsocks turns it on by itself on any
#                    kernel past 2.6.27.13; the goals are judged against this)
#   redsocks-copy    the same with `splice = off`: reads and writes through
#                    user space (libevent buffers, 4 KiB a read), for scale
#
# Both relays send their CONNECTs to socks_sink (test/bench/socks_sink.c) on
# 127.0.0.1 in the gateway, with username/password authentication (torsieve's
# isolation token; redsocks is given a login so that it goes through the same
# exchange). The client, test/bench/relay_load.c, runs in a client namespace.
# The relay runs alone on CPU 0; the client and the sink on CPU 1.
#
# Per peer and round, interleaved:
#   memory      N idle connections held open through the relay: the relay's
#               Private_Dirty (/proc/PID/smaps_rollup) with them, less before
#               them (a fresh relay, a handful of connections made and closed
#               first), divided by N; also its descriptors per connection
#   throughput  BULK_CONNS connections at once, each downloading from the
#               sink through the relay for BULK_SECONDS, then half-closing and
#               reading to the sink's FIN: the relay's CPU seconds (utime +
#               stime, /proc/PID/stat, all threads) per GB (10^9 bytes)
#               relayed, and MB/s at the client
#   rate        short connections for RATE_SECONDS, RATE_PARALLEL at a time
#               (connect, 16 bytes each way, close), to 1000 addresses in
#               198.18.0.0/15 in turn (no 4-tuple is reused while in
#               TIME_WAIT): connections per second at the client, and the
#               relay's CPU ms per 1000 connections
# In each window also: how busy each CPU was (/proc/stat: whatever ran there,
# the kernel's packet work and other programs on the machine included), and
# the client's and the sink's own CPU time, to see which side was the limit.
# Then tables: each metric, best of ROUNDS (memory: the median), torsieve's
# figure beside each peer's, the ratio, the issue's goal, met or not.
#
# Everything runs in namespaces of test/netns/topology.sh (removed at the end,
# also on failure or ^C); nothing is changed in the root namespace. The
# gateway's forwarding stays off. In the gateway namespace only: conntrack's
# TIME_WAIT timeout is 5 s instead of 120 (the rate runs would otherwise fill
# the table with closed connections, for both peers alike). The descriptor limit
# is raised to the hard limit; HOLD is lowered if 6 descriptors per held
# connection would not fit.
#
# Environment: RELAY_BENCH_ROUNDS (default 3), RELAY_BENCH_BULK_CONNS (8),
# RELAY_BENCH_BULK_SECONDS (5), RELAY_BENCH_RATE_SECONDS (5),
# RELAY_BENCH_RATE_PARALLEL (64), RELAY_BENCH_HOLD (2000),
# RELAY_BENCH_PEERS (default "torsieve redsocks redsocks-copy"),
# RELAY_BENCH_BUILD (default build/bench), RELAY_BENCH_KEEP=1 (keep the logs),
# RELAY_BENCH_TORSIEVE_SET (more `set` lines for torsieve's policy, separated
# by ';', e.g. "relay-buffer 1M": for experiments; printed with the results),
# RELAY_BENCH_PERF=DIR (each throughput and rate window also under
# `perf record -g -p` of the relay: DIR/perf-{bulk,rate}-PEER-ROUND.data; the
# figures of such a run are perf's too, not to be compared).
# shellcheck disable=SC2317  # functions called through topology.sh's hooks
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=${RELAY_BENCH_BUILD:-$ROOT/build/bench}
[[ $B == /* ]] || B=$ROOT/$B
TS=$B/torsieve
SINK=$B/socks_sink
LOAD=$B/relay_load
REDSOCKS=/usr/sbin/redsocks
PY=/usr/bin/python3
ROUNDS=${RELAY_BENCH_ROUNDS:-3}
BULK_CONNS=${RELAY_BENCH_BULK_CONNS:-8}
BULK_SECS=${RELAY_BENCH_BULK_SECONDS:-5}
RATE_SECS=${RELAY_BENCH_RATE_SECONDS:-5}
RATE_PAR=${RELAY_BENCH_RATE_PARALLEL:-64}
HOLD=${RELAY_BENCH_HOLD:-2000}
PERF_DIR=${RELAY_BENCH_PERF:-}
read -r -a PEERS <<<"${RELAY_BENCH_PEERS:-torsieve redsocks redsocks-copy}"
CPU_RELAY=0
CPU_LOAD=1
PIN_RELAY=(taskset -c "$CPU_RELAY")
PIN_LOAD=(taskset -c "$CPU_LOAD")
SOCKS_PORT=9050
DIVERT_PORT=9040
REDSOCKS_PORT=12345
PORT_SOURCE=9001
PORT_ECHO=9003
DST=198.18.0.1 # RFC 2544's benchmarking range: never routed anywhere here
DST_ADDRS=1000
WARM_CONNS=8

echo "Relay vs redsocks (test/bench/bench_relay.sh)"
skip() {
    echo "bench_relay: skipped: $*"
    exit 0
}
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, iptables-legacy inside them)"
for t in ip ss tcpdump iptables-legacy taskset; do
    command -v "$t" >/dev/null 2>&1 || skip "'$t' is missing (make deps installs it)"
done
[[ -x $REDSOCKS ]] || skip "$REDSOCKS is missing (make deps installs Debian's redsocks)"
[[ -x $PY ]] || skip "$PY is missing"
if ! taskset -c "$CPU_RELAY,$CPU_LOAD" true 2>/dev/null; then
    skip "needs CPUs $CPU_RELAY and $CPU_LOAD"
fi
for f in "$TS" "$SINK" "$LOAD"; do
    [[ -x $f ]] || {
        echo "bench_relay: $f is missing: run make bench" >&2
        exit 1
    }
done
if [[ -n $PERF_DIR ]]; then
    command -v perf >/dev/null 2>&1 ||
        { echo "bench_relay: RELAY_BENCH_PERF is set but perf is missing" >&2; exit 1; }
    mkdir -p "$PERF_DIR" || exit 1
fi
for p in "${PEERS[@]}"; do
    [[ $p == torsieve || $p == redsocks || $p == redsocks-copy ]] ||
        { echo "bench_relay: unknown peer '$p'" >&2; exit 2; }
done

# torsieve needs 6 descriptors per relayed connection, the client 1
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
if [[ $NOFILE != unlimited ]] && ((HOLD * 6 + 1000 > NOFILE)); then
    HOLD=$(((NOFILE - 1000) / 6))
    echo "the descriptor limit is $NOFILE: $HOLD connections held, not ${RELAY_BENCH_HOLD:-2000}"
    ((HOLD >= 100)) || skip "the descriptor limit ($NOFILE) is too low"
fi
RS_NOFILE=20000 # redsocks' rlimit_nofile: enough for redsocks_conn_max 3000
[[ $NOFILE == unlimited ]] || ((NOFILE >= RS_NOFILE)) || RS_NOFILE=$NOFILE

T_START=$EPOCHREALTIME
WORK=$(mktemp -d /tmp/ts-bench-relay.XXXXXX) || exit 1
chmod 755 "$WORK"
TSV=$WORK/results.tsv
: >"$TSV"

# torsieve: its shipped defaults but for the caps, raised for one client
# that makes 64 connections at once and holds HOLD of them (the descriptor
# limit, 6 per connection, is what bounds relay-connections here).
cat >"$WORK/torsieve.conf" <<EOF
set interface br0
set queue 7
set tor-socks 127.0.0.1:$SOCKS_PORT
set divert-port $DIVERT_PORT
set relay-connections 3000
set relay-connections-per-client 3000
set pending-syns 256
set pending-syns-per-client 256
$(tr ';' '\n' <<<"${RELAY_BENCH_TORSIEVE_SET:-}" | sed -n 's/^ *\([^ ].*\)/set \1/p')
pass icmp6 icmp-type { 133, 135, 136 }
divert tcp to port { $PORT_SOURCE, 9002, $PORT_ECHO }
drop all
EOF
write_redsocks_conf() { # FILE [SPLICE_LINE]
    cat >"$1" <<EOF
base {
	log_debug = off;
	log_info = off;
	log = stderr;
	daemon = off;
	redirector = iptables;
	rlimit_nofile = $RS_NOFILE;
	redsocks_conn_max = 3000;
}
redsocks {
	local_ip = 0.0.0.0;
	local_port = $REDSOCKS_PORT;
	ip = 127.0.0.1;
	port = $SOCKS_PORT;
	type = socks5;
	login = "torsieve";
	password = "torsieve";${2:+
	$2}
}
EOF
}
write_redsocks_conf "$WORK/redsocks.conf"
write_redsocks_conf "$WORK/redsocks-copy.conf" "splice = off;"

# shellcheck source-path=SCRIPTDIR source=../netns/topology.sh
source "$ROOT/test/netns/topology.sh"
export TOPO_BRIDGE_NF=0 # TPROXY needs it (test/netns/test_inline.sh says why)
export TOPO_CLIENTS=1

RELAY_PID=
RELAY_PEER=
RELAY_NAME=
LOAD_PID=
not_alive() { ! kill -0 "$1" 2>/dev/null; }
stop_pid() { # PID: TERM, then KILL after 10 s
    kill -TERM "$1" 2>/dev/null
    topo_wait_until 10 "process $1 to stop" not_alive "$1" || kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
stop_relay() {
    [[ -n $RELAY_PID ]] || return 0
    stop_pid "$RELAY_PID"
    RELAY_PID=
    case $RELAY_PEER in
    torsieve) topo_exec gw "$TS" rules -c "$WORK/torsieve.conf" --remove >/dev/null ;;
    redsocks*) topo_exec gw iptables-legacy -w -t nat -F PREROUTING ;;
    esac
}
bench_down() {
    [[ -z $LOAD_PID ]] || stop_pid "$LOAD_PID"
    stop_relay
    if [[ ${RELAY_BENCH_KEEP:-0} == 1 ]]; then
        cp "$TOPO_DIR"/*.log "$WORK/" 2>/dev/null
        echo "bench_relay: logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
topo_on_down bench_down

gw_setup() {
    # conntrack forgets a closed connection after 5 s
    if ! topo_exec gw sysctl -q -w net.netfilter.nf_conntrack_tcp_timeout_time_wait=5 \
        >/dev/null 2>&1; then
        topo_log "cannot shorten conntrack's TIME_WAIT (nf_conntrack not loaded yet?)"
    fi
    topo_bg gw sink "${PIN_LOAD[@]}" "$SINK" "127.0.0.1:$SOCKS_PORT" || return 1
    SINK_PID=$TOPO_LAST_PID
    topo_wait_listen gw tcp "$SOCKS_PORT" 127.0.0.1
}
export TOPO_GW_SETUP=gw_setup
if ! topo_up; then
    echo "bench_relay: the topology did not come up" >&2
    bench_down
    exit 1
fi
# the sysctl exists once conntrack is in use: set it again after torsieve's
# rules brought it (harmless when already done)
conntrack_tw() { topo_exec gw sysctl -q -w net.netfilter.nf_conntrack_tcp_timeout_time_wait=5 \
    >/dev/null 2>&1; }

fail() {
    echo "bench_relay: $*" >&2
    [[ -n $RELAY_NAME && -f $TOPO_DIR/$RELAY_NAME.log ]] && tail -n 5 "$TOPO_DIR/$RELAY_NAME.log" >&2
    exit 1
}

cpu_ticks() { # PID: utime + stime of all its threads, in clock ticks
    local s
    s=$(<"/proc/$1/stat") || return 1
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo $((${12} + ${13}))
}
HZ=$(getconf CLK_TCK)
private_dirty() { awk '/^Private_Dirty:/ { print $2 }' "/proc/$1/smaps_rollup"; } # KiB
rss_kib() { awk '/^Rss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

start_relay() { # PEER ROUND
    local peer=$1 tag=$1-$2
    RELAY_PEER=$peer
    RELAY_NAME=$tag
    case $peer in
    torsieve)
        topo_exec gw "$TS" rules -c "$WORK/torsieve.conf" --apply >/dev/null ||
            fail "torsieve rules --apply failed"
        conntrack_tw
        topo_bg gw "$tag" "${PIN_RELAY[@]}" "$TS" run -c "$WORK/torsieve.conf" --json ||
            fail "cannot start torsieve"
        RELAY_PID=$TOPO_LAST_PID
        topo_wait_listen gw tcp "$DIVERT_PORT" || fail "torsieve's relay does not listen"
        topo_wait_until 10 "torsieve running" grep -q "running:" "$TOPO_DIR/$tag.log" ||
            fail "torsieve did not start"
        ;;
    redsocks*)
        topo_exec gw iptables-legacy -w -t nat -A PREROUTING -i br0 -p tcp \
            -j REDIRECT --to-ports "$REDSOCKS_PORT" || fail "the REDIRECT rule failed"
        conntrack_tw
        topo_bg gw "$tag" "${PIN_RELAY[@]}" "$REDSOCKS" -c "$WORK/$peer.conf" ||
            fail "cannot start redsocks"
        RELAY_PID=$TOPO_LAST_PID
        topo_wait_listen gw tcp "$REDSOCKS_PORT" || fail "redsocks does not listen"
        ;;
    esac
}

# load NAME ARGS...: relay_load in the client, on the load CPU; its output
# (the last lines) in LOAD_OUT
load() {
    local name=$1
    shift
    LOAD_OUT=$(topo_exec c1 "${PIN_LOAD[@]}" "$LOAD" "$@" 2>&1)
    echo "$LOAD_OUT" >"$TOPO_DIR/load-$name.log"
}

# torsieve's relay counters from a fresh SIGUSR1 report, as
# "accepted connections pending closed.done closed-otherwise (every other reason
#  summed) syn_accept_first syn_broken over_connections bytes_to_client bytes_to_tor"
relay_counters() {
    local log=$TOPO_DIR/$RELAY_NAME.log before
    before=$(grep -c '"relay"' "$log")
    kill -USR1 "$RELAY_PID"
    topo_wait_until 5 "counters" \
        bash -c "(( \$(grep -c '\"relay\"' '$log') > $before ))" || return 1
    grep '"relay"' "$log" | tail -n 1 | sed 's/^[^{]*//' | "$PY" -c '
import json, sys
r = json.load(sys.stdin)["relay"]
c = r["closed"]
print(r["accepted"], r["connections"], r["pending"], c["done"],
      sum(v for k, v in c.items() if k != "done"), r["syn_accept_first"], r["syn_broken"],
      r["over_connections"], r["bytes_to_client"], r["bytes_to_tor"])'
}

measure_memory() { # PEER ROUND
    local peer=$1 round=$2 pd0 pd1 pd2 rss0 rss1 fd0 fd1 open failed line
    # a few connections made and closed first: whatever a first connection
    # allocates once is in the baseline
    topo_bg c1 "warm-$peer-$round" "${PIN_LOAD[@]}" "$LOAD" hold "$DST" "$PORT_ECHO" \
        "$WARM_CONNS" "$DST_ADDRS"
    LOAD_PID=$TOPO_LAST_PID
    topo_wait_until 10 "the warm-up connections" grep -q '^relay_load hold: open' \
        "$TOPO_DIR/warm-$peer-$round.log" || fail "$peer: the warm-up connections did not open"
    stop_pid "$LOAD_PID"
    LOAD_PID=
    sleep 0.5
    pd0=$(private_dirty "$RELAY_PID")
    rss0=$(rss_kib "$RELAY_PID")
    fd0=$(fds "$RELAY_PID")
    topo_bg c1 "hold-$peer-$round" "${PIN_LOAD[@]}" "$LOAD" hold "$DST" "$PORT_ECHO" "$HOLD" \
        "$DST_ADDRS"
    LOAD_PID=$TOPO_LAST_PID
    topo_wait_until 60 "$HOLD connections held" grep -q '^relay_load hold: open' \
        "$TOPO_DIR/hold-$peer-$round.log" || fail "$peer: the connections did not open"
    sleep 0.5
    pd1=$(private_dirty "$RELAY_PID")
    rss1=$(rss_kib "$RELAY_PID")
    fd1=$(fds "$RELAY_PID")
    line=$(grep '^relay_load hold: open' "$TOPO_DIR/hold-$peer-$round.log")
    read -r _ _ _ open _ failed <<<"$line"
    stop_pid "$LOAD_PID"
    LOAD_PID=
    sleep 1
    pd2=$(private_dirty "$RELAY_PID")
    printf 'mem\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n' "$peer" "$round" "$open" "$failed" \
        "$pd0" "$pd1" "$pd2" "$rss0" "$rss1" "$fd0" "$fd1" >>"$TSV"
    awk -v p="$peer" -v r="$round" -v o="$open" -v f="$failed" -v a="$pd0" -v b="$pd1" \
        -v c="$pd2" -v d0="$fd0" -v d1="$fd1" 'BEGIN {
        printf "  %-16s round %d: memory: %d connections held (%d failed): Private_Dirty %d -> %d KiB (%.0f bytes each), %d KiB after they closed; %.1f descriptors each\n",
            p, r, o, f, a, b, o ? (b - a) * 1024 / o : 0, c, o ? (d1 - d0) / o : 0 }'
}

# The measuring window: the relay's and the sink's CPU ticks, and the busy
# ticks of both CPUs (/proc/stat: user, nice, system, irq, softirq, steal;
# everything that ran there, other work on the machine included)
cpu_busy() {
    awk -v a="cpu$CPU_RELAY" -v b="cpu$CPU_LOAD" \
        '$1 == a { x = $2 + $3 + $4 + $7 + $8 + $9 } $1 == b { y = $2 + $3 + $4 + $7 + $8 + $9 }
         END { print x, y }' /proc/stat
}
PERF_PID=
window_start() { # [NAME]: with RELAY_BENCH_PERF, perf records the relay as NAME
    if [[ -n $PERF_DIR && -n ${1:-} ]]; then
        perf record -q -g -p "$RELAY_PID" -o "$PERF_DIR/perf-$1.data" >/dev/null 2>&1 &
        PERF_PID=$!
        sleep 0.3
    fi
    W_RELAY=$(cpu_ticks "$RELAY_PID")
    W_SINK=$(cpu_ticks "$SINK_PID")
    read -r W_BUSY0 W_BUSY1 <<<"$(cpu_busy)"
    W_T=$EPOCHREALTIME
}
# window_end: W_OUT="relay_ticks sink_ticks busy_relay_cpu busy_load_cpu wall_seconds"
window_end() {
    local r s b0 b1
    r=$(cpu_ticks "$RELAY_PID") || fail "$RELAY_PEER: the relay is gone"
    s=$(cpu_ticks "$SINK_PID") || fail "the SOCKS server is gone"
    read -r b0 b1 <<<"$(cpu_busy)"
    if [[ -n $PERF_PID ]]; then
        kill -INT "$PERF_PID" 2>/dev/null
        wait "$PERF_PID" 2>/dev/null
        PERF_PID=
    fi
    W_OUT="$((r - W_RELAY)) $((s - W_SINK)) $((b0 - W_BUSY0)) $((b1 - W_BUSY1))"
    W_OUT+=" $("$PY" -c "print('%.3f' % ($EPOCHREALTIME - $W_T))")"
}
load_cpu() { sed -n 's/^relay_load cpu: //p' <<<"$LOAD_OUT"; }

measure_bulk() { # PEER ROUND
    local peer=$1 round=$2 conns ok bytes secs errors rt st b0 b1 wall lc
    window_start "bulk-$peer-$round"
    load "bulk-$peer-$round" bulk "$DST" "$PORT_SOURCE" "$BULK_CONNS" "$BULK_SECS"
    sleep 0.2
    window_end
    read -r rt st b0 b1 wall <<<"$W_OUT"
    read -r _ _ _ conns _ ok _ bytes _ secs _ errors <<<"$(grep '^relay_load bulk:' <<<"$LOAD_OUT")"
    [[ ${bytes:-} =~ ^[0-9]+$ ]] || fail "$peer: the bulk run failed: $LOAD_OUT"
    lc=$(load_cpu)
    printf 'bulk\t%s\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\n' "$peer" "$round" \
        "$conns" "$ok" "$bytes" "$secs" "$rt" "$errors" "$lc" "$st" "$b0" "$b1" "$wall" >>"$TSV"
    awk -v p="$peer" -v r="$round" -v b="$bytes" -v s="$secs" -v c="$rt" -v hz="$HZ" \
        -v ok="$ok" -v n="$conns" -v lc="$lc" -v st="$st" -v b0="$b0" -v b1="$b1" -v w="$wall" \
        'BEGIN {
        printf "  %-16s round %d: bulk: %d of %d downloads ended cleanly, %.0f MB/s, relay CPU %.2f s: %.3f s per GB; CPU %d %.0f%% busy, CPU %d %.0f%% (client %.2f s, SOCKS server %.2f s)\n",
            p, r, ok, n, b / 1e6 / s, c / hz, c / hz / (b / 1e9), '"$CPU_RELAY"', 100 * b0 / hz / w,
            '"$CPU_LOAD"', 100 * b1 / hz / w, lc, st / hz }'
    if ((errors)); then
        grep '^relay_load bulk: failures' <<<"$LOAD_OUT" | sed 's/^/    /'
    fi
}

measure_rate() { # PEER ROUND
    local peer=$1 round=$2 ok failed secs rt st b0 b1 wall lc
    window_start "rate-$peer-$round"
    load "rate-$peer-$round" rate "$DST" "$PORT_ECHO" "$RATE_SECS" "$RATE_PAR" "$DST_ADDRS"
    sleep 0.5
    window_end
    read -r rt st b0 b1 wall <<<"$W_OUT"
    read -r _ _ _ ok _ failed _ secs <<<"$(grep '^relay_load rate: ok' <<<"$LOAD_OUT")"
    [[ ${ok:-} =~ ^[0-9]+$ ]] || fail "$peer: the rate run failed: $LOAD_OUT"
    lc=$(load_cpu)
    printf 'rate\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t%d\t%d\t%d\t%s\n' "$peer" "$round" "$ok" \
        "$failed" "$secs" "$rt" "$lc" "$st" "$b0" "$b1" "$wall" >>"$TSV"
    awk -v p="$peer" -v r="$round" -v ok="$ok" -v f="$failed" -v s="$secs" -v c="$rt" \
        -v hz="$HZ" -v lc="$lc" -v st="$st" -v b0="$b0" -v b1="$b1" -v w="$wall" 'BEGIN {
        printf "  %-16s round %d: rate: %d connections (%d failed) in %.2f s: %.0f/s, relay CPU %.2f s: %.1f ms per 1000; CPU %d %.0f%% busy, CPU %d %.0f%% (client %.2f s, SOCKS server %.2f s)\n",
            p, r, ok, f, s, ok / s, c / hz, ok ? c / hz * 1e6 / ok : 0, '"$CPU_RELAY"',
            100 * b0 / hz / w, '"$CPU_LOAD"', 100 * b1 / hz / w, lc, st / hz }'
    if ((failed)); then
        grep '^relay_load rate: failures' <<<"$LOAD_OUT" | sed 's/^/    /'
    fi
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $LOAD_BEFORE; $ROUNDS rounds of: $HOLD idle connections held;"
echo "$BULK_CONNS downloads at once for ${BULK_SECS} s; ${RATE_SECS} s of short connections, $RATE_PAR at a time"
[[ -z ${RELAY_BENCH_TORSIEVE_SET:-} ]] || echo "torsieve's policy also has:" \
    "$(grep '^set' "$WORK/torsieve.conf" | tail -n +9 | tr '\n' ';')"
for ((r = 1; r <= ROUNDS; r++)); do
    for p in "${PEERS[@]}"; do
        start_relay "$p" "$r"
        measure_memory "$p" "$r"
        measure_bulk "$p" "$r"
        measure_rate "$p" "$r"
        if [[ $p == torsieve ]]; then
            read -r acc conns pend cdone cother afirst broken over to_c to_t \
                <<<"$(relay_counters)"
            printf 'ts\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$r" "$acc" \
                "$conns" "$pend" "$cdone" "$cother" "$afirst" "$broken" "$over" "$to_c" \
                "$to_t" >>"$TSV"
        fi
        stop_relay
        if [[ $p == redsocks* ]] &&
            grep -v -e 'redsocks started' -e 'redsocks goes down' "$TOPO_DIR/$p-$r.log" |
            grep -q .; then
            echo "  $p round $r: redsocks logged (the first lines):"
            grep -v -e 'redsocks started' -e 'redsocks goes down' "$TOPO_DIR/$p-$r.log" |
                head -n 5 | sed 's/^/    /'
        fi
    done
done
T_END=$EPOCHREALTIME
stop_pid "$SINK_PID"
SINK_LINE=$(grep '^socks_sink: [0-9]' "$TOPO_DIR/sink.log")

echo
ELAPSED=$("$PY" -c "print('%.0f' % ($T_END - $T_START))")
CPU_RELAY=$CPU_RELAY CPU_LOAD=$CPU_LOAD "$PY" - "$TSV" "$HZ" "$ROUNDS" "$HOLD" "$BULK_CONNS" \
    "$BULK_SECS" "$RATE_SECS" "$RATE_PAR" "$LOAD_BEFORE" "$ELAPSED" "$SINK_LINE" "$WARM_CONNS" \
    <<'EOF' || fail "the report failed"
import os, statistics, sys

(tsv, hz, rounds, hold, bulk_conns, bulk_secs, rate_secs, rate_par, load, elapsed,
 sink, warm) = sys.argv[1:]
warm = int(warm)
hz = float(hz)
CPU_RELAY, CPU_LOAD = os.environ["CPU_RELAY"], os.environ["CPU_LOAD"]
peers, mem, bulk, rate, ts = [], {}, {}, {}, []
for r in (l.rstrip("\n").split("\t") for l in open(tsv) if l.strip()):
    kind, peer = r[0], r[1]
    if kind != "ts" and peer not in peers:
        peers.append(peer)
    if kind == "mem":
        o, failed, pd0, pd1, pd2, rss0, rss1, fd0, fd1 = map(int, r[3:12])
        mem.setdefault(peer, []).append(dict(
            round=int(r[2]), pd=(pd1 - pd0) * 1024 / o if o else float("nan"),
            rss=(rss1 - rss0) * 1024 / o if o else float("nan"),
            fds=(fd1 - fd0) / o if o else 0, kept=pd2 - pd0, failed=failed, open=o))
    elif kind == "bulk":
        conns, ok, b = int(r[3]), int(r[4]), int(r[5])
        secs, rt, errors, lc = float(r[6]), int(r[7]) / hz, int(r[8]), float(r[9])
        st, b0, b1, wall = int(r[10]) / hz, int(r[11]) / hz, int(r[12]) / hz, float(r[13])
        bulk.setdefault(peer, []).append(dict(
            round=int(r[2]), bytes=b, cpu_gb=rt / (b / 1e9) if b else float("inf"), mbs=b / 1e6 / secs if secs else 0, relay=rt / wall, busy0=b0 / wall,
            busy1=b1 / wall, load=lc / wall, sink=st / wall, ok=ok, conns=conns, errors=errors,
            gb=b / 1e9))
    elif kind == "rate":
        ok, failed, secs, rt, lc = int(r[3]), int(r[4]), float(r[5]), int(r[6]) / hz, float(r[7])
        st, b0, b1, wall = int(r[8]) / hz, int(r[9]) / hz, int(r[10]) / hz, float(r[11])
        rate.setdefault(peer, []).append(dict(
            round=int(r[2]), cps=ok / secs if secs else 0, ms=rt * 1e6 / ok if ok else float("nan"),
            per_cpu=ok / rt if rt else float("nan"), relay=rt / wall, busy0=b0 / wall,
            busy1=b1 / wall, load=lc / wall, sink=st / wall, ok=ok, failed=failed))
    elif kind == "ts":
        ts.append(r)

def best(d, peer, key, low):
    runs = d.get(peer, [])
    return (min if low else max)(runs, key=lambda x: x[key]) if runs else None

def median(d, peer, key):
    v = [x[key] for x in d.get(peer, [])]
    return statistics.median(v) if v else float("nan")

def runs(d, peer, key, fmt):
    return " ".join(fmt % x[key] for x in d.get(peer, []))

def pct(x):
    return "%.0f%%" % (100 * x)

print(f"Relay vs redsocks: {rounds} interleaved rounds; load average before: {load}; "
      f"{elapsed} s in all. The relay runs alone on CPU {CPU_RELAY}, the client and the SOCKS server on CPU {CPU_LOAD}.")
print()
print(f"Throughput: {bulk_conns} downloads at once for {bulk_secs} s; best of {rounds} by the "
      "relay's CPU per GB (10^9 bytes); busy: share of the run's wall time (all work on the CPU)")
print()
print("| peer | relay CPU s per GB | all runs | MB/s | relay on a CPU | CPU "
      f"{CPU_RELAY} busy | CPU {CPU_LOAD} busy (client + SOCKS server) |")
print("|---|---|---|---|---|---|---|")
for p in peers:
    b = best(bulk, p, "cpu_gb", True)
    if b:
        print(f"| {p} | {b['cpu_gb']:.3f} | {runs(bulk, p, 'cpu_gb', '%.3f')} | {b['mbs']:.0f} | "
              f"{pct(b['relay'])} | {pct(b['busy0'])} | {pct(b['busy1'])} "
              f"({pct(b['load'])} + {pct(b['sink'])}) |")
print()
print(f"Connection rate: {rate_par} at a time for {rate_secs} s (connect, 16 bytes each way, "
      f"close); best of {rounds} by connections per second; per relay CPU-second: connections "
      "/ the relay's CPU seconds (what one core would give the relay alone)")
print()
print("| peer | conn/s | all runs | relay CPU ms per 1000 conn | all runs | conn per relay "
      f"CPU-second | relay on a CPU | CPU {CPU_RELAY} busy | CPU {CPU_LOAD} busy (client + SOCKS server) |")
print("|---|---|---|---|---|---|---|---|---|")
for p in peers:
    b, c = best(rate, p, "cps", False), best(rate, p, "ms", True)
    if b:
        print(f"| {p} | {b['cps']:.0f} | {runs(rate, p, 'cps', '%.0f')} | {c['ms']:.1f} | "
              f"{runs(rate, p, 'ms', '%.1f')} | {c['per_cpu']:.0f} | {pct(b['relay'])} | "
              f"{pct(b['busy0'])} | {pct(b['busy1'])} ({pct(b['load'])} + {pct(b['sink'])}) |")
print()
print(f"Memory: {hold} idle connections held open through the relay; the relay's Private_Dirty "
      "(and Rss) with them less before them, per connection; median of " + rounds)
print()
print("| peer | Private_Dirty bytes per conn | all runs | Rss bytes per conn | descriptors per "
      "conn | Private_Dirty KiB kept after they closed |")
print("|---|---|---|---|---|---|")
for p in peers:
    if p in mem:
        print(f"| {p} | {median(mem, p, 'pd'):.0f} | {runs(mem, p, 'pd', '%.0f')} | "
              f"{median(mem, p, 'rss'):.0f} | {median(mem, p, 'fds'):.1f} | "
              f"{median(mem, p, 'kept'):.0f} |")
print()

def verdict(ok):
    return "met" if ok else "**NOT met**"

if "torsieve" in peers:
    tb, tr, tc = best(bulk, "torsieve", "cpu_gb", True), best(rate, "torsieve", "cps", False), \
        best(rate, "torsieve", "ms", True)
    tm = median(mem, "torsieve", "pd")
    print("| goal | against | torsieve | peer | torsieve / peer | result |")
    print("|---|---|---|---|---|---|")
    for p in peers:
        if p == "torsieve":
            continue
        pb, pr, pc = best(bulk, p, "cpu_gb", True), best(rate, p, "cps", False), \
            best(rate, p, "ms", True)
        x = tb["cpu_gb"] / pb["cpu_gb"]
        print(f"| CPU per GB at most half the peer's | {p} | {tb['cpu_gb']:.3f} s | "
              f"{pb['cpu_gb']:.3f} s | {x:.2f} | {verdict(x <= 0.5)} |")
        x = tr["cps"] / pr["cps"]
        print(f"| connections per second at least twice the peer's (measured) | {p} | "
              f"{tr['cps']:.0f} | {pr['cps']:.0f} | {x:.2f} | {verdict(x >= 2)} |")
        x = tc["per_cpu"] / pc["per_cpu"]
        print(f"| the same per relay CPU-second | {p} | {tc['per_cpu']:.0f} | {pc['per_cpu']:.0f} | "
              f"{x:.2f} | {verdict(x >= 2)} |")
    print(f"| torsieve's memory per relayed connection at most 4 KB | - | {tm:.0f} bytes | - | - | "
          f"{verdict(tm <= 4096)} |")
    print()
problems = []
for p in peers:
    for x in bulk.get(p, []):
        if x["ok"] != x["conns"] or x["errors"]:
            problems.append(f"{p}: {x['conns'] - x['ok']} of {x['conns']} downloads did not end "
                            "cleanly")
    for x in rate.get(p, []):
        if x["failed"]:
            problems.append(f"{p}: {x['failed']} short connections failed (of "
                            f"{x['failed'] + x['ok']})")
    for x in mem.get(p, []):
        if x["failed"]:
            problems.append(f"{p}: {x['failed']} held connections failed to open")
for r in ts:
    acc, conns, pend, done, other, afirst, broken, over, to_c, to_t = map(int, r[3:13])
    rnd = int(r[2])
    # what the client received and sent in this round: the bulk downloads
    # ("0\n" up), the rate runs' and the held connections' 16 bytes each way
    b = [x for x in bulk["torsieve"] if x["round"] == rnd][0]
    q = [x for x in rate["torsieve"] if x["round"] == rnd][0]
    m = [x for x in mem["torsieve"] if x["round"] == rnd][0]
    pings = 16 * (q["ok"] + m["open"] + warm)
    if (to_c, to_t) != (b["bytes"] + pings, 2 * b["conns"] + pings):
        problems.append(f"torsieve round {rnd}: the relay counted {to_c} bytes to the client "
                        f"and {to_t} to Tor, the client {b['bytes'] + pings} and "
                        f"{2 * b['conns'] + pings}")
    if conns or pend or other or broken or over:
        problems.append(f"torsieve round {rnd}: after the runs {conns} connections open, "
                        f"{pend} pending; closed: {done} done, {other} otherwise (its log has "
                        f"the reasons); {afirst} SYNs accepted first, {broken} SOCKS failures, "
                        f"{over} over the caps")
if " 0 errors" not in sink:
    problems.append("the SOCKS server saw errors (its log says which)")
print("Checks: " + ("every download ended cleanly, every connection answered; torsieve's relay "
                    "left nothing open, reset nothing, and counted the bytes the client did"
                    if not problems else "; ".join(problems)))
print(sink.replace("socks_sink: ", "The SOCKS server (socks_sink), whole run: "))
EOF
topo_down
exit 0
